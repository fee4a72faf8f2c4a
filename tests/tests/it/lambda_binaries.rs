//! The built function binaries, run as Lambda runs them: under a Runtime API (emulated here),
//! configured only through the environment, talking to the emulator through the SDK.

use std::process::Stdio;
use std::time::Duration;

use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{unique, Api, Harness, Receiver, Reply};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use webhooks_shared::aws::Adapters;
use webhooks_shared::ids::delivery_id;
use webhooks_shared::model::{DeliveryRecord, EventRecord};
use webhooks_shared::Config;

fn binary(name: &str) -> std::path::PathBuf {
    let h = Harness::get();
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| h.root.join("target"), Into::into);
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (make test does)",
        path.display()
    );
    path
}

fn spawn(name: &str, runtime: &RuntimeApi, extra_env: &[(&str, String)]) -> Child {
    let h = Harness::get();
    let mut command = Command::new(binary(name));
    command
        .env_clear()
        .envs(&h.stack.env)
        .env("AWS_LAMBDA_RUNTIME_API", runtime.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
        .env("AWS_ENDPOINT_URL", &h.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1")
        .env("WEBHOOKS_EXTRA_CA_FILE", &h.ca.pem_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    command.spawn().expect("start function binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliver_binary_answers_an_sqs_batch_with_its_failures() {
    let h = Harness::get();
    let api = Api::new();
    let sdk = h.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let config = Config::from_lookup(|k| h.stack.env.get(k).cloned()).expect("config");
    let store = Adapters::new(&sdk, &config).store;

    // Two webhooks: one receiver says 200, the other 503.
    let happy = Receiver::start(&h.ca, vec![Reply::status(200)]).await;
    let sad = Receiver::start(&h.ca, vec![Reply::status(503)]).await;
    // An event type nothing posts in the tests, so the gateway's pollers never see these.
    let topic = "winner.prize_choice_made";
    let w1 = api
        .create_webhook(&unique("rt-ok"), &happy.url, &[topic], true)
        .await;
    let w2 = api
        .create_webhook(&unique("rt-503"), &sad.url, &[topic], true)
        .await;
    let (w1, w2) = (
        w1["id"].as_str().expect("id"),
        w2["id"].as_str().expect("id"),
    );

    // The event and its deliveries as fan-out would store them; the messages go to a queue
    // of this test's own, so only the binary under test sees them.
    let event_id = unique("evt");
    let payload = json!({"id": event_id, "type": topic, "created_at": "2026-11-27T03:00:00Z", "data": {"id": "win_1"}}).to_string();
    store
        .put_event_if_new(&EventRecord {
            id: event_id.clone(),
            event_type: topic.into(),
            resource_id: Some("win_1".into()),
            payload,
            fingerprint: "test".into(),
            received_at: "2026-11-27T03:00:00.000Z".into(),
            deliveries: Some(2),
            expires_at: 0,
        })
        .await
        .expect("store event");
    let deliveries: Vec<DeliveryRecord> = [w1, w2]
        .iter()
        .map(|wh| DeliveryRecord {
            id: delivery_id(&event_id, wh),
            webhook_id: wh.to_string(),
            event_id: event_id.clone(),
            event_type: topic.into(),
            resource_id: Some("win_1".into()),
            manual: false,
            created_at: "2026-11-27T03:00:00.000Z".into(),
            expires_at: 0,
        })
        .collect();
    store
        .put_deliveries(&deliveries)
        .await
        .expect("store deliveries");
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("rt-queue"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    for d in &deliveries {
        let body =
            serde_json::to_string(&webhooks_shared::model::DeliveryMessage::from(d)).expect("json");
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let received = sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 2);
    let records: Vec<Value> = received
        .iter()
        .map(|m| {
            json!({
                "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:rt", "awsRegion": "us-east-1"
            })
        })
        .collect();
    let sad_message_id = received
        .iter()
        .find(|m| m.body().is_some_and(|b| b.contains(w2)))
        .and_then(|m| m.message_id())
        .expect("message for the 503 webhook")
        .to_owned();

    let runtime = RuntimeApi::start().await;
    let _function = spawn(
        "deliver",
        &runtime,
        &[
            ("DELIVERY_QUEUE_URL", queue_url.clone()),
            ("WEBHOOKS_RETRY_DELAYS", "30".into()),
        ],
    );
    let request_id = runtime.invoke(json!({ "Records": records }));
    match runtime.outcome(Duration::from_secs(60)).await {
        Outcome::Response {
            request_id: answered,
            body,
        } => {
            assert_eq!(answered, request_id);
            assert_eq!(
                body,
                json!({"batchItemFailures": [{"itemIdentifier": sad_message_id}]})
            );
        }
        other => panic!("the function failed: {other:?}"),
    }
    assert_eq!(happy.requests_for(&event_id).len(), 1);
    assert_eq!(sad.requests_for(&event_id).len(), 1);
    let ok = api.delivery(w1, &delivery_id(&event_id, w1)).await;
    assert_eq!(ok.json["state"], "succeeded", "{}", ok.text);
    let retrying = api.delivery(w2, &delivery_id(&event_id, w2)).await;
    assert_eq!(retrying.json["state"], "retrying", "{}", retrying.text);
    assert!(retrying.json["next_attempt_at"].is_string());

    // SQS hands the first message back although its delivery has a final answer:
    // the binary acknowledges it without a second HTTP request.
    runtime.invoke(json!({ "Records": [records.iter().find(|r| r["messageId"] != sad_message_id.as_str()).expect("ok record")] }));
    match runtime.outcome(Duration::from_secs(60)).await {
        Outcome::Response { body, .. } => assert_eq!(body, json!({"batchItemFailures": []})),
        other => panic!("the function failed: {other:?}"),
    }
    assert_eq!(
        happy.requests_for(&event_id).len(),
        1,
        "no second request for a final attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_binary_answers_http_api_events() {
    let runtime = RuntimeApi::start().await;
    let _function = spawn("admin-api", &runtime, &[]);
    let request = |method: &str, path: &str, body: Option<&str>| {
        json!({
            "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                "requestId": "r1", "routeKey": format!("{method} {path}"), "stage": "$default",
                "time": "27/Nov/2026:03:00:00 +0000", "timeEpoch": 1795748400000u64
            },
            "body": body, "isBase64Encoded": false
        })
    };
    runtime.invoke(request("GET", "/api/v1/event-types", None));
    let Outcome::Response { body, .. } = runtime.outcome(Duration::from_secs(60)).await else {
        panic!("admin-api failed")
    };
    assert_eq!(body["statusCode"], 200, "{body}");
    let listed: Value = serde_json::from_str(body["body"].as_str().expect("body")).expect("json");
    assert_eq!(listed["event_types"].as_array().map(Vec::len), Some(9));

    runtime.invoke(request("POST", "/api/v1/webhooks", Some("{\"name\":")));
    let Outcome::Response { body, .. } = runtime.outcome(Duration::from_secs(60)).await else {
        panic!("admin-api failed")
    };
    assert_eq!(body["statusCode"], 400, "{body}");
    assert_eq!(body["headers"]["content-type"], "application/problem+json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_and_alerter_binaries_answer_their_events() {
    let runtime = RuntimeApi::start().await;
    let _fanout = spawn("fanout", &runtime, &[]);
    let event_id = unique("evt-binary");
    let body =
        json!({"id": event_id, "type": "competition.ended", "data": {"id": "cmp_9"}}).to_string();
    runtime.invoke(json!({
        "version": "2.0", "routeKey": "POST /api/v1/events", "rawPath": "/api/v1/events", "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
            "http": {"method": "POST", "path": "/api/v1/events", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": "r2", "routeKey": "POST /api/v1/events", "stage": "$default",
            "time": "27/Nov/2026:03:00:00 +0000", "timeEpoch": 1795748400000u64
        },
        "body": body, "isBase64Encoded": false
    }));
    let Outcome::Response { body, .. } = runtime.outcome(Duration::from_secs(60)).await else {
        panic!("fanout failed")
    };
    assert_eq!(body["statusCode"], 202, "{body}");
    let accepted: Value = serde_json::from_str(body["body"].as_str().expect("body")).expect("json");
    assert_eq!(accepted, json!({"id": event_id, "deliveries": 0}));

    // The alerter: a flush for a window that does not exist is simply done.
    let runtime = RuntimeApi::start().await;
    let _alerter = spawn("alerter", &runtime, &[]);
    let flush = json!({"kind": "flush", "webhook_id": "wh_nobody", "window_id": "w0"}).to_string();
    runtime.invoke(json!({"Records": [{
        "messageId": "m-1", "receiptHandle": "rh-1", "body": flush, "attributes": {}, "messageAttributes": {},
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:alerts", "awsRegion": "us-east-1"
    }]}));
    match runtime.outcome(Duration::from_secs(60)).await {
        Outcome::Response { body, .. } => assert_eq!(body, json!({"batchItemFailures": []})),
        other => panic!("the alerter failed: {other:?}"),
    }
}
