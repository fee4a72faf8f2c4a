use std::sync::Arc;

use admin_api::scope::{require_admin_scope, AdminScope};
use axum::middleware::from_fn_with_state;
use lambda_runtime::Error;
use webhooks_shared::adapters::http_api;
use webhooks_shared::adapters::{load_sdk_config, Adapters};
use webhooks_shared::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env_or_log_error()?;
    let admin_scope =
        AdminScope::from_setting(std::env::var("WEBHOOKS_ADMIN_SCOPE").ok().as_deref());
    let sdk = load_sdk_config().await;
    let api = Arc::new(admin_api::AdminApi::new(
        Adapters::new(&sdk, &config),
        &config,
    ));
    // API Gateway authenticates (JWT authorizer with the admin scope; none for the OpenAPI
    // document); the admin routes check the scope again in case a route lacks it. Every
    // answer of the admin routes, the scope check's 403 included, says `no-store`.
    let admin_routes = admin_api::http::no_store(
        admin_api::router(api).layer(from_fn_with_state(admin_scope, require_admin_scope)),
    );
    http_api::run(admin_api::public_router().merge(admin_routes)).await
}
