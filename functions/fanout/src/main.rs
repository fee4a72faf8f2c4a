// The handler future (an HTTP request or a stream batch) nests deeper than the default
// limit allows the compiler to lay out.
#![recursion_limit = "256"]

use std::sync::Arc;

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use webhooks_shared::adapters::load_sdk_config;
use webhooks_shared::{telemetry, Config};

use fanout::FanoutEvent;

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env_or_log_error()?;
    let sdk = load_sdk_config().await;
    let fanout = Arc::new(fanout::wire(&sdk, &config));
    let router = fanout::router(Arc::clone(&fanout));
    run(service_fn(move |event: LambdaEvent<FanoutEvent>| {
        let (fanout, router) = (Arc::clone(&fanout), router.clone());
        // A stream batch starts no record it may not finish within the invocation.
        let deadline = fanout::outbox::stream_deadline(event.context.deadline());
        async move { Ok::<_, Error>(fanout.handle_until(router, event.payload, deadline).await) }
    }))
    .await
}
