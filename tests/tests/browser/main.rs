//! The admin console end to end, in headless Chromium: `tests/browser/console.test.mjs`
//! (node's test runner driving Debian's `/usr/bin/chromium` through `playwright-core`)
//! against the stack the harness starts (moto enforcing IAM, the local gateway with the
//! real admin-api, fanout and deliver), HTTPS receivers of the test CA, and a minimal
//! OpenID Connect issuer (discovery document, JWKS, authorization and token endpoints with
//! PKCE, ID tokens carrying the authorization request's nonce) in front of which a second
//! origin serves the console in its OIDC mode.
//!
//! Every page and state the browser meets is audited with `axe-core` (WCAG 2.0/2.1 A and
//! AA, best practices; light and dark): 0 violations, else the node test lists them.
//!
//! Screenshots and `axe.json` go to `target/browser-artifacts/`. Afterwards this test checks
//! what the browser cannot see: the bytes the receiver got.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use admin_api::console::{ConsoleSettings, SignIn};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use integration_tests::{Harness, Receiver, Reply};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CLIENT_ID: &str = "console-test-client";

/// What the test issuer saw.
#[derive(Default)]
struct IssuerState {
    issuer: String,
    /// code → what its authorization request asked for
    codes: HashMap<String, Authorization>,
    /// The nonce the next ID token carries instead of its request's (a test sets it to see
    /// the console refuse a sign-in whose ID token is not its own).
    next_nonce: Option<String>,
    tokens_issued: u32,
    refused: Vec<String>,
    token: String,
}

/// What an authorization request asked for, kept with its code until the code is traded.
struct Authorization {
    code_challenge: String,
    redirect_uri: String,
    nonce: String,
}

type Shared = Arc<Mutex<IssuerState>>;

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, IssuerState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// CORS as an issuer answers a browser app on another origin.
fn cors(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        header::HeaderValue::from_static("*"),
    );
    response
}

async fn discovery(State(state): State<Shared>) -> Response {
    let issuer = lock(&state).issuer.clone();
    cors(Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none"],
    })))
}

async fn jwks() -> Response {
    // The local gateway stands in for API Gateway's JWT authorizer with a token comparison,
    // so the key set has nothing to verify here; it is served as an issuer serves it.
    cors(Json(json!({"keys": []})))
}

/// Signs the (already signed-in) test user in at once: back to the app with a code.
async fn authorize(
    State(state): State<Shared>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let mut s = lock(&state);
    let problems: Vec<&str> = [
        (
            param("response_type") != "code",
            "response_type is not code",
        ),
        (param("client_id") != CLIENT_ID, "unknown client_id"),
        (
            param("code_challenge_method") != "S256",
            "PKCE method is not S256",
        ),
        (param("code_challenge").len() < 43, "no PKCE code_challenge"),
        (param("state").is_empty(), "no state"),
        (param("nonce").is_empty(), "no nonce"),
        (
            !param("scope").split(' ').any(|s| s == "openid"),
            "scope lacks openid",
        ),
    ]
    .into_iter()
    .filter_map(|(bad, why)| bad.then_some(why))
    .collect();
    if !problems.is_empty() {
        s.refused
            .push(format!("authorize: {}", problems.join(", ")));
        return (StatusCode::BAD_REQUEST, problems.join(", ")).into_response();
    }
    let code = format!("code-{}", s.codes.len() + 1);
    s.codes.insert(
        code.clone(),
        Authorization {
            code_challenge: param("code_challenge"),
            redirect_uri: param("redirect_uri"),
            nonce: param("nonce"),
        },
    );
    let mut back = match url::Url::parse(&param("redirect_uri")) {
        Ok(url) => url,
        Err(_) => return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response(),
    };
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &param("state"));
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

/// The code (once) for a token, if the PKCE verifier hashes to the challenge.
async fn token(State(state): State<Shared>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut s = lock(&state);
    let refuse = |s: &mut IssuerState, why: &str| {
        s.refused.push(format!("token: {why}"));
        cors((
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": why})),
        ))
    };
    if field("grant_type") != "authorization_code" || field("client_id") != CLIENT_ID {
        return refuse(&mut s, "wrong grant_type or client_id");
    }
    let Some(asked) = s.codes.remove(&field("code")) else {
        return refuse(&mut s, "unknown or used code");
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(field("code_verifier").as_bytes()));
    if computed != asked.code_challenge {
        return refuse(&mut s, "code_verifier does not match the code_challenge");
    }
    if asked.redirect_uri != field("redirect_uri") {
        return refuse(
            &mut s,
            "redirect_uri differs from the authorization request's",
        );
    }
    s.tokens_issued += 1;
    let nonce = s.next_nonce.take().unwrap_or(asked.nonce);
    let id_token = id_token(&s.issuer, &nonce);
    cors(Json(json!({
        "access_token": s.token,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "openid webhooks/admin",
    })))
}

/// An ID token as Cognito's are shaped (RS256 JWT), carrying `nonce`. Its signature is not
/// a real one: the console reads the claims of a token it got straight from the token
/// endpoint and verifies no signature (the gateway compares access tokens, standing in for
/// API Gateway's JWT authorizer), and the JWKS is empty.
fn id_token(issuer: &str, nonce: &str) -> String {
    let b64 = |value: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string().as_bytes())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": "test-issuer"});
    let claims = json!({
        "iss": issuer,
        "sub": "test-admin",
        "aud": CLIENT_ID,
        "token_use": "id",
        "iat": now,
        "exp": now + 3600,
        "nonce": nonce,
    });
    format!("{}.{}.not-signed", b64(&header), b64(&claims))
}

