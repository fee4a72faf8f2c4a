//! An example receiver of comps-webhooks deliveries. It serves HTTPS itself (deliveries are
//! only ever sent to `https://` URLs) and, for every POST:
//!
//! 1. refuses a `webhook-timestamp` more than 5 minutes from now, either way (400);
//! 2. verifies `webhook-signature` (Standard Webhooks) over the id, the timestamp and the raw
//!    body (401 if no signature matches);
//! 3. answers 200 without processing again an event id it has already processed, so the
//!    service stops retrying a delivery it has in fact received;
//! 4. processes the event (here: prints it) and answers 200.
//!
//! ```sh
//! WEBHOOK_SECRET=whsec_… receiver-rust --cert cert.pem --key key.pem [--port 8443] [--host 127.0.0.1]
//! ```

mod standard_webhooks;

use std::collections::HashMap;
use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use standard_webhooks::Verifier;

/// Events are at most 256 KiB; their envelope adds little.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A client gets this long for its TLS handshake, and again for its request's headers.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event id is remembered. The service retries for about 30 minutes, but an admin
/// can redeliver an event for as long as its delivery log keeps it (30 days by default).
const REMEMBER_FOR: Duration = Duration::from_secs(24 * 60 * 60);

const USAGE: &str =
    "usage: WEBHOOK_SECRET=whsec_… receiver-rust --cert <cert.pem> --key <key.pem> \
                     [--port 8443] [--host 127.0.0.1]";

struct Options {
    cert: PathBuf,
    key: PathBuf,
    host: String,
    port: u16,
}

impl Options {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut cert, mut key) = (None, None);
        let (mut host, mut port) = ("127.0.0.1".to_owned(), 8443);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
            match flag.as_str() {
                "--cert" => cert = Some(PathBuf::from(value()?)),
                "--key" => key = Some(PathBuf::from(value()?)),
                "--host" => host = value()?,
                "--port" => {
                    let text = value()?;
                    port = text
                        .parse()
                        .map_err(|_| format!("--port {text:?} is not a port number"))?;
                }
                other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
            }
        }
        Ok(Options {
            cert: cert.ok_or(format!("--cert is required\n{USAGE}"))?,
            key: key.ok_or(format!("--key is required\n{USAGE}"))?,
            host,
            port,
        })
    }
}

struct Receiver {
    verifier: Verifier,
    /// Event ids already processed, and when. In memory for this example: a restart forgets
    /// them and two instances do not share them. In production keep them in a durable store
    /// with a TTL (a DynamoDB conditional put with a TTL attribute, Redis `SET NX EX`, a
    /// unique key in your database), written with the effects of the event.
    processed: Mutex<HashMap<String, SystemTime>>,
}

impl Receiver {
    /// Records `event_id` as processed; false if it already was.
    fn first_time(&self, event_id: &str, now: SystemTime) -> bool {
        // The map is never left half-changed, so a poisoned lock is still good to use.
        let mut processed = self
            .processed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        processed.retain(|_, at| now.duration_since(*at).unwrap_or_default() < REMEMBER_FOR);
        processed.insert(event_id.to_owned(), now).is_none()
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let now = SystemTime::now();
    let delivery = match receiver.verifier.verify(&headers, &body, now) {
        Ok(delivery) => delivery,
        Err(refusal) => {
            let status = refusal.status();
            println!("refused {} {refusal}", status.as_u16());
            return (status, Json(json!({ "error": refusal.to_string() })));
        }
    };
    // Signed by the service, so well-formed; checked all the same before it is recorded.
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        println!("refused 400 body is not JSON");
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "body is not JSON" })),
        );
    };
    if !receiver.first_time(&delivery.id, now) {
        println!("duplicate {}", delivery.id);
        return (
            StatusCode::OK,
            Json(json!({ "ok": true, "duplicate": true })),
        );
    }
    // Process the event here. If that can fail, forget the id again and answer 500, so the
    // service retries; keep the work short (the service waits 10 s) or queue it.
    let event_type = event["type"].as_str().unwrap_or("?");
    println!("accepted {} {event_type} {}", delivery.id, event["data"]);
    (StatusCode::OK, Json(json!({ "ok": true })))
}

fn tls_acceptor(options: &Options) -> Result<TlsAcceptor, Box<dyn Error>> {
    let read_error = |path: &PathBuf, err: &dyn Error| format!("{}: {err}", path.display());
    let chain = CertificateDer::pem_file_iter(&options.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| read_error(&options.cert, &e))?;
    let key =
        PrivateKeyDer::from_pem_file(&options.key).map_err(|e| read_error(&options.key, &e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn run() -> Result<(), Box<dyn Error>> {
    let options = Options::parse(std::env::args().skip(1))?;
    let secret = std::env::var("WEBHOOK_SECRET")
        .map_err(|_| "set WEBHOOK_SECRET to the webhook's signing secret (whsec_…)")?;
    let receiver = Receiver {
        verifier: Verifier::new(&secret)?,
        processed: Mutex::default(),
    };
    let tls = tls_acceptor(&options)?;
    // Any path: the URL you give the webhook decides it.
    let app = Router::new()
        .route("/", post(receive))
        .route("/{*path}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Arc::new(receiver));

    let listener = TcpListener::bind((options.host.as_str(), options.port)).await?;
    println!("listening on https://{}", listener.local_addr()?);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(connection) => connection,
            Err(err) => {
                // Out of file descriptors, say: wait a little rather than spin.
                eprintln!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (tls, app) = (tls.clone(), app.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(CLIENT_TIMEOUT, tls.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(err)) => return eprintln!("TLS handshake with {peer} failed: {err}"),
                Err(_) => return eprintln!("TLS handshake with {peer} timed out"),
            };
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(CLIENT_TIMEOUT)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app))
                .await;
            if let Err(err) = served {
                eprintln!("connection from {peer}: {err}");
            }
        });
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("receiver-rust: {err}");
            ExitCode::FAILURE
        }
    }
}
