//! The local gateway: runs the real function handlers on one laptop.
//!
//! - serves the HTTP API (`api`: what API Gateway routes to `admin-api` and `fanout`) with the
//!   local bearer-token auth of SPEC §7 standing in for the JWT and IAM authorizers;
//! - drains each SQS queue that `template.yaml` maps to a function the way a Lambda event
//!   source mapping does (`pollers::sqs`): batches of `BatchSize`, the handler's partial
//!   batch failures kept, everything else deleted, visibility timeouts left to SQS;
//! - reads each DynamoDB table stream that `template.yaml` maps to `fanout` the way a
//!   Lambda event source mapping does (`pollers::dynamodb_stream`): filtered, batched,
//!   checkpointed per shard, a batch retried from its lowest failed sequence number.
//!
//! The resources come from `infra/local/stack.py up`, which creates them from
//! `template.yaml` in the emulator and describes them (one source of truth). Each function
//! runs, and its event sources poll, with the credentials of that function's own role
//! (sts:AssumeRole from the local runner), so an emulator that enforces IAM refuses what
//! AWS would refuse.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::sts::AssumeRoleProvider;
use aws_config::SdkConfig;
use aws_sdk_sqs::config::{Credentials, SharedCredentialsProvider};
use serde::Deserialize;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use alerter::Alerter;
use deliver::Deliverer;
use fanout::Fanout;
use webhooks_shared::Config;

mod api;
pub mod meter;
pub mod pollers;
pub mod throttle;
pub mod tokens;
use meter::Meter;
use pollers::dynamodb_stream::{StreamEventSourceMapping, StreamPoller, StreamSource};
pub use pollers::sqs::EventSourceMapping;
use pollers::sqs::{Poller as QueuePoller, QueueHandler};

pub const DEFAULT_ADMIN_TOKEN: &str = "dev-admin-token";
pub const DEFAULT_INGEST_TOKEN: &str = "dev-ingest-token";

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
    /// The DynamoDB table streams mapped to functions (`pollers::dynamodb_stream`).
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

/// Builds the handlers with their crates' `wire`, as their `main.rs` do, each with its own
/// role's credentials, then serves them. `sdk` points at the emulator; the stack says who signs in.
pub async fn start(
    sdk: &SdkConfig,
    stack: &StackDescription,
    options: GatewayOptions,
) -> Result<RunningGateway, GatewayError> {
    check_exposure(&options)?;
    tokens::check_distinct(&options.admin_token, &options.ingest_token)?;
    let config = settings(stack, &options)?;
    let stream_sources = stream_sources(stack)?;
    let roles = Roles::assume(sdk, stack).await?;
    let functions = Functions::build(roles, &config)?;

    let meter = Meter::default();
    let app = api::router(
        stack,
        &options,
        &functions.admin,
        Arc::clone(&functions.fanout),
        &meter,
    );
    let (stop, stopped) = watch::channel(false);
    let (addr, server) = api::serve(options.listen, app, stopped.clone()).await?;

    let region = sdk.region().map(|r| r.to_string());
    let region = region.as_deref();
    let mut tasks = vec![server];
    tasks.extend(spawn_queue_pollers(
        stack, &functions, region, &meter, &stopped,
    ));
    tasks.extend(spawn_stream_pollers(
        stack,
        stream_sources,
        &functions,
        region,
        &meter,
        &stopped,
    ));
    Ok(RunningGateway {
        addr,
        meter,
        stop,
        tasks,
    })
}

/// The settings the handlers read: explicit overrides first; then the `WEBHOOKS_*` settings
/// of the person running it (e.g. `WEBHOOKS_ALERT_EMAILS=me@example.com make dev`); then
/// what the template sets. The digest links to the console this gateway serves unless
/// `WEBHOOKS_CONSOLE_URL` names one (a gateway on a port chosen at bind time has no
/// address yet: then the path alone).
fn settings(stack: &StackDescription, options: &GatewayOptions) -> Result<Config, GatewayError> {
    let mut config = Config::from_lookup(|name| {
        options.overrides.get(name).cloned().or_else(|| {
            let from_shell = || std::env::var(name).ok().filter(|v| !v.is_empty());
            let mine = name.starts_with("WEBHOOKS_").then(from_shell).flatten();
            mine.or_else(|| stack.env.get(name).cloned())
                .or_else(from_shell)
        })
    })?;
    if config.console.url.is_none() {
        config.console.url = served_console_url(options.listen);
    }
    Ok(config)
}

/// The console this gateway serves, when its address is known before it listens.
fn served_console_url(listen: SocketAddr) -> Option<String> {
    (listen.port() != 0).then(|| format!("http://{listen}"))
}

/// The enabled stream event sources, checked before anything starts: a stream source the
/// gateway would emulate unlike Lambda stops it.
fn stream_sources(stack: &StackDescription) -> Result<Vec<StreamSource>, GatewayError> {
    stack
        .stream_event_source_mappings
        .iter()
        .filter(|m| m.enabled)
        .map(StreamSource::check)
        .collect()
}

/// Each function's SDK configuration, with the credentials of its own role, assumed by the
/// local runner, as Lambda gives a function its role's.
struct Roles {
    admin: SdkConfig,
    fanout: SdkConfig,
    deliver: SdkConfig,
    alerter: SdkConfig,
}

