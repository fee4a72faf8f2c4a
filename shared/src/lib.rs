//! comps-webhooks: the domain (event catalogue, signing, retry policy, validation) and the thin
//! adapters around it (DynamoDB stores, KMS secret box, SQS queue, HTTPS delivery client).
//!
//! Function crates under `functions/` hold the handlers; everything they share lives here.

pub mod alerts;
pub mod aws;
pub mod aws_error;
pub mod backoff;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod http_client;
pub mod ids;
pub mod lifecycle;
pub mod mailer;
pub mod metrics;
pub mod model;
pub mod problem;
pub mod queue;
pub mod retry;
pub mod secret_box;
pub mod signing;
pub mod store;
pub mod telemetry;

pub use config::Config;
