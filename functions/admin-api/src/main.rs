use lambda_runtime::Error;
use webhooks_shared::adapters::http_api;
use webhooks_shared::adapters::load_sdk_config;
use webhooks_shared::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env_or_log_error()?;
    let sdk = load_sdk_config().await;
    let admin_api = admin_api::wire(&sdk, &config);
    http_api::run(admin_api.router()).await
}
