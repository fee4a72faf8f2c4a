//! The HTTPS client that delivers webhooks: HTTPS only, 10 s timeout in all, no redirects,
//! no proxies, response bodies read up to 16 KiB, and every resolved address vetted before
//! connecting (the SSRF guard: private, loopback and link-local targets are refused unless
//! the local-only switch allows them).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::Policy;
use thiserror::Error;
use url::Url;

use webhooks_shared::domain::model::RecordedResponse;
use webhooks_shared::domain::retry::{parse_retry_after, AttemptResult};
use webhooks_shared::domain::targets::{is_public, refusal};

pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_RESPONSE_BODY: usize = 16 * 1024;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot read extra CA file {path}: {reason}")]
    ExtraCa { path: String, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// What one HTTP attempt produced.
#[derive(Debug, Clone)]
pub struct HttpAttempt {
    pub result: AttemptResult,
    pub response: Option<RecordedResponse>,
    pub error: Option<String>,
    pub duration: Duration,
}

#[derive(Debug)]
struct BlockedTarget(String);

impl fmt::Display for BlockedTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves only to private, loopback or reserved addresses",
            self.0
        )
    }
}

impl StdError for BlockedTarget {}

/// DNS resolution that drops addresses deliveries must not reach.
#[derive(Debug, Clone, Copy)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(BlockedTarget(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryClient {
    http: reqwest::Client,
    allow_private: bool,
}

impl DeliveryClient {
    pub fn new(
        allow_private: bool,
        extra_ca_file: Option<&std::path::Path>,
    ) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(REQUEST_TIMEOUT)
            .redirect(Policy::none())
            // Webhooks are HTTPS (admin-api refuses other URLs); an item written otherwise is
            // never sent in clear text.
            .https_only(true)
            .no_proxy()
            .user_agent(webhooks_shared::domain::lifecycle::USER_AGENT)
            .pool_idle_timeout(Duration::from_secs(50))
            .dns_resolver(Arc::new(GuardedResolver { allow_private }));
        if let Some(path) = extra_ca_file {
            let pem = std::fs::read(path).map_err(|e| ClientError::ExtraCa {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ClientError::ExtraCa {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError::Build(e.to_string()))?;
        Ok(DeliveryClient {
            http,
            allow_private,
        })
    }

    /// POSTs `body` to `url` and reports what happened. Never fails: every problem is an
    /// outcome the retry policy classifies.
    pub async fn post(&self, url: &str, headers: &[(String, String)], body: Bytes) -> HttpAttempt {
        let started = Instant::now();
        if let Some(refusal) = self.refuse_literal_target(url) {
            return HttpAttempt {
                result: AttemptResult::Refused,
                response: None,
                error: Some(refusal),
                duration: started.elapsed(),
            };
        }
        let mut request = self.http.post(url).body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                let (result, error) = describe_error(&err);
                return HttpAttempt {
                    result,
                    response: None,
                    error: Some(error),
                    duration: started.elapsed(),
                };
            }
        };
        let status = response.status().as_u16();
        let recorded_headers = recorded_headers(response.headers());
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let (body, cut_short) = read_capped(response).await;
        let (body, cut_to_fit) = text_within(&body, MAX_RESPONSE_BODY);
        HttpAttempt {
            result: AttemptResult::Status {
                status,
                retry_after,
            },
            response: Some(RecordedResponse {
                status,
                headers: recorded_headers,
                body,
                truncated: cut_short || cut_to_fit,
            }),
            error: None,
            duration: started.elapsed(),
        }
    }

    /// Hosts written as IP literals never reach the resolver, so they are vetted here; so
    /// are reserved names (a webhook saved before admin-api refused them).
    fn refuse_literal_target(&self, url: &str) -> Option<String> {
        if self.allow_private {
            return None;
        }
        let parsed = Url::parse(url).ok()?;
        refusal(&parsed.host()?).map(|why| format!("blocked: {why}"))
    }
}