impl Roles {
    async fn assume(sdk: &SdkConfig, stack: &StackDescription) -> Result<Self, GatewayError> {
        let runner = stack.runner_sdk_config(sdk);
        Ok(Roles {
            admin: stack.function_sdk_config(&runner, "admin-api").await?,
            fanout: stack.function_sdk_config(&runner, "fanout").await?,
            deliver: stack.function_sdk_config(&runner, "deliver").await?,
            alerter: stack.function_sdk_config(&runner, "alerter").await?,
        })
    }
}

/// The handlers, built by their crates' `wire` as their `main.rs` build them, each on its
/// own role's credentials; the roles stay with them, since Lambda polls a function's event
/// sources with its role.
struct Functions {
    roles: Roles,
    admin: admin_api::Handler,
    fanout: Arc<Fanout>,
    deliverer: Arc<Deliverer>,
    alerter: Arc<Alerter>,
}

impl Functions {
    fn build(roles: Roles, config: &Config) -> Result<Self, GatewayError> {
        Ok(Functions {
            admin: admin_api::wire(&roles.admin, config),
            fanout: Arc::new(fanout::wire(&roles.fanout, config)),
            deliverer: Arc::new(deliver::wire(&roles.deliver, config)?),
            alerter: Arc::new(alerter::wire(&roles.alerter, config)),
            roles,
        })
    }
}

/// The receive loops of each enabled SQS event source whose function runs here
/// (`pollers::sqs`).
fn spawn_queue_pollers(
    stack: &StackDescription,
    functions: &Functions,
    region: Option<&str>,
    meter: &Meter,
    stopped: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for mapping in stack.event_source_mappings.iter().filter(|m| m.enabled) {
        // Lambda polls a function's queue with that function's role.
        let (handler, sqs) = match mapping.binary.as_str() {
            "deliver" => (
                QueueHandler::Deliver(Arc::clone(&functions.deliverer)),
                aws_sdk_sqs::Client::new(&functions.roles.deliver),
            ),
            "alerter" => (
                QueueHandler::Alerter(Arc::clone(&functions.alerter)),
                aws_sdk_sqs::Client::new(&functions.roles.alerter),
            ),
            _ => {
                tracing::warn!(function = %mapping.function, "no local handler for this event source; skipped");
                continue;
            }
        };
        let poller = QueuePoller::new(
            mapping,
            sqs,
            handler,
            region.map(str::to_owned),
            stack.timeout_of(&mapping.function),
            meter.clone(),
            stopped.clone(),
        );
        tasks.extend(poller.spawn());
    }
    tasks
}

/// The poller of each checked stream event source whose function runs here
/// (`pollers::dynamodb_stream`).
fn spawn_stream_pollers(
    stack: &StackDescription,
    sources: Vec<StreamSource>,
    functions: &Functions,
    region: Option<&str>,
    meter: &Meter,
    stopped: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    for source in sources {
        let mapping = &source.mapping;
        if mapping.binary != "fanout" {
            tracing::warn!(function = %mapping.function, "no local handler for this stream event source; skipped");
            continue;
        }
        let timeout = stack.timeout_of(&mapping.function);
        // Lambda reads a function's stream with that function's role.
        let poller = StreamPoller::new(
            source,
            aws_sdk_dynamodbstreams::Client::new(&functions.roles.fanout),
            Arc::clone(&functions.fanout),
            region.map(str::to_owned),
            timeout,
            meter.clone(),
            stopped.clone(),
        );
        tasks.push(tokio::spawn(poller.run()));
    }
    tasks
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

    fn stack_with(env: &[(&str, &str)]) -> StackDescription {
        let mut env: HashMap<&str, &str> = env.iter().copied().collect();
        for name in [
            "WEBHOOKS_TABLE",
            "SUBSCRIPTIONS_TABLE",
            "EVENTS_TABLE",
            "DELIVERIES_TABLE",
            "ATTEMPTS_TABLE",
            "DELIVERY_QUEUE_URL",
            "SECRETS_KEY_ID",
            "ALERTS_TABLE",
            "ALERT_QUEUE_URL",
        ] {
            env.entry(name).or_insert("x");
        }
        StackDescription::from_json(&serde_json::json!({ "env": env }).to_string()).unwrap()
    }

    #[test]
    fn digests_link_to_the_console_served_here_unless_a_console_url_is_set() {
        let stack = stack_with(&[("WEBHOOKS_CONSOLE_URL", "")]);
        let url = |options: &GatewayOptions| settings(&stack, options).unwrap().console.url;
        let mut fixed_port = options("127.0.0.1:3000", "a", "i");
        assert_eq!(url(&fixed_port).as_deref(), Some("http://127.0.0.1:3000"));
        fixed_port.overrides.insert(
            "WEBHOOKS_CONSOLE_URL".into(),
            "https://console.example.com".into(),
        );
        assert_eq!(
            url(&fixed_port).as_deref(),
            Some("https://console.example.com")
        );
        // A port chosen at bind time: no address yet, so the digest names the path alone.
        let chosen_at_bind = options("127.0.0.1:0", "a", "i");
        assert_eq!(url(&chosen_at_bind), None);
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
}
