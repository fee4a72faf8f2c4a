//! One harness per test process: moto server, stack from `template.yaml`, local gateway.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, ProvideCredentials};
use aws_sdk_sqs::types::QueueAttributeName;
use local_gateway::{GatewayOptions, StackDescription, DEFAULT_ADMIN_TOKEN, DEFAULT_INGEST_TOKEN};
use webhooks_shared::adapters::Adapters;
use webhooks_shared::Config;

use crate::fault_proxy::FaultProxy;
use crate::tls::TestCa;

/// The retry waits the harness runs with (`WEBHOOKS_RETRY_DELAYS`): the whole schedule of
/// 6 attempts takes seconds, and the waits differ so a test can tell them apart.
pub const RETRY_DELAYS: [u64; 5] = [1, 2, 1, 2, 1];
pub const REGION: &str = "us-east-1";
/// A digest waits this long for more failures (`WEBHOOKS_ALERT_GATHER_SECONDS`): long enough
/// for the storm test's 124 notices to be handled first on a loaded 2-core machine with IAM
/// enforced (10 s was not always).
pub const ALERT_GATHER_SECS: u64 = 20;
/// The least time between two digests of a webhook (`WEBHOOKS_ALERT_WINDOW_SECONDS`): short,
/// so a test sees the digest that follows one (failures handled after its window was claimed).
pub const ALERT_WINDOW_SECS: u64 = 30;

pub struct Harness {
    pub root: PathBuf,
    pub endpoint: String,
    pub stack: StackDescription,
    pub stack_json: serde_json::Value,
    pub gateway: String,
    pub ca: TestCa,
    pub admin_token: String,
    pub ingest_token: String,
    /// Everything the in-process handlers logged (JSON lines).
    pub logs: LogBuffer,
    /// Between the gateway (handlers and pollers) and the emulator: counts their calls and
    /// injects faults when told to (off unless a test turns them on).
    pub proxy: FaultProxy,
    /// What API Gateway and Lambda would bill for the gateway's work.
    pub invocations: local_gateway::meter::Meter,
    _moto: Option<Mutex<Child>>,
}

/// Collects the log output of the whole test process.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

