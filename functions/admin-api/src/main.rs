use std::sync::Arc;

use lambda_http::{run, Error};
use webhooks_shared::aws::{load_sdk_config, Adapters};
use webhooks_shared::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env()?;
    let sdk = load_sdk_config().await;
    let api = Arc::new(admin_api::AdminApi::new(
        Adapters::new(&sdk, &config),
        &config,
    ));
    // Authentication happens in API Gateway (JWT authorizer; none for the OpenAPI document).
    run(admin_api::public_router().merge(admin_api::router(api))).await
}
