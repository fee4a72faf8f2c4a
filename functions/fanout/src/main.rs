use std::sync::Arc;

use lambda_runtime::Error;
use webhooks_shared::adapters::http_api;
use webhooks_shared::adapters::{load_sdk_config, Adapters};
use webhooks_shared::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env_or_log_error()?;
    let sdk = load_sdk_config().await;
    let fanout = Arc::new(fanout::Fanout::new(Adapters::new(&sdk, &config), &config));
    http_api::run(fanout::router(fanout)).await
}
