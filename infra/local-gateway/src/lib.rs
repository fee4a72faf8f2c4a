//! The local gateway: runs the real function handlers on one laptop.
//!
//! - serves the HTTP API (what API Gateway routes to `admin-api` and `fanout`) with the
//!   local bearer-token auth of SPEC §7 standing in for the JWT and IAM authorizers;
//! - drains each SQS queue that `template.yaml` maps to a function the way a Lambda event
//!   source mapping does: batches of `BatchSize`, the handler's partial batch failures kept,
//!   everything else deleted, visibility timeouts left to SQS;
//! - reads each DynamoDB table stream that `template.yaml` maps to `fanout` the way a
//!   Lambda event source mapping does (`stream`): filtered, batched, checkpointed per shard,
//!   a batch retried from its lowest failed sequence number.
//!
//! The resources come from `infra/local/stack.py up`, which creates them from
//! `template.yaml` in the emulator and describes them (one source of truth). Each function
//! runs, and its event sources poll, with the credentials of that function's own role
//! (sts:AssumeRole from the local runner), so an emulator that enforces IAM refuses what
//! AWS would refuse.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use admin_api::AdminApi;
use alerter::mailer::Mailer;
use alerter::Alerter;
use deliver::Deliverer;
use fanout::Fanout;
use webhooks_shared::adapters::Adapters;
use webhooks_shared::domain::problem::Problem;
use webhooks_shared::Config;

pub mod meter;
pub mod stream;
pub mod throttle;
pub mod tokens;
use meter::Meter;
use stream::{StreamEventSourceMapping, StreamPoller, StreamSource};

pub const DEFAULT_ADMIN_TOKEN: &str = "dev-admin-token";
pub const DEFAULT_INGEST_TOKEN: &str = "dev-ingest-token";
/// Receive loops per SQS event source (Lambda starts with five). Each hands every batch to
/// an invocation of its own and goes on receiving, up to the mapping's
/// `MaximumConcurrency` batches in flight: a batch waiting on a slow receiver does not hold
/// up the rest of the queue.
const POLLERS_PER_MAPPING: usize = 5;

#[derive(Debug, Error)]
pub enum GatewayError {
    #[error("stack description is unreadable: {0}")]
    Stack(String),
    #[error(transparent)]
    Config(#[from] webhooks_shared::config::ConfigError),
    #[error(transparent)]
    Client(#[from] deliver::http_client::ClientError),
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error(
        "refusing to listen on {0}, beyond this machine, with a default token anyone can read \
         in the README: set WEBHOOKS_ADMIN_TOKEN and WEBHOOKS_INGEST_TOKEN, or listen on 127.0.0.1"
    )]
    DefaultTokensExposed(SocketAddr),
}

/// What `infra/local/stack.py up` prints.
#[derive(Debug, Clone, Deserialize)]
pub struct StackDescription {
    pub env: HashMap<String, String>,
    #[serde(default)]
    pub functions: HashMap<String, FunctionDescription>,
    #[serde(default)]
    pub event_source_mappings: Vec<EventSourceMapping>,
    /// The DynamoDB table streams mapped to functions (`stream`).
    #[serde(default)]
    pub stream_event_source_mappings: Vec<StreamEventSourceMapping>,
    /// The HTTP API stage's throttling (`throttle`).
    #[serde(default)]
    pub http_api_throttling: throttle::ThrottlingDescription,
    /// The emulator's IAM user the runners sign in as (it may assume every function's role).
    pub local_runner: Option<LocalRunner>,
    /// Whether the emulator checked IAM when the stack was described.
    #[serde(default)]
    pub iam_enforced: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FunctionDescription {
    pub binary: String,
    #[serde(default = "default_timeout")]
    pub timeout: u64,
    /// The function's execution role, as `template.yaml` declares it.
    pub role_arn: Option<String>,
}

#[derive(Clone, Deserialize)]
pub struct LocalRunner {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRunner")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

fn default_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventSourceMapping {
    pub function: String,
    pub binary: String,
    pub queue_url: String,
    #[serde(default)]
    pub queue_arn: Option<String>,
    pub batch_size: i32,
    #[serde(default)]
    pub report_batch_item_failures: bool,
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `ScalingConfig.MaximumConcurrency`: at most this many batches in flight.
    #[serde(default = "default_maximum_concurrency")]
    pub maximum_concurrency: usize,
}

fn enabled() -> bool {
    true
}

fn default_maximum_concurrency() -> usize {
    1000
}

impl StackDescription {
    pub fn from_json(text: &str) -> Result<Self, GatewayError> {
        serde_json::from_str(text).map_err(|e| GatewayError::Stack(e.to_string()))
    }

