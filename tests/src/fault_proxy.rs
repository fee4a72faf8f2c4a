//! A proxy between the handlers and the emulator that counts every AWS call and fails a
//! chosen share of the DynamoDB and SQS calls, either **before** the call reaches the
//! emulator (nothing happened) or **after** it took effect (the caller is told it failed,
//! and the SDK tries again). Half the injected faults are HTTP 500s, half throttling.
//!
//! The harness always puts it in front of the gateway's handlers and pollers, with faults
//! off; the fault tests and `make chaos` turn them on. Calls the tests make to look at AWS
//! go to the emulator directly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;

/// Which calls fail. `rate` is the share of DynamoDB and SQS calls that fail (except
/// `ReceiveMessage`, the pollers' long poll); `after_share` the share of those that fail
/// after the call took effect.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    pub rate: f64,
    pub after_share: f64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        rate: 0.0,
        after_share: 0.0,
    };
}

/// Calls of one action (`dynamodb:PutItem`, `sqs:SendMessageBatch`, ...) seen by the proxy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCount {
    pub calls: u64,
    /// Answered with a fault without reaching the emulator.
    pub failed_before: u64,
    /// Reached the emulator, then answered with a fault.
    pub failed_after: u64,
    /// Time the emulator took to answer these calls, summed (where the time goes).
    pub emulator_time: std::time::Duration,
}

struct State {
    upstream: Uri,
    client: Client<HttpConnector, Full<Bytes>>,
    faults: Mutex<(Faults, StdRng)>,
    counts: Mutex<BTreeMap<String, CallCount>>,
}

/// A running proxy; clones share it.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    state: Arc<State>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    Before,
    After,
}

impl FaultProxy {
    /// Starts the proxy on a free loopback port, on the calling runtime, forwarding to
    /// `upstream` (the emulator's endpoint URL).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fault proxy");
        let addr: SocketAddr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(State {
            upstream: upstream.parse().expect("upstream URL"),
            client: Client::builder(TokioExecutor::new()).build_http(),
            faults: Mutex::new((Faults::NONE, StdRng::seed_from_u64(9))),
            counts: Mutex::new(BTreeMap::new()),
        });
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        forward(Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        FaultProxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Sets which calls fail from now on; `seed` makes a run repeatable.
    pub fn set(&self, faults: Faults, seed: u64) {
        *self.state.faults.lock().expect("faults") = (faults, StdRng::seed_from_u64(seed));
    }

    /// The calls seen since the last [`FaultProxy::take_counts`], per action.
    pub fn take_counts(&self) -> BTreeMap<String, CallCount> {
        std::mem::take(&mut *self.state.counts.lock().expect("counts"))
    }
}

/// `dynamodb:PutItem` from `X-Amz-Target: DynamoDB_20120810.PutItem`, `sqs:SendMessage`
/// from `AmazonSQS.SendMessage`, `kms:Decrypt` from `TrentService.Decrypt`; query-protocol
/// calls (SES) by their path.
fn action_of(request: &Request<Incoming>) -> String {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    match target.and_then(|t| t.split_once('.')) {
        Some((service, action)) => {
            let service = match service {
                s if s.starts_with("DynamoDB") => "dynamodb",
                "AmazonSQS" => "sqs",
                "TrentService" => "kms",
                other => other,
            };
            format!("{service}:{action}")
        }
        None => format!("other:{}", request.uri().path()),
    }
}

fn may_fail(action: &str) -> bool {
    (action.starts_with("dynamodb:") || action.starts_with("sqs:"))
        && action != "sqs:ReceiveMessage"
}

/// An injected failure as the service would send it: half of them 500s, half throttling,
/// both of which the SDK retries.
fn fault_response(action: &str, throttle: bool) -> Response<Full<Bytes>> {
    let (status, kind) = match (throttle, action.starts_with("dynamodb:")) {
        (true, true) => (
            StatusCode::BAD_REQUEST,
            "com.amazonaws.dynamodb.v20120810#ThrottlingException",
        ),
        (true, false) => (StatusCode::BAD_REQUEST, "ThrottlingException"),
        (false, _) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    };
    let body = serde_json::json!({"__type": kind, "message": "injected by the fault proxy"});
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// Longer than any call should take on a busy machine (a receive waits at most 1 s).
const SLOW_EMULATOR_CALL: std::time::Duration = std::time::Duration::from_secs(3);

async fn forward(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let action = action_of(&request);
    let (fault, throttle) = {
        let mut faults = state.faults.lock().expect("faults");
        let (config, rng) = &mut *faults;
        let fault = if !may_fail(&action) || !rng.gen_bool(config.rate.clamp(0.0, 1.0)) {
            Fault::None
        } else if rng.gen_bool(config.after_share.clamp(0.0, 1.0)) {
            Fault::After
        } else {
            Fault::Before
        };
        (fault, rng.gen_bool(0.5))
    };
    {
        let mut counts = state.counts.lock().expect("counts");
        let count = counts.entry(action.clone()).or_default();
        count.calls += 1;
        match fault {
            Fault::Before => count.failed_before += 1,
            Fault::After => count.failed_after += 1,
            Fault::None => {}
        }
    }
    if fault == Fault::Before {
        return Ok(fault_response(&action, throttle));
    }

    // The request as it came, Host header and signature included, to the emulator.
    let (mut parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut upstream = state.upstream.clone().into_parts();
    upstream.path_and_query = Some(path.parse()?);
    parts.uri = Uri::from_parts(upstream)?;
    let asked = std::time::Instant::now();
    let answer = state
        .client
        .request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await?.to_bytes();
    let took = asked.elapsed();
    if took > SLOW_EMULATOR_CALL {
        // A stall of the emulator explains a late retry or alert in a test that timed out.
        tracing::warn!(action = %action, took_ms = took.as_millis() as u64, "slow emulator call");
    }
    if let Ok(mut counts) = state.counts.lock() {
        counts.entry(action.clone()).or_default().emulator_time += took;
    }
    if fault == Fault::After {
        return Ok(fault_response(&action, throttle));
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}
