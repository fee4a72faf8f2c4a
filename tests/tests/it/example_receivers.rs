//! The example receivers (`examples/receiver-{rust,node,python}`) against real deliveries.
//! Each runs as its own process on a free loopback port, serving HTTPS with a certificate
//! from the test CA, with the secret the admin API revealed when the webhook was created
//! (the webhook is created first, for the port picked, then the receiver is started). Then:
//! a real event through ingest is delivered and accepted (its output and the delivery log
//! say so); the captured delivery (the request as sent, from the delivery log) sent again is
//! answered 200 as a duplicate and not processed twice, and so is a real redelivery; sent
//! with a fresh `X-Comps-Timestamp` but an old `webhook-timestamp` it is refused (400); with
//! a fresh `webhook-timestamp` but its old signature, or with a tampered body, it is refused
//! (401).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use integration_tests::{unique, Api, Harness, WAIT};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::process::{Child, Command};

/// Few tests subscribe to it: few other events reach the receivers (they are accepted too,
/// and every assertion here looks at this test's own event only).
const EVENT_TYPE: &str = "winner.prize_choice_made";

#[derive(Debug, Clone, Copy)]
enum Example {
    Rust,
    Node,
    Python,
}

impl Example {
    fn command(self) -> Command {
        let h = Harness::get();
        match self {
            Example::Rust => Command::new(h.built_binary("receiver-rust")),
            Example::Node => {
                let mut command = Command::new("node");
                command.arg(h.root.join("examples/receiver-node/receiver.mjs"));
                command
            }
            Example::Python => {
                let mut command = Command::new(h.python());
                command.arg(h.root.join("examples/receiver-python/receiver.py"));
                command
            }
        }
    }
}

/// A receiver process; killed when dropped, however the test ends.
struct Running {
    example: Example,
    child: Child,
    output: tempfile::NamedTempFile,
    _certs: tempfile::TempDir,
}

impl Running {
    /// What it printed so far (stdout and stderr).
    fn output(&self) -> String {
        std::fs::read_to_string(self.output.path()).unwrap_or_default()
    }

    /// How many lines of its output start with `prefix`.
    fn lines(&self, prefix: &str) -> usize {
        self.output()
            .lines()
            .filter(|line| line.starts_with(prefix))
            .count()
    }

