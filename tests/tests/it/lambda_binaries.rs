//! The built function binaries, run as Lambda runs them: under a Runtime API (emulated here),
//! configured only through the environment that `template.yaml` sets, with the credentials of
//! their own role, talking to the emulator through the SDK. No local-only switch is set: the
//! binaries refuse them inside Lambda.

use std::time::Duration;

use aws_sdk_dynamodb::config::Credentials;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{unique, Api, Harness, Receiver, Reply};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use webhooks_shared::adapters::Adapters;
use webhooks_shared::domain::ids::delivery_id;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRecord, EventRecord};
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

/// A function binary started as Lambda starts it; what it prints is kept in `output`.
struct Function {
    child: Child,
    output: tempfile::NamedTempFile,
}

impl Function {
    fn output(&self) -> String {
        std::fs::read_to_string(self.output.path()).unwrap_or_default()
    }

    /// Waits for the process to end (an init failure); returns whether it succeeded.
    async fn exit(&mut self) -> bool {
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the function exited in time")
            .expect("wait")
            .success()
    }
}

/// Starts `name` with the environment `template.yaml` gives it and `credentials` (the
/// function's own role's unless given), plus `extra_env`.
async fn spawn_as(
    name: &str,
    runtime: &RuntimeApi,
    credentials: Option<Credentials>,
    extra_env: &[(&str, String)],
) -> Function {
    let h = Harness::get();
    let credentials = match credentials {
        Some(c) => c,
        None => h.function_credentials(name).await,
    };
    let output = tempfile::NamedTempFile::new().expect("output file");
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
        .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
        .env(
            "AWS_SESSION_TOKEN",
            credentials.session_token().unwrap_or_default(),
        )
        .env("AWS_REGION", "us-east-1")
        .stdout(output.reopen().expect("output"))
        .stderr(output.reopen().expect("output"))
        .kill_on_drop(true);
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let child = command.spawn().expect("start function binary");
    Function { child, output }
}

async fn spawn(name: &str, runtime: &RuntimeApi, extra_env: &[(&str, String)]) -> Function {
    spawn_as(name, runtime, None, extra_env).await
}

/// An SQS event record for a message received from a queue.
fn record(m: &aws_sdk_sqs::types::Message, queue_arn: &str) -> Value {
    json!({
        "messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
        "md5OfBody": m.md5_of_body(), "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": "us-east-1"
    })
}

/// A queue of the test's own (so only the binary under test sees its messages) and its ARN.
async fn own_queue(sqs: &aws_sdk_sqs::Client) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(unique("rt-queue"))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("arn");
    (url, arn)
}

/// Puts one message per delivery in `queue_url` and receives them all back as records.
async fn queued_records(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    queue_arn: &str,
    deliveries: &[DeliveryRecord],
) -> Vec<Value> {
    for d in deliveries {
        let body = serde_json::to_string(&DeliveryMessage::from(d)).expect("json");
        sqs.send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), deliveries.len());
    received.iter().map(|m| record(m, queue_arn)).collect()
}

fn delivery_of(webhook_id: &str, event_id: &str, topic: &str) -> DeliveryRecord {
    DeliveryRecord {
        id: delivery_id(event_id, webhook_id),
        webhook_id: webhook_id.to_string(),
        event_id: event_id.to_string(),
        event_type: topic.into(),
        resource_id: Some("win_1".into()),
        manual: false,
        created_at: "2026-11-27T03:00:00.000Z".into(),
        expires_at: 0,
    }
}

