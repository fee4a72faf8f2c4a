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
    let alerter = Arc::new(alerter::wire(&sdk, &config));
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let alerter = Arc::clone(&alerter);
        async move { Ok::<_, Error>(alerter.handle_batch(event.payload).await) }
    }))
    .await
}
