//! The platform's side of ingest on AWS: `examples/post-event` (the platform's example)
//! signs `POST /api/v1/events` with SigV4 for API Gateway's IAM authorizer. Checked by
//! recomputing the signature with botocore, an independent implementation, from what a local
//! server received.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use integration_tests::Harness;

type Captured = Arc<Mutex<Option<(HeaderMap, Bytes)>>>;

async fn capture(State(seen): State<Captured>, headers: HeaderMap, body: Bytes) -> StatusCode {
    *seen.lock().expect("lock") = Some((headers, body));
    StatusCode::ACCEPTED
}

/// Recomputes a SigV4 signature with botocore over the signed headers and the body.
const VERIFY: &str = r#"
import json, sys
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
got = json.load(sys.stdin)
auth_header = got["headers"]["authorization"]
signed = auth_header.split("SignedHeaders=")[1].split(",")[0].split(";")
scope = auth_header.split("Credential=")[1].split(",")[0].split("/")
headers = {k: v for k, v in got["headers"].items() if k in signed}
request = AWSRequest(method="POST", url=got["url"], data=got["body"].encode(), headers=headers)
request.context["timestamp"] = headers["x-amz-date"]
auth = SigV4Auth(Credentials(got["key"], got["secret"], got["token"]), scope[3], scope[2])
canonical = auth.canonical_request(request)
print(json.dumps({"service": scope[3], "region": scope[2],
    "signature": auth.signature(auth.string_to_sign(request, canonical), request)}))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platforms_example_signs_ingest_calls_for_execute_api() {
    let h = Harness::get();
    let seen: Captured = Arc::default();
    let app = Router::new()
        .route("/api/v1/events", post(capture))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/api/v1/events",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let event = tempfile::NamedTempFile::new().expect("file");
    let body =
        r#"{"id":"ord_1042-paid","type":"order.completed","data":{"id":"ord_1042","total":597}}"#;
    std::fs::write(event.path(), body).expect("write");
    let (key, secret, token) = (
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session-token",
    );
    let output = tokio::process::Command::new(h.built_binary("post-event"))
        .arg(&url)
        .arg(event.path())
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_SESSION_TOKEN", token)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("run post-event (make test builds it)");
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("202"));

    let (headers, received) = seen.lock().expect("lock").take().expect("a request");
    assert_eq!(received, body.as_bytes(), "the body as given");
    assert_eq!(headers["x-amz-security-token"], token);
    let headers: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().into()))
        .collect();
    let authorization = headers["authorization"]
        .as_str()
        .expect("signed")
        .to_owned();
    let check = serde_json::json!({"headers": headers, "url": url, "body": body,
        "key": key, "secret": secret, "token": token});
    let mut verify = tokio::process::Command::new(h.python())
        .args(["-c", VERIFY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    use tokio::io::AsyncWriteExt;
    let mut stdin = verify.stdin.take().expect("stdin");
    stdin
        .write_all(check.to_string().as_bytes())
        .await
        .expect("write");
    drop(stdin);
    let verified = verify.wait_with_output().await.expect("verify");
    let expected: serde_json::Value =
        serde_json::from_slice(&verified.stdout).expect("botocore's answer");
    assert_eq!(expected["service"], "execute-api");
    assert_eq!(expected["region"], "eu-west-1");
    let signature = expected["signature"].as_str().expect("signature");
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 ")
            && authorization.ends_with(&format!("Signature={signature}")),
        "botocore computes the same signature: {authorization} vs {signature}"
    );
}