// An event type nothing posts in the tests, so the gateway's pollers never see these.
const TOPIC: &str = "winner.prize_choice_made";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliver_binary_answers_an_sqs_batch_with_its_failures() {
    let h = Harness::get();
    let api = Api::new();
    let sdk = h.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let config = Config::from_lookup(|k| h.stack.env.get(k).cloned()).expect("config");
    let store = Adapters::new(&sdk, &config).store;

    // Inside Lambda the SSRF guard cannot be lifted: a receiver on loopback is refused for
    // good, without a request. Another webhook's event is missing (an internal error): its
    // message is retried.
    let local = Receiver::start(&h.ca, vec![Reply::status(200)]).await;
    let blocked = api
        .create_webhook(&unique("rt-blocked"), &local.url, &[TOPIC], true)
        .await;
    let unlucky = api
        .create_webhook(&unique("rt-missing"), &local.url, &[TOPIC], true)
        .await;
    let (blocked, unlucky) = (
        blocked["id"].as_str().expect("id"),
        unlucky["id"].as_str().expect("id"),
    );
    let event_id = unique("evt");
    let missing_event_id = unique("evt-missing");
    let payload = json!({"id": event_id, "type": TOPIC, "created_at": "2026-11-27T03:00:00Z", "data": {"id": "win_1"}}).to_string();
    store
        .put_event_if_new(&EventRecord {
            id: event_id.clone(),
            event_type: TOPIC.into(),
            resource_id: Some("win_1".into()),
            payload,
            fingerprint: "test".into(),
            received_at: "2026-11-27T03:00:00.000Z".into(),
            deliveries: Some(1),
            expires_at: 0,
        })
        .await
        .expect("store event");
    let deliveries = [
        delivery_of(blocked, &event_id, TOPIC),
        delivery_of(unlucky, &missing_event_id, TOPIC),
    ];
    store
        .put_deliveries(&deliveries)
        .await
        .expect("store deliveries");

    // deliver's role, as template.yaml writes it, for this test's queue.
    let (queue_url, queue_arn) = own_queue(&sqs).await;
    let stack_queue = h.stack_json["resources"]["DeliveriesQueue"]["arn"]
        .as_str()
        .expect("queue arn");
    let role = h
        .derive_role("deliver", &[(stack_queue, &queue_arn)], None)
        .await;
    let records = queued_records(&sqs, &queue_url, &queue_arn, &deliveries).await;
    let retried_message_id = records
        .iter()
        .find(|r| r["body"].as_str().is_some_and(|b| b.contains(unlucky)))
        .and_then(|r| r["messageId"].as_str())
        .expect("message for the missing event")
        .to_owned();

    let runtime = RuntimeApi::start().await;
    let function = spawn_as(
        "deliver",
        &runtime,
        Some(h.role_credentials(&role).await),
        &[("DELIVERY_QUEUE_URL", queue_url.clone())],
    )
    .await;
    let request_id = runtime.invoke(json!({ "Records": records }));
    match runtime.outcome(Duration::from_secs(60)).await {
        Outcome::Response {
            request_id: answered,
            body,
        } => {
            assert_eq!(answered, request_id);
            assert_eq!(
                body,
                json!({"batchItemFailures": [{"itemIdentifier": retried_message_id}]}),
                "{}",
                function.output()
            );
        }
        other => panic!("the function failed: {other:?}\n{}", function.output()),
    }
    assert!(
        local.requests_for(&event_id).is_empty(),
        "no request to loopback"
    );
    let refused = api
        .delivery(blocked, &delivery_id(&event_id, blocked))
        .await;
    assert_eq!(
        refused.json["state"], "permanently_failed",
        "{}",
        refused.text
    );
    let attempts = api.attempts_of_event(blocked, &event_id).await;
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("blocked")),
        "{attempts:?}"
    );
    assert!(
        !function.output().contains("not authorized"),
        "the role allows every call deliver made: {}",
        function.output()
    );

    // SQS hands the first message back although its delivery has a final answer: the binary
    // acknowledges it without a second attempt.
    runtime.invoke(json!({ "Records": [records.iter().find(|r| r["messageId"] != retried_message_id.as_str()).expect("record")] }));
    match runtime.outcome(Duration::from_secs(60)).await {
        Outcome::Response { body, .. } => assert_eq!(body, json!({"batchItemFailures": []})),
        other => panic!("the function failed: {other:?}"),
    }
    let again = api
        .delivery(blocked, &delivery_id(&event_id, blocked))
        .await;
    assert_eq!(again.json["attempts"], 1, "{}", again.text);
}