/// Test control, not part of OpenID Connect: the next ID token carries the nonce posted
/// here instead of its authorization request's.
async fn set_next_nonce(State(state): State<Shared>, body: String) -> StatusCode {
    lock(&state).next_nonce = Some(body);
    StatusCode::NO_CONTENT
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listen");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn start_issuer(access_token: &str) -> (String, Shared) {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/test/next-id-token-nonce", post(set_next_nonce))
        .with_state(Arc::clone(&state));
    let addr = serve(app).await;
    let issuer = format!("http://{addr}");
    {
        let mut s = lock(&state);
        s.issuer = issuer.clone();
        s.token = access_token.to_owned();
    }
    (issuer, state)
}

/// A second origin serving the console in its OIDC mode, passing `/api/v1` on to the
/// gateway (as API Gateway routes both to admin-api).
async fn start_oidc_console(issuer: &str, gateway: &str) -> String {
    let settings = ConsoleSettings {
        sign_in: SignIn::Oidc {
            issuer: issuer.to_owned(),
            client_id: CLIENT_ID.to_owned(),
            scope: "openid webhooks/admin".to_owned(),
        },
        connect_origins: vec![issuer.to_owned()],
    };
    let gateway = gateway.to_owned();
    let client = reqwest::Client::new();
    let app = admin_api::console::router(settings).fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (gateway, client) = (gateway.clone(), client.clone());
            async move {
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let mut request = client.request(method, format!("{gateway}{path}"));
                for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
                    if let Some(value) = headers.get(&name) {
                        request = request.header(name, value);
                    }
                }
                match request.body(body).send().await {
                    Ok(answer) => {
                        let status = answer.status();
                        let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
                        let bytes = answer.bytes().await.unwrap_or_default();
                        let mut response = (status, bytes).into_response();
                        if let Some(ct) = content_type {
                            response.headers_mut().insert(header::CONTENT_TYPE, ct);
                        }
                        response
                    }
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                }
            }
        },
    );
    format!("http://{}", serve(app).await)
}

fn chromium() -> PathBuf {
    PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_browser() {
    let h = Harness::get();
    let browser_dir = h.root.join("tests/browser");
    assert!(
        chromium().exists(),
        "{} is missing: install Debian's chromium (`apt-get install chromium`; .ci/run does)",
        chromium().display()
    );
    for package in ["playwright-core", "axe-core"] {
        assert!(
            browser_dir.join("node_modules").join(package).exists(),
            "node_modules/{package} is missing: run `npm ci` in tests/browser"
        );
    }
    // A receiver that fails every attempt, answering text that must stay text, and one
    // that accepts everything.
    let failing = Receiver::start(vec![Reply::status(500)
        .with_header("content-type", "text/html")
        .with_header("x-receiver-note", "<b>not bold</b>")
        .with_body("<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script> upstream down")])
    .await;
    let accepting = Receiver::start(vec![Reply::status(200).with_body("{\"ok\":true}")]).await;
    let (issuer, issuer_state) = start_issuer(&h.admin_token).await;
    let oidc_console = start_oidc_console(&issuer, &h.gateway).await;

    let artifacts = h.root.join("target/browser-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");
    let facts = artifacts.join("facts.json");
    let _ = std::fs::remove_file(&facts);

    let run = tokio::task::spawn_blocking({
        let browser_dir = browser_dir.clone();
        let artifacts = artifacts.clone();
        let (gateway, admin, ingest) = (
            h.gateway.clone(),
            h.admin_token.clone(),
            h.ingest_token.clone(),
        );
        let (failing_url, accepting_url) = (failing.url.clone(), accepting.url.clone());
        let issuer = issuer.clone();
        move || {
            Command::new("node")
                .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
                .arg(browser_dir.join("console.test.mjs"))
                .current_dir(&browser_dir)
                .env("CONSOLE_URL", gateway)
                .env("OIDC_CONSOLE_URL", oidc_console)
                .env("OIDC_ISSUER_URL", issuer)
                .env("ADMIN_TOKEN", admin)
                .env("INGEST_TOKEN", ingest)
                .env("FAILING_RECEIVER_URL", failing_url)
                .env("ACCEPTING_RECEIVER_URL", accepting_url)
                .env("ARTIFACTS", artifacts)
                .env("CHROMIUM", chromium())
                .output()
        }
    })
    .await
    .expect("node runs");
    let output = run.expect("start node (is Node.js installed?)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        output.status.success(),
        "the browser tests failed (screenshots in {}):\n{stdout}\n{stderr}",
        artifacts.display()
    );

    // What the browser cannot see: Redeliver sent the very same bytes again.
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(&facts).expect("the browser tests write facts.json"),
    )
    .expect("facts JSON");
    let event_id = facts["redelivered_event_id"].as_str().expect("event id");
    let requests = failing.requests_for(event_id);
    let deliveries: std::collections::BTreeSet<&str> = requests
        .iter()
        .map(|r| r.header("x-comps-delivery"))
        .collect();
    assert!(
        deliveries.len() >= 2,
        "the redelivery reached the receiver as a second delivery: {deliveries:?}"
    );
    assert!(
        requests.windows(2).all(|w| w[0].body == w[1].body),
        "every attempt of every delivery of the event carried the same bytes"
    );
    let test_event = facts["test_event_id"].as_str().expect("test event id");
    let tests = accepting.requests_for(test_event);
    assert_eq!(tests.len(), 1, "the test event reached its webhook once");
    assert_eq!(tests[0].header("x-comps-event-id"), test_event);

    let s = lock(&issuer_state);
    assert!(s.refused.is_empty(), "the issuer refused: {:?}", s.refused);
    assert!(
        s.tokens_issued >= 1,
        "the console signed in through the issuer"
    );
}
