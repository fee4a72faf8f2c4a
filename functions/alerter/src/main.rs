use std::sync::Arc;

use alerter::mailer::Mailer;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use webhooks_shared::adapters::{load_sdk_config, Adapters};
use webhooks_shared::{telemetry, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    let config = Config::from_env_or_log_error()?;
    let sdk = load_sdk_config().await;
    let mailer = Mailer::new(aws_sdk_ses::Client::new(&sdk));
    let alerter = Arc::new(
        alerter::Alerter::new(Adapters::new(&sdk, &config), mailer, &config)
            .with_console_url(std::env::var("WEBHOOKS_CONSOLE_URL").ok()),
    );
    run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let alerter = Arc::clone(&alerter);
        async move { Ok::<_, Error>(alerter.handle_batch(event.payload).await) }
    }))
    .await
}
