//! The delivery pipeline: fan-out, signed delivery, the retry schedule, idempotency.

use std::time::{Duration, SystemTime};

use integration_tests::delivery_id;
use integration_tests::harness::RETRY_DELAYS;
use integration_tests::receiver::closed_port;
use integration_tests::{unique, Api, Receiver, Reply, WAIT};
use serde_json::{json, Value};

fn attempt_numbers(attempts: &[Value]) -> Vec<u64> {
    attempts
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap_or(0))
        .collect()
}

fn statuses(attempts: &[Value]) -> Vec<Option<u64>> {
    attempts
        .iter()
        .map(|a| a["response_status"].as_u64())
        .collect()
}

fn parse_time(text: &Value) -> SystemTime {
    webhooks_shared::domain::clock::parse_rfc3339(text.as_str().expect("time string"))
        .expect("RFC 3339")
}

/// Posts an event of `event_type` that a webhook of the test subscribes to; returns its id.
async fn post(api: &Api, event_type: &str) -> String {
    let posted = api
        .post(event_type, json!({"id": 7, "note": "héllo"}))
        .await;
    assert!(posted.deliveries >= 1, "{posted:?}");
    posted.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_500_500_200_then_succeeds_with_identical_bodies() {
    let api = Api::new();
    let receiver = Receiver::start(vec![
        Reply::status(500),
        Reply::status(500),
        Reply::status(200),
    ])
    .await;
    let wh = api.webhook_for(&receiver.url, &["order.completed"]).await;
    let event_id = post(&api, "order.completed").await;
    let dlv = delivery_id(&event_id, &wh).await;
    let delivery = api.wait_for_state(&wh, &dlv, &["succeeded"], WAIT).await;
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["next_attempt_at"], Value::Null);

    let requests = receiver.requests_for(&event_id);
    assert_eq!(requests.len(), 3);
    let attempts: Vec<_> = requests
        .iter()
        .map(|r| r.header("x-comps-attempt").to_owned())
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    for r in &requests {
        assert_eq!(
            r.body, requests[0].body,
            "the body bytes are identical on every attempt"
        );
        assert_eq!(r.header("x-comps-delivery"), dlv);
        assert_eq!(r.header("x-comps-event-id"), event_id);
        assert_eq!(r.header("webhook-id"), event_id);
    }
    let body: Value = serde_json::from_slice(&requests[0].body).expect("JSON body");
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["data"], json!({"id": 7, "note": "héllo"}));

    let log = api.attempts_of_event(&wh, &event_id).await;
    assert_eq!(attempt_numbers(&log), [3, 2, 1], "newest first");
    assert_eq!(statuses(&log), [Some(200), Some(500), Some(500)]);
    assert_eq!(log[0]["outcome"], "succeeded");
    assert_eq!(log[1]["outcome"], "failed");
    assert_eq!(log[0]["resource_id"], "7");
    assert_eq!(log[0]["event_type"], "order.completed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(400).with_body("bad field")]).await;
    let wh = api.webhook_for(&receiver.url, &["order.refunded"]).await;
    let event_id = post(&api, "order.refunded").await;
    let delivery = api
        .wait_for_event(&wh, &event_id, &["permanently_failed"])
        .await;
    assert_eq!(delivery["attempts"], 1);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        receiver.requests_for(&event_id).len(),
        1,
        "a 400 is never retried"
    );
    let log = api.attempts_of_event(&wh, &event_id).await;
    assert_eq!(statuses(&log), [Some(400)]);

    let webhook = api.webhook(&wh).await;
    assert_eq!(webhook.json["last_delivery"]["ok"], false);
    assert_eq!(webhook.json["last_delivery"]["response_status"], 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_408_429_503_are_retried() {
    let api = Api::new();
    let script = vec![
        Reply::status(408),
        Reply::status(429),
        Reply::status(503),
        Reply::status(204),
    ];
    let receiver = Receiver::start(script).await;
    let wh = api.webhook_for(&receiver.url, &["winner.drawn"]).await;
    let event_id = post(&api, "winner.drawn").await;
    let delivery = api.wait_for_event(&wh, &event_id, &["succeeded"]).await;
    assert_eq!(delivery["attempts"], 4);
    let log = api.attempts_of_event(&wh, &event_id).await;
    assert_eq!(statuses(&log), [Some(204), Some(503), Some(429), Some(408)]);
    assert_eq!(receiver.requests_for(&event_id).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_past_the_timeout_is_retried() {
    let api = Api::new();
    let receiver = Receiver::start(vec![
        Reply::hang(Duration::from_secs(15)),
        Reply::status(200),
    ])
    .await;
    let wh = api
        .webhook_for(&receiver.url, &["withdrawal.requested"])
        .await;
    let event_id = post(&api, "withdrawal.requested").await;
    api.wait_for_event(&wh, &event_id, &["succeeded"]).await;
    let log = api.attempts_of_event(&wh, &event_id).await;
    assert_eq!(attempt_numbers(&log), [2, 1]);
    let first = &log[1];
    assert_eq!(first["outcome"], "failed");
    assert_eq!(first["response_status"], Value::Null);
    assert!(
        first["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timeout"),
        "{first}"
    );
    let took = first["duration_ms"].as_u64().unwrap_or(0);
    assert!(
        (9_500..20_000).contains(&took),
        "the attempt lasted the 10 s timeout, not {took} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_run_the_whole_schedule_then_fail_permanently() {
    let api = Api::new();
    let url = format!("https://localhost:{}/hook", closed_port());
    let wh = api.webhook_for(&url, &["competition.created"]).await;
    let event_id = post(&api, "competition.created").await;
    let delivery = api
        .wait_for_event(&wh, &event_id, &["permanently_failed"])
        .await;
    assert_eq!(delivery["attempts"], 6);

    let mut log = api.attempts_of_event(&wh, &event_id).await;
    log.reverse();
    assert_eq!(attempt_numbers(&log), [1, 2, 3, 4, 5, 6]);
    for attempt in &log {
        assert!(
            attempt["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("connection failed"),
            "{attempt}"
        );
    }
    // The waits between attempts follow WEBHOOKS_RETRY_DELAYS: never shorter than the
    // configured wait less 10 % jitter; longer only by polling (generous on a busy machine).
    for (i, pair) in log.windows(2).enumerate() {
        let gap = parse_time(&pair[1]["at"])
            .duration_since(parse_time(&pair[0]["at"]))
            .expect("attempts in order")
            .as_secs_f64();
        let nominal = RETRY_DELAYS[i] as f64;
        assert!(
            gap >= nominal * 0.9 - 0.05 && gap <= nominal * 1.1 + 10.0,
            "wait {} was {gap:.2}s, configured {nominal}s",
            i + 1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_event_id_posted_twice_is_delivered_once() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let wh = api.webhook_for(&receiver.url, &["user.registered"]).await;
    let event_id = unique("evt");
    let event = json!({"id": event_id, "type": "user.registered", "data": {"id": "usr_1"}});
    let first = api.post_event(event.clone()).await;
    let second = api.post_event(event).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_eq!(second.status, 202, "{}", second.text);
    assert_eq!(first.json, second.json, "same answer for the same event id");

    api.wait_for_event(&wh, &event_id, &["succeeded"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.requests_for(&event_id).len(), 1);

    // Reusing the id for different content is a conflict, not a silent success.
    let clash = api
        .post_event(json!({"id": event_id, "type": "user.registered", "data": {"id": "usr_2"}}))
        .await;
    clash.assert_problem(409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_webhook_gets_no_deliveries() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let created = api
        .create_paused_webhook(&unique("paused"), &receiver.url, &["withdrawal.paid"])
        .await;
    assert_eq!(created.json["status"], "paused");
    let wh = created.id.as_str();
    let event_id = api.post("withdrawal.paid", json!({"id": "wdr_1"})).await.id;
    api.delivery(wh, &delivery_id(&event_id, wh).await)
        .await
        .assert_problem(404);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(receiver.requests_for(&event_id).is_empty());
    assert!(api.attempts(wh).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_nobody_subscribes_to_is_accepted_with_no_deliveries() {
    let api = Api::new();
    let answer = api
        .post_event(json!({"type": "competition.ended", "data": {"id": "cmp_1"}}))
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.json["deliveries"], 0);
    assert!(answer.json["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("evt_")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_reaches_the_receiver_byte_for_byte() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let wh = api.webhook_for(&receiver.url, &["order.completed"]).await;
    // Numbers a parse-and-print would rewrite (1.2345678901234568e+22, 1000000000000000.0),
    // and the platform's own spacing.
    let data =
        r#"{"id": "ord_big", "ticket": 12345678901234567890123, "total": 1e15, "rate": 0.10}"#;
    let event_id = unique("evt-bytes");
    let body = format!(r#"{{"id":"{event_id}","type":"order.completed","data":{data}}}"#);
    let answer = api.post_event_bytes(body.into_bytes()).await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    api.wait_for_state(
        &wh,
        &delivery_id(&event_id, &wh).await,
        &["succeeded"],
        WAIT,
    )
    .await;
    let requests = receiver.requests_for(&event_id);
    let received = String::from_utf8(requests[0].body.to_vec()).expect("UTF-8");
    assert!(
        received.ends_with(&format!(r#","data":{data}}}"#)),
        "data altered on the way: {received}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_carrying_its_body_is_delivered_without_reading_the_event() {
    use webhooks_shared::domain::ids;
    use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef};
    let h = integration_tests::Harness::get();
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let wh = api
        .webhook_for(&receiver.url, &["competition.created"])
        .await;
    // Fan-out puts a small event's body in the message; this event was never stored, so only
    // the message can have given it.
    let event_id = unique("evt-unstored");
    let body = json!({"id": event_id, "type": "competition.created", "data": {"n": 1.50}})
        .to_string()
        .replace("1.5", "1.50");
    let delivery = DeliveryRef {
        delivery_id: ids::new_manual_delivery_id(),
        webhook_id: wh.clone().into(),
        event_id: event_id.clone().into(),
        event_type: "competition.created".into(),
        resource_id: None,
        manual: false,
    };
    let message = DeliveryMessage::with_body(
        delivery.clone(),
        webhooks_shared::domain::clock::Timestamp::now(),
        &body,
    );
    assert!(message.body.is_some());
    h.adapters(&h.config(&[]))
        .await
        .queue
        .send(&[message])
        .await
        .expect("queue the delivery");

    let done = api
        .wait_for_state(&wh, delivery.delivery_id.as_str(), &["succeeded"], WAIT)
        .await;
    assert_eq!(done["attempts"], 1);
    let got = receiver.requests_for(&event_id);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, body.as_bytes(), "byte for byte");
}