/// At most this much of a response's headers is recorded (names and values): a receiver may
/// answer with hundreds of KB of them, and the attempt's line must stay far inside
/// DynamoDB's 400 KB item (a line that cannot be written means the attempt is sent again).
pub const MAX_RECORDED_HEADERS: usize = 8 * 1024;
/// The longest header value recorded whole.
pub const MAX_RECORDED_HEADER_VALUE: usize = 1024;
/// Where a recorded value was cut.
const CUT_MARK: &str = "…[cut]";
/// The entry that says headers were left out: not a header name any response can have.
pub const HEADERS_LEFT_OUT: &str = "(headers left out)";

/// A response's headers as the log keeps them: lower-case names, repeated ones joined by
/// `, `, text (invalid UTF-8 replaced); each value cut at [`MAX_RECORDED_HEADER_VALUE`],
/// and the whole within [`MAX_RECORDED_HEADERS`] (in name order; what does not fit is
/// counted under [`HEADERS_LEFT_OUT`]).
pub fn recorded_headers(headers: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    let mut joined: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        joined
            .entry(name.as_str())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let mut recorded = BTreeMap::new();
    let (mut used, mut left_out) = (0, 0);
    for (name, value) in joined {
        let (mut value, cut) = cut_to(value, MAX_RECORDED_HEADER_VALUE);
        if cut {
            value.push_str(CUT_MARK);
        }
        let size = name.len() + value.len();
        if used + size > MAX_RECORDED_HEADERS {
            left_out += 1;
            continue;
        }
        used += size;
        recorded.insert(name.to_owned(), value);
    }
    if left_out > 0 {
        recorded.insert(
            HEADERS_LEFT_OUT.to_owned(),
            format!("{left_out} more, past the {MAX_RECORDED_HEADERS} bytes recorded"),
        );
    }
    recorded
}

/// `bytes` as text (invalid UTF-8 replaced, which can triple its size) of at most `limit`
/// bytes, cut at a character boundary; and whether it was cut.
pub fn text_within(bytes: &[u8], limit: usize) -> (String, bool) {
    cut_to(String::from_utf8_lossy(bytes).into_owned(), limit)
}

/// `text` cut to at most `limit` bytes at a character boundary; and whether it was cut.
fn cut_to(mut text: String, limit: usize) -> (String, bool) {
    if text.len() <= limit {
        return (text, false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    (text, true)
}

/// Reads at most 16 KiB of the body; a body that fails half-way keeps what arrived.
async fn read_capped(mut response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BODY - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return (body, true);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return (body, false),
            Err(_) => return (body, true),
        }
    }
}

