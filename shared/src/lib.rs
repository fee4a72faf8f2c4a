//! comps-webhooks: what two or more functions share, in two rooms (docs/architecture.md):
//!
//! - [`domain`]: the rules — event catalogue, ids, stored records, signing, the retry
//!   schedule, a delivery's lifecycle, an endpoint's circuit breaker, delivery targets,
//!   alert notices, API problems. No AWS, no HTTP framework, no I/O; time is passed in.
//! - [`adapters`]: DynamoDB store, SQS queue and KMS secret box; the SDK's HTTP transport,
//!   the Lambda HTTP API adapter, and the retry loop for batch calls.
//!
//! Plus [`config`] (the environment `template.yaml` sets) and [`telemetry`] (JSON logs).
//! Code one function uses lives in its crate under `functions/`: the HTTPS delivery client
//! and the EMF metrics in `deliver`, the SES mailer and the digest in `alerter`.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod telemetry;

pub use config::Config;
