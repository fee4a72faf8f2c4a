//! The rules, pure: no AWS, no HTTP framework, no I/O; time comes in as an argument.

pub mod alerts;
pub mod catalogue;
pub mod circuit;
pub mod clock;
pub mod ids;
pub mod lifecycle;
pub mod model;
pub mod problem;
pub mod retry;
pub mod signing;
pub mod targets;