fn describe_error(err: &reqwest::Error) -> (AttemptResult, String) {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedTarget>() {
            return (AttemptResult::Refused, format!("blocked: {blocked}"));
        }
        innermost = e.to_string();
        source = e.source();
    }
    let error = if err.is_timeout() {
        format!("timeout: no answer within {}s", REQUEST_TIMEOUT.as_secs())
    } else if err.is_connect() {
        format!("connection failed: {innermost}")
    } else {
        format!("request failed: {innermost}")
    };
    (AttemptResult::TransportError, error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

    #[test]
    fn recorded_headers_are_joined_cut_and_bounded() {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.insert("x-long", HeaderValue::from_str(&"v".repeat(5000)).unwrap());
        headers.insert("x-bytes", HeaderValue::from_bytes(&[0xff; 600]).unwrap());
        let recorded = recorded_headers(&headers);
        assert_eq!(recorded["set-cookie"], "a=1, b=2");
        assert_eq!(
            recorded["x-long"],
            format!("{}{CUT_MARK}", "v".repeat(1024))
        );
        // 600 invalid bytes are 1,800 bytes of text once replaced: cut too.
        assert!(recorded["x-bytes"].len() <= MAX_RECORDED_HEADER_VALUE + CUT_MARK.len());
        assert!(!recorded.contains_key(HEADERS_LEFT_OUT));

        // What hyper accepts (hundreds of KB of headers) is recorded within 8 KiB.
        let mut many = HeaderMap::new();
        for i in 0..400 {
            let name = HeaderName::from_bytes(format!("x-h{i:03}").as_bytes()).unwrap();
            many.insert(name, HeaderValue::from_str(&"y".repeat(1000)).unwrap());
        }
        let recorded = recorded_headers(&many);
        let size: usize = recorded.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(size <= MAX_RECORDED_HEADERS + 100, "{size}");
        assert!(recorded.contains_key("x-h000"));
        assert!(
            recorded[HEADERS_LEFT_OUT].starts_with("392 more"),
            "{}",
            recorded[HEADERS_LEFT_OUT]
        );
    }

    #[tokio::test]
    async fn plain_http_is_never_sent() {
        let client = DeliveryClient::new(true, None).unwrap();
        let sent = client
            .post("http://127.0.0.1:9/h", &[], Bytes::from_static(b"{}"))
            .await;
        assert!(sent.response.is_none());
        let error = sent.error.unwrap_or_default();
        assert!(error.contains("scheme"), "{error}");
    }

    #[test]
    fn a_body_of_invalid_utf8_is_kept_within_its_limit() {
        let (text, cut) = text_within(&[0xff; 16 * 1024], MAX_RESPONSE_BODY);
        assert!(cut);
        assert!(text.len() <= MAX_RESPONSE_BODY, "{}", text.len());
        assert!(text.starts_with('\u{fffd}'));
        assert_eq!(text_within(b"ok", 16), ("ok".to_owned(), false));
        // Cut at a character boundary.
        let (text, cut) = text_within("ééé".as_bytes(), 5);
        assert_eq!((text.as_str(), cut), ("éé", true));
    }

    #[test]
    fn public_and_private_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "255.255.255.255",
            "224.0.0.1",
            // Tunnels and translations that lead to IPv4 or anywhere: never a target.
            "::ffff:8.8.8.8",
            "::8.8.8.8",
            "2002:808:808::1",
            "2001:0:4136:e378::1",
            "64:ff9b::808:808",
            "fec0::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn literal_private_targets_are_refused_without_a_connection() {
        let client = DeliveryClient::new(false, None).unwrap();
        for url in [
            "https://127.0.0.1:9/x",
            "https://[::1]:9/x",
            "https://169.254.169.254/latest",
            "https://[2002:7f00:1::]/x",
            "https://[::127.0.0.1]/x",
            "https://[2001::7f00:1]/x",
            "https://[fec0::1]/x",
        ] {
            let attempt = client.post(url, &[], Bytes::from_static(b"{}")).await;
            assert_eq!(attempt.result, AttemptResult::Refused, "{url}");
            assert!(attempt.error.unwrap().starts_with("blocked"));
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let client = DeliveryClient::new(false, None).unwrap();
        let attempt = client
            .post("https://localhost:9/x", &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.result, AttemptResult::Refused);
        assert!(attempt.error.unwrap().contains("localhost"));
    }

    #[tokio::test]
    async fn allowed_private_targets_fail_as_transport_errors() {
        // Port 9 (discard) is closed here: connection refused, which is retried.
        let client = DeliveryClient::new(true, None).unwrap();
        let attempt = client
            .post("https://127.0.0.1:9/x", &[], Bytes::from_static(b"{}"))
            .await;
        assert_eq!(attempt.result, AttemptResult::TransportError);
        assert!(attempt.error.unwrap().starts_with("connection failed"));
    }

    #[test]
    fn a_missing_extra_ca_is_a_clear_error() {
        let err = DeliveryClient::new(true, Some(std::path::Path::new("/nonexistent/ca.pem")))
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"));
    }
}
