//! The circuit breaker: an endpoint that stops answering is not sent to while its circuit is
//! open (its due attempts are logged as not sent, and why), one test request goes per
//! interval, and an answer closes it again.

use std::time::Duration;

use integration_tests::receiver::closed_port;
use integration_tests::{eventually, unique, Api, Receiver, Reply, WAIT};
use serde_json::{json, Value};
use webhooks_shared::domain::circuit::{self, AWAITING_AFTER, MAX_IN_FLIGHT, OPEN_AFTER};

/// Posts `n` events of `event_type`; their ids.
async fn post_events(api: &Api, event_type: &str, n: u32) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(api.post(event_type, json!({"id": "wdr_1"})).await.id);
    }
    ids
}

fn not_sent(line: &Value) -> bool {
    line["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("not sent: the endpoint's circuit is open"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_stops_answering_is_not_sent_to_while_its_circuit_is_open() {
    let api = Api::new();
    let dead = format!("https://127.0.0.1:{}/hook", closed_port());
    let wh = api.webhook_for(&dead, &["withdrawal.requested"]).await;
    let fresh = api.webhook(&wh).await;
    assert_eq!(
        fresh.json["circuit"],
        json!({"state": "closed", "failures_in_row": 0, "opened_at": null,
               "next_probe_at": null, "last_error": null}),
        "{}",
        fresh.text
    );
    post_events(&api, "withdrawal.requested", OPEN_AFTER).await;

    let open = eventually("the circuit to open", WAIT, || async {
        let webhook = api.webhook(&wh).await;
        (webhook.json["circuit"]["state"] == "open").then_some(webhook.json)
    })
    .await;
    let circuit = &open["circuit"];
    assert!(
        circuit["failures_in_row"].as_u64() >= Some(u64::from(OPEN_AFTER)),
        "{open}"
    );
    assert!(
        circuit["opened_at"].is_string() && circuit["next_probe_at"].is_string(),
        "{open}"
    );
    assert!(circuit["last_error"].is_string(), "{open}");

    // Attempts due while it is open are logged, not sent, and say why.
    let held = eventually("an attempt not sent", WAIT, || async {
        api.attempts(&wh).await.into_iter().find(not_sent)
    })
    .await;
    assert_eq!(held["outcome"], "failed", "{held}");
    assert_eq!(held["response_status"], Value::Null, "{held}");
    let line = api.attempt(&wh, held["id"].as_str().expect("id")).await;
    assert_eq!(line.status, 200, "{}", line.text);
    assert_eq!(
        line.json["request"],
        Value::Null,
        "no request was made: {}",
        line.text
    );
    assert_eq!(line.json["response"], Value::Null, "{}", line.text);

    // Pointed at another URL, it is another endpoint: closed at once, and delivered to.
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let moved = api.patch_webhook(&wh, json!({"url": receiver.url})).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json["circuit"]["state"], "closed", "{}", moved.text);
    assert_eq!(
        moved.json["circuit"]["failures_in_row"], 0,
        "{}",
        moved.text
    );
    let event = post_events(&api, "withdrawal.requested", 1).await.remove(0);
    api.wait_for_event(&wh, &event, &["succeeded"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_request_that_gets_an_answer_closes_the_circuit_and_no_attempt_is_sent_twice() {
    let api = Api::new();
    // Each event: its first request gets no answer (the connection is closed), later ones 200.
    let receiver = Receiver::start(vec![Reply::reset(), Reply::status(200)]).await;
    let wh = api.webhook_for(&receiver.url, &["withdrawal.paid"]).await;
    let events = post_events(&api, "withdrawal.paid", OPEN_AFTER).await;
    for event in &events {
        api.wait_for_event(&wh, event, &["succeeded"]).await;
    }
    let closed = eventually("the circuit to close", WAIT, || async {
        let webhook = api.webhook(&wh).await;
        (webhook.json["circuit"]["state"] == "closed"
            && webhook.json["circuit"]["failures_in_row"] == 0)
            .then_some(webhook.json)
    })
    .await;
    assert_eq!(closed["circuit"]["last_error"], Value::Null, "{closed}");
    // Every line that says it sent a request matches one the receiver got, and no more.
    for event in &events {
        let lines = api.attempts_of_event(&wh, event).await;
        let mut sent = 0;
        for line in &lines {
            let attempt = api.attempt(&wh, line["id"].as_str().expect("id")).await;
            if attempt.json["request"].is_null() {
                assert!(not_sent(line), "{line}");
            } else {
                sent += 1;
            }
        }
        assert_eq!(receiver.requests_for(event).len(), sent, "{lines:?}");
        assert_eq!(
            sent, 2,
            "one request without an answer, then one 200: {lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_stops_answering_holds_at_most_its_share_of_attempts_in_flight() {
    let api = Api::new();
    // Never answers within the 10 s timeout.
    let receiver = Receiver::start(vec![Reply::hang(Duration::from_secs(15))]).await;
    let wh = api.webhook_for(&receiver.url, &["user.registered"]).await;
    let first = api.post("user.registered", json!({"id": "usr_1"})).await.id;
    // Once its request has waited past AWAITING_AFTER, the endpoint counts as not answering.
    eventually("the first request", WAIT, || async {
        (!receiver.requests_for(&first).is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(AWAITING_AFTER + Duration::from_secs(1)).await;

    // Many more at once: each must take one of MAX_IN_FLIGHT slots to be sent.
    let more = MAX_IN_FLIGHT + 10;
    let events: Vec<Value> = (0..more)
        .map(|i| json!({"id": unique("evt-cap"), "type": "user.registered", "data": {"id": i}}))
        .collect();
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let posted = api.post_events_batch(events).await;
    assert_eq!(posted.status, 202, "{}", posted.text);

    let capped = eventually("an attempt not sent for want of a slot", WAIT, || async {
        api.attempts(&wh).await.into_iter().find(|line| {
            line["error"]
                .as_str()
                .is_some_and(|e| e == circuit::no_slot_reason())
        })
    })
    .await;
    assert_eq!(capped["attempt"], 1, "{capped}");
    // First attempts of the batch: each sent only in a slot, and a slot is held until its
    // attempt times out (10 s), longer than the batch took to come round.
    let sent_first: usize = ids
        .iter()
        .map(|id| {
            receiver
                .requests_for(id)
                .iter()
                .filter(|r| r.header("x-comps-attempt") == "1")
                .count()
        })
        .sum();
    assert!(
        sent_first <= MAX_IN_FLIGHT,
        "{sent_first} first attempts were sent with at most {MAX_IN_FLIGHT} slots"
    );
    // Stop the rest: what is left ends cancelled.
    assert_eq!(api.delete_webhook(&wh).await.status, 204);
}
