//! A Lambda Runtime API emulator, enough to run the built function binaries as Lambda would:
//! the binary polls `next`, gets an event, and posts its response or error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, Mutex};

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Response { request_id: String, body: Value },
    Error { request_id: String, body: Value },
    InitError(Value),
}

struct Shared {
    events: Mutex<mpsc::UnboundedReceiver<(String, Value)>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    /// When the function first asked for an event: the end of its init.
    first_next: std::sync::OnceLock<Instant>,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<(String, Value)>,
    outcomes: Mutex<mpsc::UnboundedReceiver<Outcome>>,
    next_id: std::sync::atomic::AtomicU32,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            events: Mutex::new(events_rx),
            outcomes: outcomes_tx,
            first_next: std::sync::OnceLock::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            // `{id}/response` or `{id}/error`
            .route(
                "/2018-06-01/runtime/invocation/{id}/{answer}",
                post(invocation_answered),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind runtime api");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi {
            addr,
            shared,
            events: events_tx,
            outcomes: Mutex::new(outcomes_rx),
            next_id: Default::default(),
        }
    }

    /// When the function first asked for an event (its init done), if it has.
    pub fn first_next(&self) -> Option<Instant> {
        self.shared.first_next.get().copied()
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, event: Value) -> String {
        let n = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let request_id = format!("req-{n}");
        self.events
            .send((request_id.clone(), event))
            .expect("runtime api running");
        request_id
    }

    /// Invokes the function with `event` and returns its response to that invocation. Anything
    /// else (an error, no answer within a minute) fails the test, showing `context()` (say,
    /// what the function printed).
    pub async fn call(&self, event: Value, context: impl FnOnce() -> String) -> Value {
        let request_id = self.invoke(event);
        match self.outcome(Duration::from_secs(60)).await {
            Outcome::Response {
                request_id: answered,
                body,
            } if answered == request_id => body,
            other => panic!("no response to {request_id}: {other:?}\n{}", context()),
        }
    }

    pub async fn outcome(&self, timeout: Duration) -> Outcome {
        tokio::time::timeout(timeout, self.outcomes.lock().await.recv())
            .await
            .expect("the function answered in time")
            .expect("runtime api running")
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> (HeaderMap, String) {
    shared.first_next.get_or_init(Instant::now);
    let (request_id, event) = shared
        .events
        .lock()
        .await
        .recv()
        .await
        .unwrap_or_else(|| (String::new(), Value::Null));
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
        + 60_000;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("header"));
    };
    set("lambda-runtime-aws-request-id", request_id);
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:test".into(),
    );
    set(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
    );
    set("content-type", "application/json".into());
    (headers, event.to_string())
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The function's response to an invocation, or the error it ended with.
async fn invocation_answered(
    State(shared): State<Arc<Shared>>,
    Path((request_id, answer)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let body = json_of(&body);
    let outcome = match answer.as_str() {
        "response" => Outcome::Response { request_id, body },
        "error" => Outcome::Error { request_id, body },
        _ => return StatusCode::NOT_FOUND,
    };
    shared.report(outcome)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared.report(Outcome::InitError(json_of(&body)))
}

impl Shared {
    /// Hands `outcome` to the test; the function gets the 202 Lambda answers with.
    fn report(&self, outcome: Outcome) -> StatusCode {
        let _ = self.outcomes.send(outcome);
        StatusCode::ACCEPTED
    }
}
