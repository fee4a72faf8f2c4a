//! comps-webhooks: what the functions share, in two rooms (docs/architecture.md):
//!
//! - [`domain`]: the rules — event catalogue, ids, stored records, signing, the retry
//!   schedule, a delivery's lifecycle, alert notices, API problems. No AWS, no HTTP
//!   framework, no I/O.
//! - [`adapters`]: one per AWS service (DynamoDB store, SQS queue, KMS secret box, SES
//!   mailer, CloudWatch metrics) and the HTTPS delivery client.
//!
//! Plus [`config`] (the environment `template.yaml` sets) and [`telemetry`] (JSON logs).
//! Feature code lives in the function crates under `functions/`.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod telemetry;

pub use config::Config;
