//! A delivery as a receiver sees it: headers, exact body, and both signatures verified by
//! independent verifiers (the guide's own Node.js snippet, the Standard Webhooks library).

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use hmac::{Hmac, Mac};
use integration_tests::delivery_id;
use integration_tests::receiver::Captured;
use integration_tests::{unique, Api, Harness, Receiver, Reply};
use serde_json::{json, Value};
use sha2::Sha256;

fn run_verifier(program: &str, script: &str, case: &Value) -> String {
    let h = Harness::get();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("case.json");
    std::fs::write(&file, case.to_string()).expect("write case");
    let output = Command::new(program)
        .arg(h.root.join("tests/verifiers").join(script))
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        output.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn node_verify(request: &Captured, secret: &str) -> String {
    let case = json!({
        "body_base64": base64::engine::general_purpose::STANDARD.encode(&request.body),
        "signature": request.header("x-comps-signature"),
        "secret": secret,
    });
    run_verifier("node", "verify-comps.mjs", &case)
}

fn standard_verify(request: &Captured, secret: &str, body: &[u8]) -> String {
    let case = json!({
        "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
        "headers": {
            "webhook-id": request.header("webhook-id"),
            "webhook-timestamp": request.header("webhook-timestamp"),
            "webhook-signature": request.header("webhook-signature"),
        },
        "secret": secret,
    });
    let python = Harness::get().python();
    run_verifier(python.to_str().expect("path"), "verify_standard.py", &case)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_succeeds_at_once_and_both_signatures_verify() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200).with_body("{\"ok\":true}")]).await;
    let created = api
        .create_webhook(&unique("signing"), &receiver.url, &["order.completed"])
        .await;
    let (wh, secret) = (created.id.as_str(), created.secret.as_str());
    let event_id = unique("evt");
    let answer = api
        .post_event(
            json!({"id": event_id, "type": "order.completed", "occurred_at": "2026-11-27T03:00:00Z",
                           "data": {"id": "ord_1", "total": 12.5, "items": [1, 2]}}),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    let dlv = delivery_id(&event_id, wh).await;
    let delivery = api
        .wait_for_state(wh, &dlv, &["succeeded"], Duration::from_secs(30))
        .await;
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["manual"], false);

    let requests = receiver.requests_for(&event_id);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    // The exact bytes of SPEC §4.
    let expected = format!(
        r#"{{"id":"{event_id}","type":"order.completed","created_at":"2026-11-27T03:00:00Z","data":{{"id":"ord_1","total":12.5,"items":[1,2]}}}}"#
    );
    assert_eq!(String::from_utf8_lossy(&request.body), expected);
    assert_eq!(request.header("content-type"), "application/json");
    assert_eq!(request.header("x-comps-event"), "order.completed");
    assert_eq!(request.header("x-comps-event-id"), event_id);
    assert_eq!(request.header("x-comps-delivery"), dlv);
    assert_eq!(request.header("x-comps-attempt"), "1");
    assert_eq!(request.header("webhook-id"), event_id);
    assert_eq!(
        request.header("x-comps-timestamp"),
        request.header("webhook-timestamp")
    );
    assert!(request.header("user-agent").starts_with("comps-webhooks/"));
    let sent_at: u64 = request
        .header("x-comps-timestamp")
        .parse()
        .expect("unix seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(
        now.abs_diff(sent_at) < 60,
        "timestamp {sent_at} is not now ({now})"
    );

    // Our own HMAC, computed independently of the service's code.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(&request.body);
    assert_eq!(
        request.header("x-comps-signature"),
        hex::encode(mac.finalize().into_bytes())
    );

    // The guide's Node.js snippet accepts it, and refuses another secret.
    assert_eq!(node_verify(request, secret), "valid");
    let other = api
        .create_paused_webhook(&unique("other"), &receiver.url, &["competition.ended"])
        .await;
    assert_eq!(node_verify(request, &other.secret), "invalid");

    // The Standard Webhooks reference verifier accepts it, and refuses a tampered body.
    assert_eq!(standard_verify(request, secret, &request.body), "valid");
    let mut tampered = request.body.to_vec();
    tampered.push(b' ');
    assert!(standard_verify(request, secret, &tampered).starts_with("invalid"));

    // The log line, and its inspection: the request as sent and the response as received.
    let log = api.attempts_of_event(wh, &event_id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "succeeded");
    assert_eq!(log[0]["response_status"], 200);
    assert_eq!(log[0]["resource_id"], "ord_1");
    let detail = api.attempt(wh, log[0]["id"].as_str().expect("id")).await;
    assert_eq!(detail.status, 200, "{}", detail.text);
    assert_eq!(detail.json["request"]["body"], expected.as_str());
    assert_eq!(detail.json["request"]["url"], receiver.url.as_str());
    assert_eq!(
        detail.json["request"]["headers"]["x-comps-signature"],
        request.header("x-comps-signature")
    );
    assert_eq!(detail.json["response"]["status"], 200);
    assert_eq!(detail.json["response"]["body"], "{\"ok\":true}");
    assert_eq!(detail.json["response"]["truncated"], false);
    assert!(
        !detail.text.contains(secret),
        "the secret never appears after the reveal"
    );

    let webhook = api.webhook(wh).await;
    assert_eq!(webhook.json["last_delivery"]["ok"], true);
    assert_eq!(webhook.json["last_delivery"]["response_status"], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_responses_are_kept_up_to_16_kib_and_flagged() {
    let api = Api::new();
    let big = "x".repeat(40 * 1024);
    let receiver = Receiver::start(vec![Reply::status(200).with_body(big)]).await;
    let wh = api.webhook_for(&receiver.url, &["order.completed"]).await;
    let event_id = api.post("order.completed", json!({})).await.id;
    let dlv = delivery_id(&event_id, &wh).await;
    api.wait_for_state(&wh, &dlv, &["succeeded"], Duration::from_secs(30))
        .await;
    let log = api.attempts_of_event(&wh, &event_id).await;
    let detail = api.attempt(&wh, log[0]["id"].as_str().expect("id")).await;
    assert_eq!(
        detail.json["response"]["body"].as_str().map(str::len),
        Some(16 * 1024)
    );
    assert_eq!(detail.json["response"]["truncated"], true);
}
