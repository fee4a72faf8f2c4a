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
use sha2::{Digest, Sha256};
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
    /// Close the connection (after `delay`) without answering.
    pub reset: bool,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            delay: Duration::ZERO,
            headers: vec![],
            body: String::new(),
            reset: false,
        }
    }

    /// Reads the request, then closes the connection without an answer.
    pub fn reset() -> Self {
        Reply {
            reset: true,
            ..Reply::status(0)
        }
    }

    /// Answers 200, but only after `delay` (longer than the 10 s timeout: a hang).
    pub fn hang(delay: Duration) -> Self {
        Reply {
            delay,
            ..Reply::status(200)
        }
    }

    /// What a real receiver answers: 200 at once, with the ten headers nginx, a CDN or a
    /// load balancer add (about 400 bytes on the wire with the `date` and `content-length`
    /// hyper writes) and a JSON body of about 200 bytes. The benches' receivers answer so:
    /// the delivery log records responses, so their size is part of what a delivery costs.
    pub fn realistic() -> Self {
        Reply::status(200)
            .with_header("server", "nginx/1.25.3")
            .with_header("content-type", "application/json; charset=utf-8")
            .with_header("connection", "keep-alive")
            .with_header("x-request-id", "7c3f5a1e-9b2d-4e8f-a6c1-3d5e7f9b1a2c")
            .with_header("cache-control", "no-cache, no-store")
            .with_header(
                "strict-transport-security",
                "max-age=31536000; includeSubDomains",
            )
            .with_header("x-content-type-options", "nosniff")
            .with_header(
                "x-amz-cf-id",
                "Xk3v9QpL2mN8rT5wY7zB1cD4fG6hJ0kM3nP5qS7tU9vW2xY4zA6bC8==",
            )
            .with_body(
                r#"{"ok":true,"received":true,"status":"accepted","request_id":"7c3f5a1e-9b2d-4e8f-a6c1-3d5e7f9b1a2c","queued_at":"2026-12-03T10:00:00.000Z","message":"Webhook received; it will be processed shortly."}"#,
            )
    }

    /// This answer, given only after `delay`.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
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

/// A receiver that fails some requests: each (delivery, attempt) is answered by a draw
/// from its ids and `seed`, so a run can be repeated, and a request sent twice gets the same
/// answer.
#[derive(Debug, Clone, Copy)]
pub struct Flaky {
    pub seed: u64,
    /// Share answered 500.
    pub fail: f64,
    /// Share answered only after `hang_for` (past the client's timeout).
    pub hang: f64,
    /// Share whose connection is closed without an answer.
    pub reset: f64,
    pub hang_for: Duration,
    /// Share of deliveries answered 500 on every attempt (they fail for good).
    pub dead: f64,
}

impl Flaky {
    fn reply(&self, headers: &HeaderMap) -> Reply {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        };
        let delivery = header("x-comps-delivery");
        if self.draw(&[delivery]) < self.dead {
            return Reply::status(500);
        }
        let draw = self.draw(&[delivery, "#", header("x-comps-attempt")]);
        if draw < self.fail {
            Reply::status(500)
        } else if draw < self.fail + self.hang {
            Reply::hang(self.hang_for)
        } else if draw < self.fail + self.hang + self.reset {
            Reply::reset()
        } else {
            Reply::status(200)
        }
    }

    /// A number in [0, 1] drawn from `parts` and the seed.
    fn draw(&self, parts: &[&str]) -> f64 {
        let mut hash = Sha256::new().chain_update(self.seed.to_be_bytes());
        for part in parts {
            hash.update(part);
        }
        let digest = hash.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first) as f64 / u64::MAX as f64
    }
}

/// How a receiver answers.
enum Answers {
    /// Each event id runs through the script; the last answer repeats.
    Script(Vec<Reply>),
    Flaky(Flaky),
}

#[derive(Debug, Clone)]
pub struct Captured {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: SystemTime,
    /// How the receiver answered it.
    pub reply: Reply,
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
    answers: Answers,
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
        Receiver::serve(Answers::Script(script)).await
    }

    /// A receiver that fails a share of requests, as `flaky` says.
    pub async fn flaky(flaky: Flaky) -> Receiver {
        Receiver::serve(Answers::Flaky(flaky)).await
    }

    async fn serve(answers: Answers) -> Receiver {
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
            answers,
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
) -> Result<Response<Full<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let event_id = parts
        .headers
        .get("x-comps-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let reply = match &state.answers {
        Answers::Script(script) => {
            let mut served = state.served.lock().expect("served");
            let n = served.entry(event_id).or_insert(0);
            let reply = script.get(*n).or(script.last()).cloned();
            *n += 1;
            reply.unwrap_or_else(|| Reply::status(200))
        }
        Answers::Flaky(flaky) => flaky.reply(&parts.headers),
    };
    state.captured.lock().expect("captured").push(Captured {
        headers: parts.headers,
        body,
        at: SystemTime::now(),
        reply: reply.clone(),
    });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if reply.reset {
        return Err("reset by the receiver's script".into());
    }
    Ok(response(reply))
}

/// The response `reply` describes (hyper adds `date` and `content-length`).
fn response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("status");
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(&value).expect("header value"),
        );
    }
    response
}

/// A loopback port with nothing listening: connections are refused.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// `reply` as hyper writes it on the wire, answering a POST: its header lines (status
    /// line left out, each with its CRLF) and its body.
    async fn on_the_wire(reply: Reply) -> (Vec<String>, Vec<u8>) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |_request: Request<Incoming>| {
                let reply = reply.clone();
                async move { Ok::<_, std::convert::Infallible>(response(reply)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        client
            .write_all(b"POST /hook HTTP/1.1\r\nhost: localhost\r\ncontent-length: 2\r\n\r\n{}")
            .await
            .expect("write the request");
        let mut raw = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = client.read(&mut chunk).await.expect("read the answer");
            assert!(n > 0, "the connection closed before the whole answer");
            raw.extend_from_slice(&chunk[..n]);
            let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8(raw[..end + 2].to_vec()).expect("UTF-8 head");
            let lines: Vec<String> = head
                .split_inclusive("\r\n")
                .skip(1)
                .map(str::to_owned)
                .collect();
            let length: usize = lines
                .iter()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().expect("content-length"));
            let body = &raw[end + 4..];
            if body.len() >= length {
                return (lines, body[..length].to_vec());
            }
        }
    }

    #[tokio::test]
    async fn a_realistic_answer_has_ten_headers_of_about_400_bytes_and_a_200_byte_body() {
        let (lines, body) = on_the_wire(Reply::realistic()).await;
        let header_bytes: usize = lines.iter().map(String::len).sum();
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_once(':').map(|(name, _)| name))
            .collect();
        assert_eq!(lines.len(), 10, "{lines:?}");
        for name in [
            "server",
            "date",
            "content-type",
            "content-length",
            "connection",
        ] {
            assert!(names.contains(&name), "no {name} in {names:?}");
        }
        assert!(
            (360..=440).contains(&header_bytes),
            "{header_bytes} bytes of headers: {lines:?}"
        );
        assert!((180..=220).contains(&body.len()), "{} bytes", body.len());
        let json: serde_json::Value = serde_json::from_slice(&body).expect("a JSON body");
        assert!(json.is_object());
    }
}