    /// The function (logical id and description) built from `binary`.
    pub fn function(&self, binary: &str) -> Option<(&str, &FunctionDescription)> {
        self.functions
            .iter()
            .find(|(_, f)| f.binary == binary)
            .map(|(id, f)| (id.as_str(), f))
    }

    /// How long an invocation of `function` (logical id) may run: its `Timeout`.
    pub fn timeout_of(&self, function: &str) -> Duration {
        let seconds = self
            .functions
            .get(function)
            .map_or(default_timeout(), |f| f.timeout);
        Duration::from_secs(seconds)
    }

    /// An SDK configuration signed in as the local runner (an operator of the emulator).
    pub fn runner_sdk_config(&self, base: &SdkConfig) -> SdkConfig {
        match &self.local_runner {
            Some(runner) => base
                .to_builder()
                .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                    &runner.access_key_id,
                    &runner.secret_access_key,
                    None,
                    None,
                    "local-runner",
                )))
                .build(),
            None => base.clone(),
        }
    }

    /// An SDK configuration with the credentials of `binary`'s own role, assumed from
    /// `runner` (refreshed before they expire), as Lambda gives a function its role's.
    pub async fn function_sdk_config(
        &self,
        runner: &SdkConfig,
        binary: &str,
    ) -> Result<SdkConfig, GatewayError> {
        let (id, function) = self
            .function(binary)
            .ok_or_else(|| GatewayError::Stack(format!("no function runs {binary}")))?;
        let role = function.role_arn.as_deref().ok_or_else(|| {
            GatewayError::Stack(format!(
                "{id} has no role_arn: run infra/local/stack.py up again"
            ))
        })?;
        let provider = AssumeRoleProvider::builder(role)
            .session_name(format!("local-{binary}"))
            .configure(runner)
            .build()
            .await;
        Ok(runner
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build())
    }
}

#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub listen: SocketAddr,
    pub admin_token: String,
    pub ingest_token: String,
    /// Settings that win over the stack's environment (tests use these for the switches).
    pub overrides: HashMap<String, String>,
}

