//! A real HTTPS webhook receiver (TLS from the test CA) that answers from a script and
//! records every request it gets, byte for byte.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Harness;

/// One scripted answer. Each event id runs through the script on its own (tests share
/// event types, so other tests' events may arrive too); the last answer repeats forever.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: vec![],
            body: String::new(),
        }
    }

    /// Answers 200, but only after `delay` (longer than the 10 s timeout: a hang).
    pub fn hang(delay: Duration) -> Self {
        Reply {
            delay,
            ..Reply::status(200)
        }
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[derive(Debug, Clone)]
pub struct Captured {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: SystemTime,
}

impl Captured {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("request has no {name} header: {:?}", self.headers))
    }
}

struct State {
    script: Vec<Reply>,
    /// Requests answered so far, per event id.
    served: Mutex<HashMap<String, usize>>,
    captured: Mutex<Vec<Captured>>,
}

pub struct Receiver {
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Receiver {
    /// Starts a receiver on a free loopback port, on the calling test's runtime, with a
    /// certificate from the harness's test CA (the one the handlers trust).
    pub async fn start(script: Vec<Reply>) -> Receiver {
        let cert = Harness::get().ca.server_cert();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .expect("server cert");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        let state = Arc::new(State {
            script,
            served: Mutex::new(HashMap::new()),
            captured: Mutex::new(Vec::new()),
        });
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = Arc::clone(&serving);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |request| {
                        answer(Arc::clone(&state), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Receiver {
            url: format!("https://localhost:{}/hook", addr.port()),
            addr,
            state,
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Captured> {
        self.state.captured.lock().expect("captured").clone()
    }

    /// The requests that carried event `event_id` (other tests' events may arrive too).
    pub fn requests_for(&self, event_id: &str) -> Vec<Captured> {
        self.requests()
            .into_iter()
            .filter(|c| {
                c.headers
                    .get("x-comps-event-id")
                    .and_then(|v| v.to_str().ok())
                    == Some(event_id)
            })
            .collect()
    }
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let event_id = parts
        .headers
        .get("x-comps-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.captured.lock().expect("captured").push(Captured {
        headers: parts.headers,
        body,
        at: SystemTime::now(),
    });
    let reply = {
        let mut served = state.served.lock().expect("served");
        let n = served.entry(event_id).or_insert(0);
        let reply = state.script.get(*n).or(state.script.last()).cloned();
        *n += 1;
        reply
    }
    .unwrap_or_else(|| Reply::status(200));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(&value).expect("header value"),
        );
    }
    Ok(response)
}

/// A loopback port with nothing listening: connections are refused.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
