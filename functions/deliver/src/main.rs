use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use webhooks_shared::adapters::load_sdk_config;
use webhooks_shared::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env_or_log_error()?;
    let sdk = load_sdk_config().await;
    let deliverer = Arc::new(deliver::wire(&sdk, &config)?);
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deliverer = Arc::clone(&deliverer);
        async move { Ok::<_, Error>(deliverer.handle_batch(event.payload).await) }
    }))
    .await
}