/// Runs the deliver binary on a message whose event is missing (so it postpones the message
/// with ChangeMessageVisibility) under `role`; returns what it printed.
async fn postpone_under(role: &str, queue_url: &str, queue_arn: &str) -> String {
    let h = Harness::get();
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);
    let webhook = Api::new()
        .create_webhook(
            &unique("rt-iam"),
            "https://iam.example.com/h",
            &[TOPIC],
            true,
        )
        .await;
    let webhook = webhook["id"].as_str().expect("id");
    let records = queued_records(
        &sqs,
        queue_url,
        queue_arn,
        &[delivery_of(webhook, &unique("evt-missing"), TOPIC)],
    )
    .await;
    let runtime = RuntimeApi::start().await;
    let function = spawn_as(
        "deliver",
        &runtime,
        Some(h.role_credentials(role).await),
        &[("DELIVERY_QUEUE_URL", queue_url.to_owned())],
    )
    .await;
    runtime.invoke(json!({ "Records": records }));
    match runtime.outcome(Duration::from_secs(60)).await {
        Outcome::Response { body, .. } => assert_eq!(
            body["batchItemFailures"].as_array().map(Vec::len),
            Some(1),
            "{body}"
        ),
        other => panic!("the function failed: {other:?}"),
    }
    function.output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_is_enforced_a_role_without_a_needed_permission_fails_and_names_it() {
    let h = Harness::get();
    assert!(
        h.stack.iam_enforced || std::env::var("WEBHOOKS_TEST_AWS_ENDPOINT").is_ok(),
        "the harness's own emulator enforces IAM"
    );
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);
    let (queue_url, queue_arn) = own_queue(&sqs).await;
    let stack_queue = h.stack_json["resources"]["DeliveriesQueue"]["arn"]
        .as_str()
        .expect("queue arn");

    // deliver's role as template.yaml has it: the postponement goes through.
    let full = h
        .derive_role("deliver", &[(stack_queue, &queue_arn)], None)
        .await;
    let output = postpone_under(&full, &queue_url, &queue_arn).await;
    assert!(
        !output.contains("not authorized"),
        "deliver's role allows what it does: {output}"
    );

    // The same role without sqs:ChangeMessageVisibility (the permission SAM's SQS event
    // source does not grant): refused, and the log names the action.
    let lacking = h
        .derive_role(
            "deliver",
            &[(stack_queue, &queue_arn)],
            Some("sqs:ChangeMessageVisibility"),
        )
        .await;
    let output = postpone_under(&lacking, &queue_url, &queue_arn).await;
    assert!(
        output.contains("not authorized to perform: sqs:ChangeMessageVisibility"),
        "the refusal names the action: {output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_only_switches_make_init_fail_inside_lambda() {
    let h = Harness::get();
    for (switch, value) in [
        ("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1".to_string()),
        (
            "WEBHOOKS_EXTRA_CA_FILE",
            h.ca.pem_path.display().to_string(),
        ),
        ("WEBHOOKS_RETRY_DELAYS", "1,2,3".to_string()),
    ] {
        for name in ["deliver", "admin-api"] {
            let runtime = RuntimeApi::start().await;
            let mut function = spawn(name, &runtime, &[(switch, value.clone())]).await;
            assert!(
                !function.exit().await,
                "{name} refused to start with {switch}"
            );
            let output = function.output();
            assert!(
                output.contains(switch) && output.contains("local-only"),
                "{name}'s log names {switch}: {output}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_binary_answers_http_api_events() {
    let runtime = RuntimeApi::start().await;
    let _function = spawn("admin-api", &runtime, &[]).await;
    // What API Gateway's JWT authorizer passes on: the token's claims and scopes.
    let request_with_scope = |method: &str, path: &str, body: Option<&str>, scope: &str| {
        json!({
            "version": "2.0", "routeKey": format!("{method} {path}"), "rawPath": path, "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                "requestId": "r1", "routeKey": format!("{method} {path}"), "stage": "$default",
                "time": "27/Nov/2026:03:00:00 +0000", "timeEpoch": 1795748400000u64,
                "authorizer": {"jwt": {"claims": {"sub": "admin-1", "scope": scope}, "scopes": null}}
            },
            "body": body, "isBase64Encoded": false
        })
    };
    let request = |method: &str, path: &str, body: Option<&str>| {
        request_with_scope(method, path, body, "openid webhooks/admin")
    };
    // A customer's token from the same identity provider, without the admin scope.
    runtime.invoke(request_with_scope(
        "GET",
        "/api/v1/webhooks",
        None,
        "openid orders/read",
    ));
    let Outcome::Response { body, .. } = runtime.outcome(Duration::from_secs(60)).await else {
        panic!("admin-api failed")
    };
    assert_eq!(body["statusCode"], 403, "{body}");
    assert_eq!(body["headers"]["content-type"], "application/problem+json");

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
    let _fanout = spawn("fanout", &runtime, &[]).await;
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
    let _alerter = spawn("alerter", &runtime, &[]).await;
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
