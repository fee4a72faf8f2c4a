//! Adapters: one per AWS service, and the HTTPS delivery client. Their errors keep the SDK's
//! error as source and say whether trying again may help ([`aws_error`]).
//!
//! AWS clients are built once per container from the SDK's standard configuration, so the
//! same binaries talk to AWS, LocalStack or moto (`AWS_ENDPOINT_URL`). No network call
//! happens here.

pub mod aws_error;
pub mod backoff;
pub mod http_api;
pub mod queue;
pub mod secret_box;
pub mod store;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::adapters::queue::Queue;
use crate::adapters::secret_box::SecretBox;
use crate::adapters::store::Store;
use crate::config::Config;

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(aws_http_client())
        .load()
        .await
}

/// The SDK's HTTPS client on rustls with ring, the TLS stack the delivery client uses too
/// (the SDK's default brings a second one, aws-lc-rs: a larger zip for nothing).
pub fn aws_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The adapters every function shares.
#[derive(Debug, Clone)]
pub struct Adapters {
    pub store: Store,
    /// The deliveries queue.
    pub queue: Queue,
    /// The alerts queue (permanent failures, digest flushes).
    pub alerts: Queue,
    pub secrets: SecretBox,
}

impl Adapters {
    pub fn new(sdk: &SdkConfig, config: &Config) -> Self {
        let r = &config.resources;
        let sqs = aws_sdk_sqs::Client::new(sdk);
        Adapters {
            store: Store::new(aws_sdk_dynamodb::Client::new(sdk), r.clone()),
            queue: Queue::new(sqs.clone(), r.delivery_queue_url.clone()),
            alerts: Queue::new(sqs, r.alert_queue_url.clone()),
            secrets: SecretBox::new(aws_sdk_kms::Client::new(sdk), r.secrets_key_id.clone()),
        }
    }
}