    /// Waits until it has printed `n` lines starting with `prefix`, and no more.
    async fn wait_for_lines(&self, prefix: &str, n: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.lines(prefix) < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            self.lines(prefix),
            n,
            "the {:?} receiver's lines starting {prefix:?}:\n{}",
            self.example,
            self.output()
        );
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in BASE64.encode(der).as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

/// Starts `example` on `port` with `secret`, a certificate from the test CA given as PEM
/// files, and waits until it accepts connections.
async fn start(example: Example, port: u16, secret: &str) -> Running {
    let certs = tempfile::tempdir().expect("temp dir");
    let cert = Harness::get().ca.server_cert();
    let chain: String = cert
        .chain
        .iter()
        .map(|der| pem("CERTIFICATE", der))
        .collect();
    let (cert_path, key_path) = (certs.path().join("cert.pem"), certs.path().join("key.pem"));
    std::fs::write(&cert_path, chain).expect("write cert");
    std::fs::write(&key_path, pem("PRIVATE KEY", cert.key.secret_der())).expect("write key");

    let output = tempfile::NamedTempFile::new().expect("output file");
    // Both appending to one file: neither writes over the other.
    let append = || {
        std::fs::OpenOptions::new()
            .append(true)
            .open(output.path())
            .expect("output")
    };
    let (stdout, stderr) = (append(), append());
    let child = example
        .command()
        .arg("--cert")
        .arg(&cert_path)
        .arg("--key")
        .arg(&key_path)
        .args(["--port", &port.to_string(), "--host", "127.0.0.1"])
        .env("WEBHOOK_SECRET", secret)
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start the {example:?} receiver: {e}"));
    let mut running = Running {
        example,
        child,
        output,
        _certs: certs,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if let Ok(Some(status)) = running.child.try_wait() {
            panic!(
                "the {example:?} receiver exited ({status}):\n{}",
                running.output()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the {example:?} receiver did not listen on {port}:\n{}",
            running.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running
}

/// `webhook-signature` as Standard Webhooks defines it, computed here independently.
fn standard_signature(secret: &str, id: &str, timestamp: u64, body: &[u8]) -> String {
    let key = BASE64
        .decode(secret.strip_prefix("whsec_").expect("whsec_ secret"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A delivery as the log recorded it: every header sent, and the exact body.
#[derive(Clone)]
struct Captured {
    headers: Map<String, Value>,
    body: String,
}

impl Captured {
    fn header(&self, name: &str) -> &str {
        self.headers[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers
            .insert(name.to_owned(), Value::String(value.into()));
        self
    }
}

/// Sends `request` to `url` as the service would (trusting the test CA); returns the
/// status and the JSON answer.
async fn send(url: &str, request: &Captured) -> (u16, Value) {
    let ca = std::fs::read(&Harness::get().ca.pem_path).expect("CA pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .build()
        .expect("client");
    let mut post = client.post(url).body(request.body.clone());
    for (name, value) in &request.headers {
        post = post.header(name, value.as_str().expect("header value"));
    }
    let answer = post.send().await.expect("the receiver answers");
    let status = answer.status().as_u16();
    let text = answer.text().await.expect("answer body");
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, json)
}

async fn exercise(example: Example) {
    let api = Api::new();
    let port = free_port();
    let url = format!("https://localhost:{port}/hook");
    let created = api
        .create_webhook(&unique("example-receiver"), &url, &[EVENT_TYPE])
        .await;
    let (wh, secret) = (created.id.as_str(), created.secret.as_str());
    let receiver = start(example, port, secret).await;
    let failed = |what: &str| format!("{example:?} receiver: {what}\n{}", receiver.output());

    // A real delivery through ingest: accepted, once.
    let data = json!({"id": unique("win"), "choice": "cash"});
    let event = api.post(EVENT_TYPE, data.clone()).await;
    let delivery = api
        .wait_for_event(wh, &event.id, &["succeeded", "permanently_failed"])
        .await;
    assert_eq!(delivery["state"], "succeeded", "{}", failed("delivery"));
    assert_eq!(delivery["attempts"], 1, "{}", failed("attempts"));
    let accepted = format!("accepted {} {EVENT_TYPE} ", event.id);
    let duplicate = format!("duplicate {}", event.id);
    receiver.wait_for_lines(&accepted, 1).await;
    assert!(
        receiver.output().contains(&format!("{accepted}{data}")),
        "{}",
        failed("prints the event's data")
    );
    let log = api.attempts_of_event(wh, &event.id).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["outcome"], "succeeded");
    assert_eq!(log[0]["response_status"], 200);
    let attempt_id = log[0]["id"].as_str().expect("attempt id");
    let detail = api.attempt(wh, attempt_id).await;
    let answered: Value =
        serde_json::from_str(detail.json["response"]["body"].as_str().unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(answered, json!({"ok": true}), "{}", detail.text);

    // The delivery as captured (the log keeps the request as sent, signatures included).
    let captured = Captured {
        headers: detail.json["request"]["headers"]
            .as_object()
            .expect("request headers")
            .clone(),
        body: detail.json["request"]["body"]
            .as_str()
            .expect("request body")
            .to_owned(),
    };
    assert_eq!(captured.header("webhook-id"), event.id);
    let sent_at: u64 = captured
        .header("webhook-timestamp")
        .parse()
        .expect("unix seconds");

    // Replayed as it was: a duplicate, answered 2xx so the service would stop, not processed.
    let (status, answer) = send(&url, &captured).await;
    assert_eq!(
        (status, &answer),
        (200, &json!({"ok": true, "duplicate": true})),
        "{}",
        failed("exact replay")
    );
    receiver.wait_for_lines(&duplicate, 1).await;
    // X-Comps-Event-Id is covered by no signature: changing it does not get a replay past
    // the dedup (which keys on the signed webhook-id).
    let relabelled = captured.clone().with("x-comps-event-id", unique("evt"));
    let (status, answer) = send(&url, &relabelled).await;
    assert_eq!(
        (status, &answer),
        (200, &json!({"ok": true, "duplicate": true})),
        "{}",
        failed("replay under another X-Comps-Event-Id")
    );
    receiver.wait_for_lines(&duplicate, 2).await;

    // X-Comps-Signature covers the body only: it still verifies with a fresh X-Comps-Timestamp.
    let mut comps = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    comps.update(captured.body.as_bytes());
    assert_eq!(
        captured.header("x-comps-signature"),
        hex::encode(comps.finalize().into_bytes())
    );
    let now = now_secs();
    let signed_at = |timestamp: u64| {
        captured
            .clone()
            .with("x-comps-timestamp", now.to_string())
            .with("webhook-timestamp", timestamp.to_string())
            .with(
                "webhook-signature",
                standard_signature(secret, &event.id, timestamp, captured.body.as_bytes()),
            )
    };
    // Control: re-signed here at the current time, the receiver takes the signature (this
    // test signs as the service does) and finds the event already processed.
    let (status, answer) = send(&url, &signed_at(now)).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(true)),
        "{}",
        failed("re-signed now")
    );
    receiver.wait_for_lines(&duplicate, 3).await;
    // A delivery captured 10 minutes ago, or stamped 10 minutes ahead: signature valid,
    // timestamp outside the 5 minutes of tolerance.
    for timestamp in [now - 600, now + 600] {
        let (status, answer) = send(&url, &signed_at(timestamp)).await;
        assert_eq!(
            status,
            400,
            "{}",
            failed(&format!(
                "webhook-timestamp {timestamp} (now {now}): {answer}"
            ))
        );
    }
    receiver.wait_for_lines("refused 400 ", 2).await;

    // The captured delivery with a fresh webhook-timestamp but its old signature: 401.
    let fresh = sent_at + 1;
    let restamped = captured
        .clone()
        .with("x-comps-timestamp", fresh.to_string())
        .with("webhook-timestamp", fresh.to_string());
    let (status, answer) = send(&url, &restamped).await;
    assert_eq!(status, 401, "{}", failed(&format!("restamped: {answer}")));
    // A tampered body: 401; and under another webhook-id (so no dedup would catch it): 401.
    let mut tampered = captured.clone();
    tampered.body = tampered.body.replace("cash", "car!");
    assert_ne!(tampered.body, captured.body);
    let (status, answer) = send(&url, &tampered).await;
    assert_eq!(status, 401, "{}", failed(&format!("tampered: {answer}")));
    let renamed = tampered.with("webhook-id", unique("evt"));
    let (status, answer) = send(&url, &renamed).await;
    assert_eq!(status, 401, "{}", failed(&format!("renamed: {answer}")));
    receiver.wait_for_lines("refused 401 ", 3).await;

    // A real redelivery (same webhook-id, fresh timestamp and signature): a duplicate,
    // answered 200, so the service records it as succeeded.
    let redelivered = api.redeliver(wh, attempt_id).await;
    assert_eq!(redelivered.status, 202, "{}", redelivered.text);
    let again = redelivered.json["delivery_id"]
        .as_str()
        .expect("delivery id");
    let delivery = api
        .wait_for_state(wh, again, &["succeeded", "permanently_failed"], WAIT)
        .await;
    assert_eq!(delivery["state"], "succeeded", "{}", failed("redelivery"));
    receiver.wait_for_lines(&duplicate, 4).await;
    let line = api
        .attempts_of_event(wh, &event.id)
        .await
        .into_iter()
        .find(|a| a["delivery_id"] == again)
        .expect("the redelivery's log line");
    let detail = api.attempt(wh, line["id"].as_str().expect("id")).await;
    let answered: Value =
        serde_json::from_str(detail.json["response"]["body"].as_str().unwrap_or_default())
            .unwrap_or_default();
    assert_eq!(answered["duplicate"], true, "{}", detail.text);

    // Processed exactly once in all.
    assert_eq!(receiver.lines(&accepted), 1, "{}", failed("processed once"));
    assert_eq!(api.delete_webhook(wh).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_receiver_takes_a_delivery_once_and_refuses_replays() {
    exercise(Example::Rust).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_example_receiver_takes_a_delivery_once_and_refuses_replays() {
    exercise(Example::Node).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_receiver_takes_a_delivery_once_and_refuses_replays() {
    exercise(Example::Python).await;
}