impl Harness {
    pub fn get() -> &'static Harness {
        HARNESS.get_or_init(start)
    }

    /// The last `n` warnings and errors the handlers and pollers logged, if the harness
    /// started: printed when a wait times out, so a failure on CI says what went wrong.
    pub fn recent_problems(n: usize) -> Vec<String> {
        let Some(harness) = HARNESS.get() else {
            return Vec::new();
        };
        let problems: Vec<String> = harness
            .logs
            .text()
            .lines()
            .filter(|line| {
                line.contains(r#""level":"WARN""#) || line.contains(r#""level":"ERROR""#)
            })
            .map(str::to_owned)
            .collect();
        problems[problems.len().saturating_sub(n)..].to_vec()
    }

    /// Writes everything logged so far to `target/test-log-<pid>.jsonl`, if the harness
    /// started, for a closer look where the test ran; returns the file's path.
    pub fn save_log() -> Option<PathBuf> {
        let harness = HARNESS.get()?;
        let path = harness
            .root
            .join(format!("target/test-log-{}.jsonl", std::process::id()));
        std::fs::write(&path, harness.logs.text()).ok()?;
        Some(path)
    }

    pub fn python(&self) -> PathBuf {
        self.root.join(".venv/bin/python")
    }

    pub fn env(&self, name: &str) -> String {
        self.stack
            .env
            .get(name)
            .unwrap_or_else(|| panic!("stack has no {name}"))
            .clone()
    }

    /// Clears both meters: the emulator's (AWS calls as billed) and the gateway's
    /// (HTTP API requests and invocations).
    pub async fn reset_meters(&self) {
        let answer = reqwest::Client::new()
            .post(format!("{}/_comps/meter/reset", self.endpoint))
            .send()
            .await
            .expect("emulator meter");
        assert!(
            answer.status().is_success(),
            "meter reset: {}",
            answer.status()
        );
        self.invocations.take();
    }

    /// What was used since [`Harness::reset_meters`], as AWS would bill it.
    pub async fn usage(&self) -> crate::cost::Usage {
        let emulator: crate::cost::EmulatorReading =
            reqwest::get(format!("{}/_comps/meter", self.endpoint))
                .await
                .expect("emulator meter")
                .json()
                .await
                .expect("emulator meter JSON");
        let memory = self.stack_json["functions"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, f)| {
                Some((
                    f["binary"].as_str()?.to_owned(),
                    u32::try_from(f["memory_size"].as_u64()?).ok()?,
                ))
            })
            .collect();
        // Tables by their logical id; queues by their name without the stack's prefix (a
        // FIFO queue's name ends in `.fifo`, which prices it).
        let prefix = format!("{}-", self.stack_json["stack_name"].as_str().unwrap_or(""));
        let names = self.stack_json["resources"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(logical_id, r)| match r["type"].as_str()? {
                "AWS::DynamoDB::Table" => {
                    Some((r["physical_id"].as_str()?.to_owned(), logical_id.clone()))
                }
                "AWS::SQS::Queue" => {
                    let name = r["url"].as_str()?.rsplit('/').next()?;
                    let shown = name.strip_prefix(&prefix).unwrap_or(name);
                    Some((name.to_owned(), shown.to_owned()))
                }
                _ => None,
            })
            .collect();
        crate::cost::Usage::from_readings(&emulator, &self.invocations.take(), &memory, &names)
    }

    /// The emails the emulator's SES accepted: `{id, source, destinations, subject, body}`,
    /// where body is the HTML part (the launcher's `GET /_comps/emails`).
    pub async fn sent_emails(&self) -> Vec<serde_json::Value> {
        let url = format!("{}/_comps/emails", self.endpoint);
        let answer = reqwest::get(&url)
            .await
            .expect("the emulator's sent emails");
        answer.json().await.expect("sent emails JSON")
    }

    /// The emails whose subject names `webhook_name` (digests name their webhook).
    pub async fn emails_about(&self, webhook_name: &str) -> Vec<serde_json::Value> {
        self.sent_emails()
            .await
            .into_iter()
            .filter(|m| {
                m["subject"]
                    .as_str()
                    .is_some_and(|s| s.contains(webhook_name))
            })
            .collect()
    }

    /// An SDK configuration for the emulator signed in as the local runner (an operator),
    /// for tests that look at AWS directly.
    pub async fn sdk_config(&self) -> SdkConfig {
        self.stack
            .runner_sdk_config(&sdk_config(&self.endpoint).await)
    }

    /// [`Harness::sdk_config`] through `endpoint` (a proxy of the test's own, say).
    pub async fn sdk_config_via(&self, endpoint: &str) -> SdkConfig {
        self.stack.runner_sdk_config(&sdk_config(endpoint).await)
    }

    /// Credentials of the role `binary` runs under, as Lambda puts them in a function's
    /// environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
    pub async fn function_credentials(&self, binary: &str) -> Credentials {
        let (_, function) = self.stack.function(binary).expect("function");
        let role = function
            .role_arn
            .as_deref()
            .expect("the function has a role");
        self.role_credentials(role).await
    }
}

