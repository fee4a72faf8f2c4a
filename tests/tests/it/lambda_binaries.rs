//! The built function binaries, run as Lambda runs them: under a Runtime API (emulated here),
//! configured only through the environment that `template.yaml` sets, with the credentials of
//! their own role, talking to the emulator through the SDK. No local-only switch is set: the
//! binaries refuse them inside Lambda.

use aws_sdk_dynamodb::config::Credentials;
use integration_tests::delivery_id;
use integration_tests::functions::{deliver_from, deliver_role_for, fanout_to, role_for, spawn};
use integration_tests::harness::OwnQueue;
use integration_tests::lambda_events::{
    http_api_request, received_record, sqs_event_json, sqs_record,
};
use integration_tests::{unique, Api, Harness, Receiver, Reply};
use serde_json::{json, Value};
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef, EventRecord};

/// Puts one message per delivery in `queue` and receives them all back as the SQS event
/// records Lambda would make of them.
async fn queued_records(
    queue: &OwnQueue,
    deliveries: &[DeliveryMessage],
) -> Vec<aws_lambda_events::event::sqs::SqsMessage> {
    let sqs = aws_sdk_sqs::Client::new(&Harness::get().sdk_config().await);
    for d in deliveries {
        let body = serde_json::to_string(d).expect("json");
        sqs.send_message()
            .queue_url(&queue.url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let received = queue.receive(&sqs, 2).await;
    assert_eq!(received.len(), deliveries.len());
    received
        .iter()
        .map(|m| received_record(m, &queue.arn))
        .collect()
}

fn delivery_of(webhook_id: &str, event_id: &str, topic: &str) -> DeliveryMessage {
    DeliveryMessage {
        delivery: DeliveryRef {
            delivery_id: ids::delivery_id(
                &event_id.into(),
                &webhook_id.into(),
                Timestamp::parse(RECEIVED_AT).expect("time").system_time(),
            ),
            webhook_id: webhook_id.into(),
            event_id: event_id.into(),
            event_type: topic.into(),
            resource_id: Some("win_1".into()),
            manual: false,
        },
        created_at: Timestamp::parse(RECEIVED_AT),
        body: None,
        fresh: false,
    }
}

/// When the events of these tests were received (written by the test).
const RECEIVED_AT: &str = "2026-11-27T03:00:00.000Z";

// An event type nothing posts in the tests, so the gateway's pollers never see these.
const TOPIC: &str = "winner.prize_choice_made";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliver_binary_answers_an_sqs_batch_with_its_failures() {
    let h = Harness::get();
    let api = Api::new();
    let store = h.adapters(&h.config(&[])).await.store;

    // Inside Lambda the SSRF guard cannot be lifted: a receiver on loopback is refused for
    // good, without a request. Another webhook's event is missing (an internal error): its
    // message is retried.
    let local = Receiver::start(vec![Reply::status(200)]).await;
    let blocked = api.webhook_for(&local.url, &[TOPIC]).await;
    let unlucky = api.webhook_for(&local.url, &[TOPIC]).await;
    let event_id = unique("evt");
    let missing_event_id = unique("evt-missing");
    let payload = json!({"id": event_id, "type": TOPIC, "created_at": "2026-11-27T03:00:00Z", "data": {"id": "win_1"}}).to_string();
    store
        .put_event_if_new(&EventRecord {
            id: event_id.clone().into(),
            event_type: TOPIC.into(),
            resource_id: Some("win_1".into()),
            payload,
            fingerprint: "test".into(),
            received_at: Timestamp::parse(RECEIVED_AT).expect("time"),
            webhooks: None,
            deliveries: Some(1),
            webhook_pages: 0,
            expires_at: 0,
        })
        .await
        .expect("store event");
    let deliveries = [
        delivery_of(&blocked, &event_id, TOPIC),
        delivery_of(&unlucky, &missing_event_id, TOPIC),
    ];

    // deliver's role, as template.yaml writes it, for this test's queue.
    let queue = h.own_queue("rt-queue").await;
    let credentials = deliver_role_for(&queue, None).await;
    let records = queued_records(&queue, &deliveries).await;
    let retried_message_id = records
        .iter()
        .find(|r| r.body.as_deref().is_some_and(|b| b.contains(&unlucky)))
        .and_then(|r| r.message_id.clone())
        .expect("message for the missing event");

    let function = deliver_from(&queue, credentials).await;
    let body = function.call(sqs_event_json(records.clone())).await;
    assert_eq!(
        body,
        json!({"batchItemFailures": [{"itemIdentifier": retried_message_id}]}),
        "{}",
        function.output()
    );
    assert!(
        local.requests_for(&event_id).is_empty(),
        "no request to loopback"
    );
    let refused = api
        .delivery(&blocked, &delivery_id(&event_id, &blocked).await)
        .await;
    assert_eq!(
        refused.json["state"], "permanently_failed",
        "{}",
        refused.text
    );
    let attempts = api.attempts_of_event(&blocked, &event_id).await;
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
    let settled = records
        .iter()
        .find(|r| r.message_id.as_ref() != Some(&retried_message_id))
        .expect("record");
    let body = function.call(sqs_event_json(vec![settled.clone()])).await;
    assert_eq!(body, json!({"batchItemFailures": []}));
    let again = api
        .delivery(&blocked, &delivery_id(&event_id, &blocked).await)
        .await;
    assert_eq!(again.json["attempts"], 1, "{}", again.text);
}

/// Runs the deliver binary on a message whose event is missing (so it postpones the message
/// with ChangeMessageVisibility) with `credentials`; returns what it printed.
async fn postpone_with(queue: &OwnQueue, credentials: Credentials) -> String {
    let webhook = Api::new()
        .webhook_for("https://iam.example.com/h", &[TOPIC])
        .await;
    let records = queued_records(
        queue,
        &[delivery_of(&webhook, &unique("evt-missing"), TOPIC)],
    )
    .await;
    let function = deliver_from(queue, credentials).await;
    let body = function.call(sqs_event_json(records)).await;
    assert_eq!(
        body["batchItemFailures"].as_array().map(Vec::len),
        Some(1),
        "{body}"
    );
    function.output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_is_enforced_a_role_without_a_needed_permission_fails_and_names_it() {
    let h = Harness::get();
    assert!(
        h.stack.iam_enforced || std::env::var("WEBHOOKS_TEST_AWS_ENDPOINT").is_ok(),
        "the harness's own emulator enforces IAM"
    );
    let queue = h.own_queue("rt-queue").await;

    // deliver's role as template.yaml has it: the postponement goes through.
    let full = deliver_role_for(&queue, None).await;
    let output = postpone_with(&queue, full).await;
    assert!(
        !output.contains("not authorized"),
        "deliver's role allows what it does: {output}"
    );

    // The same role without sqs:ChangeMessageVisibility (the permission SAM's SQS event
    // source does not grant): refused, and the log names the action.
    let lacking = deliver_role_for(&queue, Some("sqs:ChangeMessageVisibility")).await;
    let output = postpone_with(&queue, lacking).await;
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
            let mut function = spawn(name, &[(switch, value.clone())]).await;
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
    let admin_api = spawn("admin-api", &[]).await;
    // What API Gateway's JWT authorizer passes on: the token's claims and scopes.
    let request = |method: &str, path: &str, body: Option<&str>| {
        http_api_request(method, path, body, Some("openid webhooks/admin"))
    };
    // A customer's token from the same identity provider, without the admin scope.
    let body = admin_api
        .call(http_api_request(
            "GET",
            "/api/v1/webhooks",
            None,
            Some("openid orders/read"),
        ))
        .await;
    assert_eq!(body["statusCode"], 403, "{body}");
    assert_eq!(body["headers"]["content-type"], "application/problem+json");

    let body = admin_api
        .call(request("GET", "/api/v1/event-types", None))
        .await;
    assert_eq!(body["statusCode"], 200, "{body}");
    let listed: Value = serde_json::from_str(body["body"].as_str().expect("body")).expect("json");
    assert_eq!(listed["event_types"].as_array().map(Vec::len), Some(9));

    let body = admin_api
        .call(request("POST", "/api/v1/webhooks", Some("{\"name\":")))
        .await;
    assert_eq!(body["statusCode"], 400, "{body}");
    assert_eq!(body["headers"]["content-type"], "application/problem+json");
}

/// What Lambda's admin-api makes of a webhook URL: private, loopback, link-local and
/// metadata targets are refused when saved (create and PATCH), nothing is written, and the
/// URL is stored as the parser normalizes it. The switch that lifts the rule locally is
/// refused inside Lambda, so this is what production does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_binary_refuses_private_targets_when_saved() {
    let admin_api = spawn("admin-api", &[]).await;
    let call = |method: &'static str, path: String, body: Value| {
        let admin_api = &admin_api;
        async move {
            let body = body.to_string();
            let answer = admin_api
                .call(http_api_request(
                    method,
                    &path,
                    Some(&body),
                    Some("webhooks/admin"),
                ))
                .await;
            let status = answer["statusCode"].as_u64().unwrap_or(0);
            let body: Value = answer["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            (status, body)
        }
    };
    let hostile = [
        "https://169.254.169.254/latest",
        "https://localhost/x",
        "https://0x7f.1/",
        "https://[::1]/",
        "https://10.0.0.1/",
    ];
    let name = unique("private-targets");
    for url in hostile {
        let (status, problem) = call(
            "POST",
            "/api/v1/webhooks".into(),
            json!({"name": name, "url": url, "events": ["user.registered"]}),
        )
        .await;
        assert_eq!(status, 422, "POST {url}: {problem}");
        assert_eq!(problem["field"], "url", "{problem}");
    }
    // Every page of the list (other tests' webhooks fill the first ones).
    let mut saved = 0;
    let mut path = "/api/v1/webhooks".to_owned();
    loop {
        let (status, listed) = call("GET", path.clone(), Value::Null).await;
        assert_eq!(status, 200, "{listed}");
        saved += listed["webhooks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|w| w["name"] == name.as_str())
            .count();
        match listed["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/webhooks?cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(saved, 0, "a refused webhook was written");

    let (status, created) = call(
        "POST",
        "/api/v1/webhooks".into(),
        json!({"name": name, "url": "https://Hooks.Example.COM/a\tb", "events": ["user.registered"]}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["url"], "https://hooks.example.com/ab");
    let path = format!("/api/v1/webhooks/{}", created["id"].as_str().unwrap_or(""));
    for url in hostile {
        let (status, problem) = call("PATCH", path.clone(), json!({ "url": url })).await;
        assert_eq!(status, 422, "PATCH {url}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or("")
                .contains("public host"),
            "{problem}"
        );
    }
    let (_, kept) = call("GET", path.clone(), Value::Null).await;
    assert_eq!(kept["url"], "https://hooks.example.com/ab", "{kept}");
    assert_eq!(kept["updated_at"], created["updated_at"], "{kept}");
    let (status, _) = call("DELETE", path, Value::Null).await;
    assert_eq!(status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_and_alerter_binaries_answer_their_events() {
    let fanout = spawn("fanout", &[]).await;
    let event_id = unique("evt-binary");
    let event =
        json!({"id": event_id, "type": "competition.ended", "data": {"id": "cmp_9"}}).to_string();
    let body = fanout
        .call(http_api_request(
            "POST",
            "/api/v1/events",
            Some(&event),
            None,
        ))
        .await;
    assert_eq!(body["statusCode"], 202, "{body}");
    let accepted: Value = serde_json::from_str(body["body"].as_str().expect("body")).expect("json");
    assert_eq!(accepted, json!({"id": event_id, "deliveries": 0}));
    // The batch route of the same function: the event above again, and a new one.
    let other = unique("evt-binary");
    let batch = json!({"events": [
        {"id": event_id, "type": "competition.ended", "data": {"id": "cmp_9"}},
        {"id": other, "type": "competition.ended", "data": {"id": "cmp_10"}},
    ]})
    .to_string();
    let body = fanout
        .call(http_api_request(
            "POST",
            "/api/v1/events/batch",
            Some(&batch),
            None,
        ))
        .await;
    assert_eq!(body["statusCode"], 202, "{body}");
    let accepted: Value = serde_json::from_str(body["body"].as_str().expect("body")).expect("json");
    assert_eq!(
        accepted,
        json!({"events": [{"id": event_id, "deliveries": 0}, {"id": other, "deliveries": 0}]})
    );

    // The alerter: a flush for a window that does not exist is simply done.
    let alerter = spawn("alerter", &[]).await;
    let flush = json!({"kind": "flush", "webhook_id": "wh_nobody", "window_id": "w0"}).to_string();
    let alerts_queue = "arn:aws:sqs:us-east-1:123456789012:alerts";
    let record = sqs_record("m-1", Some("rh-1"), &flush, alerts_queue);
    let body = alerter.call(sqs_event_json(vec![record])).await;
    assert_eq!(body, json!({"batchItemFailures": []}));
}

/// A record of the events table's stream, as Lambda hands it over: `event_id` stored with
/// `webhooks`, its body `payload`.
fn stream_record(event_id: &str, webhooks: &[&str], payload: &str, sequence: &str) -> Value {
    json!({
        "eventID": sequence, "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-11-27T00:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": 1_795_000_000,
            "Keys": {"id": {"S": event_id}},
            "NewImage": {
                "id": {"S": event_id}, "type": {"S": TOPIC}, "resource_id": {"S": "win_1"},
                "payload": {"S": payload}, "fingerprint": {"S": "test"},
                "received_at": {"S": RECEIVED_AT},
                "webhooks": {"L": webhooks.iter().map(|w| json!({"S": w})).collect::<Vec<_>>()},
                "expires_at": {"N": "0"}
            },
            "SequenceNumber": sequence, "SizeBytes": 400, "StreamViewType": "NEW_IMAGE"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fanout_binary_queues_each_delivery_of_a_stream_record_once_however_often_it_is_handed_over(
) {
    let h = Harness::get();
    let queue = h.own_fifo_queue("rt-fanout", 30).await;
    let credentials = role_for("fanout", &queue, None).await;
    let function = fanout_to(&queue, credentials).await;

    let event_id = unique("evt-stream");
    let payload = json!({"id": event_id, "type": TOPIC, "created_at": "2026-11-27T03:00:00Z", "data": {"id": "win_1"}}).to_string();
    // A body holding characters SQS refuses raw (U+FFFF, U+FFFE): the message must still
    // be one SQS takes (the emulator refuses what SQS refuses), and carry them exactly.
    let odd_event = unique("evt-stream-odd");
    let odd_payload = json!({"id": odd_event, "type": TOPIC, "created_at": "2026-11-27T03:00:00Z",
        "data": {"id": "x\u{FFFF}y", "note": "\u{FFFE}"}})
    .to_string();
    let batch = json!({"Records": [
        stream_record(&event_id, &["wh_a", "wh_b"], &payload, "100"),
        stream_record(&odd_event, &["wh_a"], &odd_payload, "101"),
    ]});
    // Handed over twice, as Lambda does after a failed invocation.
    for _ in 0..2 {
        let answer = function.call(batch.clone()).await;
        assert_eq!(
            answer,
            json!({"batchItemFailures": []}),
            "{}",
            function.output()
        );
    }
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);
    let mut handed: Vec<DeliveryMessage> = queue
        .receive(&sqs, 2)
        .await
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or_default()).expect("a delivery"))
        .collect();
    handed.sort_by(|a, b| a.delivery.delivery_id.cmp(&b.delivery.delivery_id));
    let mut expected = vec![
        delivery_id_for(&event_id, "wh_a"),
        delivery_id_for(&event_id, "wh_b"),
        delivery_id_for(&odd_event, "wh_a"),
    ];
    expected.sort();
    let ids: Vec<&str> = handed
        .iter()
        .map(|m| m.delivery.delivery_id.as_str())
        .collect();
    assert_eq!(
        ids, expected,
        "one message per delivery, none twice: {handed:?}"
    );
    for message in &handed {
        let want = if message.delivery.event_id.as_str() == odd_event {
            &odd_payload
        } else {
            &payload
        };
        assert_eq!(
            message.body.as_deref(),
            Some(want.as_str()),
            "the exact body rides along"
        );
        assert_eq!(message.delivery.resource_id.as_deref(), Some("win_1"));
    }
    assert!(odd_payload.contains('\u{FFFF}'));
    assert!(
        !function.output().contains("not authorized"),
        "the role allows every call fanout made: {}",
        function.output()
    );
}

/// The id every path gives the delivery of `event_id` (received at [`RECEIVED_AT`]) to
/// `webhook_id`.
fn delivery_id_for(event_id: &str, webhook_id: &str) -> String {
    delivery_of(webhook_id, event_id, TOPIC)
        .delivery
        .delivery_id
        .to_string()
}
