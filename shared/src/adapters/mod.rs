//! Adapters: one per AWS service the functions share (DynamoDB, SQS, KMS, the HTTP API), and
//! the AWS SDK's HTTP transport; the delivery client, the mailer and the metrics live in the
//! functions that use them. Their errors keep the SDK's error as source and say whether
//! trying again may help ([`aws_error`]).
//!
//! AWS clients are built once per container from the SDK's standard configuration, so the
//! same binaries talk to AWS, LocalStack or moto (`AWS_ENDPOINT_URL`). No network call
//! happens here.

pub mod aws_error;
pub mod backoff;
pub mod http_api;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod queue;
pub mod sdk_http;
pub mod secret_box;
pub mod store;

use aws_config::environment::{
    EnvironmentVariableCredentialsProvider, EnvironmentVariableRegionProvider,
};
use aws_config::meta::region::ProvideRegion;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
/// What every function's `wire` builds its clients from, so the function crates need not name
/// aws-config themselves.
pub use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_async::rt::sleep::{SharedAsyncSleep, TokioSleep};
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::adapters::queue::Queue;
use crate::adapters::secret_box::SecretBox;
use crate::adapters::store::Store;
use crate::config::Config;

/// The SDK configuration Lambda gives a function: region and credentials from the
/// environment (`AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), and `AWS_ENDPOINT_URL` when set (LocalStack, moto). Not
/// aws-config's default chain: its profile, SSO, web-identity (STS) and instance-metadata
/// providers never run inside Lambda, and linking them cost each zip about 100 KiB.
pub async fn load_sdk_config() -> SdkConfig {
    let region = EnvironmentVariableRegionProvider::new().region().await;
    let credentials = EnvironmentVariableCredentialsProvider::new();
    let builder = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(aws_http_client())
        .sleep_impl(SharedAsyncSleep::new(TokioSleep::new()))
        .time_source(SharedTimeSource::new(SystemTimeSource::new()))
        .retry_config(RetryConfig::standard());
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => builder.endpoint_url(url).build(),
        _ => builder.build(),
    }
}

/// The SDK's HTTPS client: reqwest on rustls with ring, HTTP/1.1 ([`sdk_http`]), the stack
/// the delivery client uses too.
pub fn aws_http_client() -> SharedHttpClient {
    SharedHttpClient::new(sdk_http::SdkHttpClient::default())
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
