//! The built function binaries run as Lambda runs them: under a Runtime API (emulated),
//! configured only through the environment `template.yaml` sets, with the credentials of their
//! own role.

use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::harness::OwnQueue;
use crate::runtime_api::RuntimeApi;
use crate::Harness;

/// A function binary started as Lambda starts it, under a Runtime API of its own; what it
/// prints is kept in `output`.
pub struct Function {
    pub runtime: RuntimeApi,
    pub child: Child,
    /// Just before the process was started.
    pub started: std::time::Instant,
    output: tempfile::NamedTempFile,
}

impl Function {
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.output.path()).unwrap_or_default()
    }

    /// Invokes the function with `event`; returns its response (an error fails the test).
    pub async fn call(&self, event: Value) -> Value {
        self.runtime.call(event, || self.output()).await
    }

    /// Waits for the process to end (an init failure); returns whether it succeeded.
    pub async fn exit(&mut self) -> bool {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the function exited in time")
            .expect("wait")
            .success()
    }
}

/// Starts `name` with the environment `template.yaml` gives it and `credentials` (the
/// function's own role's unless given), plus `extra_env`.
pub async fn spawn_as(
    name: &str,
    credentials: Option<Credentials>,
    extra_env: &[(&str, String)],
) -> Function {
    spawn_built(
        &Harness::get().built_binary(name),
        name,
        credentials,
        extra_env,
    )
    .await
}

/// [`spawn_as`] with the binary at `binary` (a release build, say).
pub async fn spawn_built(
    binary: &std::path::Path,
    name: &str,
    credentials: Option<Credentials>,
    extra_env: &[(&str, String)],
) -> Function {
    let h = Harness::get();
    let credentials = match credentials {
        Some(c) => c,
        None => h.function_credentials(name).await,
    };
    let runtime = RuntimeApi::start().await;
    let output = tempfile::NamedTempFile::new().expect("output file");
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(&h.stack.env)
        .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_ENDPOINT_URL", &h.endpoint)
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .env(
            "AWS_SESSION_TOKEN",
            credentials.session_token().unwrap_or_default(),
        )
        .env("AWS_REGION", "us-east-1")
        .stdout(output.reopen().expect("output"))
        .stderr(output.reopen().expect("output"))
        .kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let started = std::time::Instant::now();
    let child = command.spawn().expect("start function binary");
    Function {
        runtime,
        child,
        started,
        output,
    }
}

pub async fn spawn(name: &str, extra_env: &[(&str, String)]) -> Function {
    spawn_as(name, None, extra_env).await
}

/// deliver's role as `template.yaml` writes it, for `queue` instead of the stack's, less
/// `without_action`; returns its credentials.
pub async fn deliver_role_for(queue: &OwnQueue, without_action: Option<&str>) -> Credentials {
    role_for("deliver", queue, without_action).await
}

/// The deliver binary with `credentials`, taking its messages from `queue`.
pub async fn deliver_from(queue: &OwnQueue, credentials: Credentials) -> Function {
    let queue_url = queue.url.clone();
    spawn_as(
        "deliver",
        Some(credentials),
        &[("DELIVERY_QUEUE_URL", queue_url)],
    )
    .await
}

/// `function`'s role as `template.yaml` writes it, for `queue` instead of the stack's
/// deliveries queue, less `without_action`; returns its credentials.
pub async fn role_for(
    function: &str,
    queue: &OwnQueue,
    without_action: Option<&str>,
) -> Credentials {
    let h = Harness::get();
    let stack_queue = h.stack_json["resources"]["DeliveriesQueue"]["arn"]
        .as_str()
        .expect("queue arn");
    let role = h
        .derive_role(function, &[(stack_queue, &queue.arn)], without_action)
        .await;
    h.role_credentials(&role).await
}

/// The fanout binary with `credentials`, sending its delivery messages to `queue`.
pub async fn fanout_to(queue: &OwnQueue, credentials: Credentials) -> Function {
    spawn_as(
        "fanout",
        Some(credentials),
        &[("DELIVERY_QUEUE_URL", queue.url.clone())],
    )
    .await
}