/// A running gateway; dropping it does not stop it, `stop` does.
pub struct RunningGateway {
    pub addr: SocketAddr,
    /// What API Gateway and Lambda would bill for the work done so far.
    pub meter: Meter,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningGateway {
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Builds the handlers exactly as their `main.rs` do, each with its own role's credentials,
/// then serves them. `sdk` points at the emulator; the stack says who signs in.
pub async fn start(
    sdk: &SdkConfig,
    stack: &StackDescription,
    options: GatewayOptions,
) -> Result<RunningGateway, GatewayError> {
    check_exposure(&options)?;
    tokens::check_distinct(&options.admin_token, &options.ingest_token)?;
    // Explicit overrides first; then the `WEBHOOKS_*` settings of the person running it
    // (e.g. `WEBHOOKS_ALERT_EMAILS=me@example.com make dev`); then what the template sets.
    let config = Config::from_lookup(|name| {
        options.overrides.get(name).cloned().or_else(|| {
            let from_shell = || std::env::var(name).ok().filter(|v| !v.is_empty());
            let mine = name.starts_with("WEBHOOKS_").then(from_shell).flatten();
            mine.or_else(|| stack.env.get(name).cloned())
                .or_else(from_shell)
        })
    })?;
    // Before anything starts: a stream source the gateway would emulate unlike Lambda.
    let stream_sources = stack
        .stream_event_source_mappings
        .iter()
        .filter(|m| m.enabled)
        .map(StreamSource::check)
        .collect::<Result<Vec<_>, _>>()?;
    let runner = stack.runner_sdk_config(sdk);
    let admin_sdk = stack.function_sdk_config(&runner, "admin-api").await?;
    let fanout_sdk = stack.function_sdk_config(&runner, "fanout").await?;
    let deliver_sdk = stack.function_sdk_config(&runner, "deliver").await?;
    let alerter_sdk = stack.function_sdk_config(&runner, "alerter").await?;
    let admin = Arc::new(AdminApi::new(Adapters::new(&admin_sdk, &config), &config));
    let fanout = Arc::new(Fanout::new(Adapters::new(&fanout_sdk, &config), &config));
    let deliverer = Arc::new(Deliverer::new(
        Adapters::new(&deliver_sdk, &config),
        &config,
    )?);
    let mailer = Mailer::new(aws_sdk_ses::Client::new(&alerter_sdk));
    // The digest links to the console this gateway serves (`WEBHOOKS_CONSOLE_URL` wins; a
    // gateway on a port chosen at bind time has no address yet: then the path alone).
    let console_url = std::env::var("WEBHOOKS_CONSOLE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| (options.listen.port() != 0).then(|| format!("http://{}", options.listen)));
    let alerter = Arc::new(
        Alerter::new(Adapters::new(&alerter_sdk, &config), mailer, &config)
            .with_console_url(console_url),
    );

    let meter = Meter::default();
    let invoking = |function: &'static str| {
        middleware::from_fn_with_state((meter.clone(), function), meter::count_invocation)
    };
    // API Gateway throttles a route before its authorizer or function runs.
    let throttling = Arc::new(throttle::Throttling::new(&stack.http_api_throttling));
    let api = Router::new()
        .merge(admin_api::public_router().layer(invoking("admin-api")))
        .merge(
            fanout::router(Arc::clone(&fanout))
                .layer(invoking("fanout"))
                .layer(middleware::from_fn_with_state(
                    Arc::new(options.ingest_token.clone()),
                    require_bearer,
                )),
        )
        .merge(admin_api::router(admin).layer(invoking("admin-api")).layer(
            middleware::from_fn_with_state(Arc::new(options.admin_token.clone()), require_bearer),
        ))
        .layer(middleware::from_fn_with_state(
            throttling,
            throttle::throttle,
        ));
    let app = Router::new().route("/health", get(health)).merge(api);

    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| GatewayError::Listen {
            addr: options.listen,
            reason: e.to_string(),
        })?;
    let addr = listener.local_addr().map_err(|e| GatewayError::Listen {
        addr: options.listen,
        reason: e.to_string(),
    })?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let mut server_stop = stopped.clone();
    tasks.push(tokio::spawn(async move {
        let shutdown = async move {
            let _ = server_stop.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }));

    let region = sdk.region().map(|r| r.to_string());
    for mapping in stack.event_source_mappings.iter().filter(|m| m.enabled) {
        // Lambda polls a function's queue with that function's role.
        let (handler, sqs) = match mapping.binary.as_str() {
            "deliver" => (
                QueueHandler::Deliver(Arc::clone(&deliverer)),
                aws_sdk_sqs::Client::new(&deliver_sdk),
            ),
            "alerter" => (
                QueueHandler::Alerter(Arc::clone(&alerter)),
                aws_sdk_sqs::Client::new(&alerter_sdk),
            ),
            _ => {
                tracing::warn!(function = %mapping.function, "no local handler for this event source; skipped");
                continue;
            }
        };
        let poller = Poller {
            sqs,
            mapping: mapping.clone(),
            region: region.clone(),
            timeout: stack.timeout_of(&mapping.function),
            handler,
            meter: meter.clone(),
            concurrency: Arc::new(Semaphore::new(mapping.maximum_concurrency.max(1))),
            stopped: stopped.clone(),
        };
        for _ in 0..POLLERS_PER_MAPPING {
            tasks.push(tokio::spawn(poller.clone().run()));
        }
    }
    for source in stream_sources {
        let mapping = &source.mapping;
        if mapping.binary != "fanout" {
            tracing::warn!(function = %mapping.function, "no local handler for this stream event source; skipped");
            continue;
        }
        let timeout = stack.timeout_of(&mapping.function);
        // Lambda reads a function's stream with that function's role.
        let poller = StreamPoller::new(
            source,
            aws_sdk_dynamodbstreams::Client::new(&fanout_sdk),
            Arc::clone(&fanout),
            region.clone(),
            timeout,
            meter.clone(),
            stopped.clone(),
        );
        tasks.push(tokio::spawn(poller.run()));
    }
    Ok(RunningGateway {
        addr,
        meter,
        stop,
        tasks,
    })
}

/// The default tokens are printed in the README: fine on loopback, not on an address other
/// machines can reach.
fn check_exposure(options: &GatewayOptions) -> Result<(), GatewayError> {
    let default_token =
        options.admin_token == DEFAULT_ADMIN_TOKEN || options.ingest_token == DEFAULT_INGEST_TOKEN;
    if default_token && !options.listen.ip().is_loopback() {
        return Err(GatewayError::DefaultTokensExposed(options.listen));
    }
    Ok(())
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Local stand-in for the API's authorizers: `Authorization: Bearer <token>`.
async fn require_bearer(
    State(token): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // In constant time: how long a comparison takes must not tell how much of a guess
    // was right.
    let matches = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(token.as_bytes())));
    if matches {
        return next.run(request).await;
    }
    let mut response = http::Response::from(Problem::unauthorized(
        "send Authorization: Bearer <token> (WEBHOOKS_ADMIN_TOKEN for /api/v1 admin calls, \
         WEBHOOKS_INGEST_TOKEN for POST /api/v1/events and /api/v1/events/batch)",
    ))
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// The function an SQS event source feeds.
#[derive(Clone)]
enum QueueHandler {
    Deliver(Arc<Deliverer>),
    Alerter(Arc<Alerter>),
}

impl QueueHandler {
    async fn handle(&self, event: SqsEvent) -> aws_lambda_events::event::sqs::SqsBatchResponse {
        match self {
            QueueHandler::Deliver(deliverer) => deliverer.handle_batch(event).await,
            QueueHandler::Alerter(alerter) => alerter.handle_batch(event).await,
        }
    }
}

/// One poller of an SQS event source mapping.
#[derive(Clone)]
struct Poller {
    sqs: aws_sdk_sqs::Client,
    mapping: EventSourceMapping,
    region: Option<String>,
    timeout: Duration,
    handler: QueueHandler,
    meter: Meter,
    /// `MaximumConcurrency`: a batch holds one permit while its invocation runs.
    concurrency: Arc<Semaphore>,
    stopped: watch::Receiver<bool>,
}

impl Poller {
    /// Receives batches until the gateway stops, each handed to an invocation of its own
    /// while this goes on receiving (as Lambda's pollers do): a batch waiting on a slow
    /// receiver holds a unit of the mapping's concurrency, never the poller.
    async fn run(self) {
        let mut stopped = self.stopped.clone();
        loop {
            let permit = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                permit = Arc::clone(&self.concurrency).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let messages = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                messages = self.receive() => messages,
            };
            if messages.is_empty() {
                continue;
            }
            let invocation = self.clone();
            tokio::spawn(async move {
                let mut stopped = invocation.stopped.clone();
                tokio::select! {
                    // Stopping ends the invocation as Lambda ends a function: the batch comes
                    // back after its visibility timeout.
                    _ = stopped.wait_for(|s| *s) => {}
                    () = invocation.invoke(messages) => {}
                }
                drop(permit);
            });
        }
    }

    /// One batch, long-polled (empty when the queue had nothing, or the call failed).
    async fn receive(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.mapping.queue_url)
            .max_number_of_messages(self.mapping.batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Vec::new()
            }
        }
    }

    /// Hands `messages` to the function, then deletes what it did not report failed.
    async fn invoke(&self, messages: Vec<aws_sdk_sqs::types::Message>) {
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| self.to_lambda_message(m)).collect();
        let started = Instant::now();
        let handled = tokio::time::timeout(self.timeout, self.handler.handle(event)).await;
        self.meter.invoked(&self.mapping.binary, started.elapsed());
        let failed: HashSet<String> = match handled {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(_) => {
                let message_ids: Vec<&str> =
                    messages.iter().filter_map(|m| m.message_id()).collect();
                tracing::error!(function = %self.mapping.function, ?message_ids, "invocation timed out; the batch will be retried");
                return;
            }
        };
        if !failed.is_empty() && !self.mapping.report_batch_item_failures {
            return; // without ReportBatchItemFailures any failure retries the whole batch
        }
        let entries: Vec<_> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.mapping.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed; messages will be handed back");
        }
    }

    fn to_lambda_message(&self, m: &aws_sdk_sqs::types::Message) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = m.message_id().map(str::to_owned);
        message.receipt_handle = m.receipt_handle().map(str::to_owned);
        message.body = m.body().map(str::to_owned);
        message.md5_of_body = m.md5_of_body().map(str::to_owned);
        message.attributes = m
            .attributes()
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        message.event_source = Some("aws:sqs".into());
        message.event_source_arn = self.mapping.queue_arn.clone();
        message.aws_region = self.region.clone();
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(listen: &str, admin: &str, ingest: &str) -> GatewayOptions {
        GatewayOptions {
            listen: listen.parse().unwrap(),
            admin_token: admin.into(),
            ingest_token: ingest.into(),
            overrides: HashMap::new(),
        }
    }

    #[test]
    fn default_tokens_are_refused_beyond_loopback_only() {
        let (admin, ingest) = (DEFAULT_ADMIN_TOKEN, DEFAULT_INGEST_TOKEN);
        assert!(check_exposure(&options("127.0.0.1:3000", admin, ingest)).is_ok());
        assert!(check_exposure(&options("[::1]:3000", admin, ingest)).is_ok());
        for exposed in ["0.0.0.0:3000", "192.168.1.5:3000", "[::]:3000"] {
            assert!(matches!(
                check_exposure(&options(exposed, admin, "own-ingest")),
                Err(GatewayError::DefaultTokensExposed(_))
            ));
            assert!(check_exposure(&options(exposed, "own-admin", ingest)).is_err());
            assert!(check_exposure(&options(exposed, "own-admin", "own-ingest")).is_ok());
        }
    }

    #[tokio::test]
    async fn only_the_exact_token_passes() {
        let app =
            Router::new()
                .route("/", get(|| async { "in" }))
                .layer(middleware::from_fn_with_state(
                    Arc::new("s3cret".to_owned()),
                    require_bearer,
                ));
        for (header, status) in [
            (Some("Bearer s3cret"), 200),
            (Some("Bearer s3cre"), 401),
            (Some("Bearer s3cret2"), 401),
            (Some("s3cret"), 401),
            (None, 401),
        ] {
            let mut request = Request::builder().uri("/");
            if let Some(h) = header {
                request = request.header(header::AUTHORIZATION, h);
            }
            let response = tower::ServiceExt::oneshot(
                app.clone(),
                request.body(axum::body::Body::empty()).unwrap(),
            )
            .await
            .unwrap();
            assert_eq!(response.status().as_u16(), status, "{header:?}");
        }
    }
}