async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .http_client(webhooks_shared::adapters::aws_http_client())
        // A busy machine's emulator can sit silent past the SDK's 20 s grace mid-answer
        // (moto writes out a long query slowly); that is not the stall AWS's protection is
        // for, and it turned into 503s under load. A minute, still a bound.
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto server did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// moto through the project's launcher (resource-level IAM checks as on AWS), stopped when
/// our end of its stdin closes, which happens however this test process ends.
fn start_moto(root: &Path, python: &Path) -> (String, Child) {
    let port = free_port();
    let child = Command::new(python)
        .arg(root.join("infra/local/moto_server.py"))
        .args(["--port", &port.to_string(), "--until-stdin-closes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto server (is .venv installed? run `bash infra/venv.sh`)");
    wait_for_port(port, Duration::from_secs(60));
    (format!("http://127.0.0.1:{port}"), child)
}

fn create_stack(
    root: &Path,
    python: &Path,
    endpoint: &str,
    enforce_iam: bool,
) -> serde_json::Value {
    let mut command = Command::new(python);
    command
        .arg(root.join("infra/local/stack.py"))
        .args(["up", "--endpoint", endpoint, "--stack-name"])
        .arg(format!("it-{}", std::process::id()));
    if enforce_iam {
        command.arg("--enforce-iam");
    }
    let output = command
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .expect("run infra/local/stack.py");
    assert!(
        output.status.success(),
        "stack.py up failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stack.py prints JSON")
}

fn start() -> Harness {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let python = root.join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash infra/venv.sh` (make test does)",
        python.display()
    );
    let (endpoint, moto) = match std::env::var("WEBHOOKS_TEST_AWS_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => (endpoint, None),
        _ => {
            let (endpoint, child) = start_moto(&root, &python);
            (endpoint, Some(Mutex::new(child)))
        }
    };
    // Our own moto checks IAM from the moment the roles exist: every handler runs with its
    // own role's credentials, as on AWS.
    let stack_json = create_stack(&root, &python, &endpoint, moto.is_some());
    let stack: StackDescription =
        serde_json::from_value(stack_json.clone()).expect("stack description");
    // The handlers log as in production (JSON), into a buffer tests can read.
    let logs = LogBuffer::default();
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .with_writer(logs.clone())
        .try_init();
    let ca = TestCa::new();
    // The benches that model `make dev` (the isolation bench) run the real schedule:
    // `HARNESS_RETRY_DELAYS=60,120,240,480,900`.
    let delays = std::env::var("HARNESS_RETRY_DELAYS")
        .unwrap_or_else(|_| RETRY_DELAYS.map(|d| d.to_string()).join(","));
    let options = GatewayOptions {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_token: DEFAULT_ADMIN_TOKEN.into(),
        ingest_token: DEFAULT_INGEST_TOKEN.into(),
        overrides: [
            ("WEBHOOKS_RETRY_DELAYS".to_string(), delays),
            (
                "WEBHOOKS_ALERT_GATHER_SECONDS".to_string(),
                ALERT_GATHER_SECS.to_string(),
            ),
            (
                "WEBHOOKS_ALERT_WINDOW_SECONDS".to_string(),
                ALERT_WINDOW_SECS.to_string(),
            ),
            (
                "WEBHOOKS_ALLOW_PRIVATE_TARGETS".to_string(),
                "1".to_string(),
            ),
            (
                "WEBHOOKS_EXTRA_CA_FILE".to_string(),
                ca.pem_path.display().to_string(),
            ),
        ]
        .into(),
    };

    // The gateway lives on a runtime of its own, for the whole test process: each test's
    // runtime ends with the test.
    let (ready, gateway_addr) = std::sync::mpsc::channel();
    let gateway_stack = stack.clone();
    let gateway_endpoint = endpoint.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("gateway runtime");
        runtime.block_on(async move {
            let proxy = FaultProxy::start(&gateway_endpoint).await;
            let sdk = sdk_config(&proxy.url).await;
            let gateway = local_gateway::start(&sdk, &gateway_stack, options)
                .await
                .expect("start local gateway");
            let _ = ready.send((gateway.addr, proxy, gateway.meter.clone()));
            // A late tick means something blocked the gateway's threads: logged, as it
            // explains a late retry in a test that timed out.
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = std::time::Instant::now();
            loop {
                ticks.tick().await;
                let late = last.elapsed().saturating_sub(Duration::from_millis(100));
                if late > Duration::from_secs(1) {
                    tracing::warn!(late_ms = late.as_millis() as u64, "gateway runtime stalled");
                }
                last = std::time::Instant::now();
            }
        });
    });
    let (addr, proxy, invocations) = gateway_addr
        .recv_timeout(Duration::from_secs(60))
        .expect("local gateway did not start");
    Harness {
        root,
        endpoint,
        stack,
        stack_json,
        gateway: format!("http://{addr}"),
        ca,
        admin_token: DEFAULT_ADMIN_TOKEN.into(),
        ingest_token: DEFAULT_INGEST_TOKEN.into(),
        logs,
        proxy,
        invocations,
        _moto: moto,
    }
}

/// Roles made by tests from a function's role in `template.yaml`.
impl Harness {
    /// A role with the statements `template.yaml` gives `binary`'s role, with each
    /// `(from, to)` ARN of `replace` swapped (e.g. a queue of the test's own for the stack's)
    /// and `without_action` taken out of every statement. Returns its ARN.
    pub async fn derive_role(
        &self,
        binary: &str,
        replace: &[(&str, &str)],
        without_action: Option<&str>,
    ) -> String {
        let (id, _) = self.stack.function(binary).expect("function");
        let mut policies = self.stack_json["functions"][id]["role_policies"].to_string();
        for (from, to) in replace {
            policies = policies.replace(from, to);
        }
        let mut policies: serde_json::Value = serde_json::from_str(&policies).expect("json");
        for document in policies.as_object_mut().expect("policies").values_mut() {
            let statements = document["Statement"].as_array_mut().expect("statements");
            for statement in statements.iter_mut() {
                let actions = match statement["Action"].take() {
                    serde_json::Value::String(one) => vec![one],
                    serde_json::Value::Array(many) => many
                        .into_iter()
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect(),
                    _ => vec![],
                };
                let kept: Vec<String> = actions
                    .into_iter()
                    .filter(|a| Some(a.as_str()) != without_action)
                    .collect();
                statement["Action"] = serde_json::json!(kept);
            }
            statements.retain(|s| s["Action"].as_array().is_some_and(|a| !a.is_empty()));
        }
        let iam = aws_sdk_iam::Client::new(&self.sdk_config().await);
        let name = crate::unique("test-role");
        let runner = self.stack_json["local_runner"]["user_arn"]
            .as_str()
            .expect("runner arn");
        let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": runner}, "Action": "sts:AssumeRole"}]});
        let role = iam
            .create_role()
            .role_name(&name)
            .assume_role_policy_document(trust.to_string())
            .send()
            .await
            .expect("create role");
        for (policy, document) in policies.as_object().expect("policies") {
            iam.put_role_policy()
                .role_name(&name)
                .policy_name(policy)
                .policy_document(document.to_string())
                .send()
                .await
                .expect("put role policy");
        }
        role.role.expect("role").arn
    }

    /// Credentials of `role_arn`, assumed as the local runner.
    pub async fn role_credentials(&self, role_arn: &str) -> Credentials {
        aws_config::sts::AssumeRoleProvider::builder(role_arn)
            .session_name("test")
            .configure(&self.sdk_config().await)
            .build()
            .await
            .provide_credentials()
            .await
            .expect("assume role")
    }
}

/// A queue made by a test, so that only the code under test sees its messages.
pub struct OwnQueue {
    pub url: String,
    pub arn: String,
}

impl OwnQueue {
    /// Up to 10 of its messages, waiting at most `wait_seconds` for the first.
    pub async fn receive(
        &self,
        sqs: &aws_sdk_sqs::Client,
        wait_seconds: i32,
    ) -> Vec<aws_sdk_sqs::types::Message> {
        sqs.receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    }
}

/// What tests build from the stack themselves, as the handlers would.
impl Harness {
    /// The configuration the handlers read from the environment `template.yaml` gives them,
    /// with `overrides` set on top (e.g. a queue of the test's own).
    pub fn config(&self, overrides: &[(&str, &str)]) -> Config {
        let mut env = self.stack.env.clone();
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned()).expect("config")
    }

    /// The adapters a handler builds from `config`, signed in as the local runner.
    pub async fn adapters(&self, config: &Config) -> Adapters {
        Adapters::new(&self.sdk_config().await, config)
    }

    /// A queue of the test's own, named after `prefix`.
    pub async fn own_queue(&self, prefix: &str) -> OwnQueue {
        self.create_queue(crate::unique(prefix), &[]).await
    }

    /// A FIFO queue of the test's own, like the deliveries queue, whose messages come back
    /// `visibility_secs` after a receive.
    pub async fn own_fifo_queue(&self, prefix: &str, visibility_secs: u32) -> OwnQueue {
        let visibility = visibility_secs.to_string();
        let attributes = [
            (QueueAttributeName::FifoQueue, "true"),
            (QueueAttributeName::VisibilityTimeout, visibility.as_str()),
        ];
        self.create_queue(format!("{}.fifo", crate::unique(prefix)), &attributes)
            .await
    }

    async fn create_queue(
        &self,
        name: String,
        attributes: &[(QueueAttributeName, &str)],
    ) -> OwnQueue {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk_config().await);
        let url = sqs
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(
                attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), (*v).to_owned()))
                    .collect(),
            ))
            .send()
            .await
            .expect("queue")
            .queue_url
            .expect("url");
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("arn");
        OwnQueue { url, arn }
    }

    /// A binary of the workspace, as `cargo build --workspace --bins` leaves it.
    pub fn built_binary(&self, name: &str) -> PathBuf {
        let target =
            std::env::var("CARGO_TARGET_DIR").map_or_else(|_| self.root.join("target"), Into::into);
        let path = target.join("debug").join(name);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --workspace --bins` first (make test does)",
            path.display()
        );
        path
    }
}
