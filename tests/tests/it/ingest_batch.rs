//! `POST /api/v1/events/batch`: up to 100 events in one request, each with its own
//! idempotency, all validated before any is stored, answers in request order.
//!
//! Other tests' webhooks subscribe to the same types, so delivery counts are checked as "at
//! least ours" (and equal for events of one type within one batch: subscribers are read once
//! per type); what reaches a receiver is checked exactly, by this test's own event ids.

use std::time::Duration;

use integration_tests::{unique, Api, Harness, Receiver, Reply};
use reqwest::Method;
use serde_json::{json, Value};

/// The answers' `events`, as (id, deliveries) pairs (`None` for a conflict).
fn results(answer: &integration_tests::api::Answer) -> Vec<(String, Option<u64>)> {
    answer.json["events"]
        .as_array()
        .unwrap_or_else(|| panic!("no events in {}", answer.text))
        .iter()
        .map(|e| {
            (
                e["id"].as_str().expect("id").to_owned(),
                e["deliveries"].as_u64(),
            )
        })
        .collect()
}

fn event(id: &str, event_type: &str, data: Value) -> Value {
    json!({"id": id, "type": event_type, "data": data})
}

/// Asserts, after a pause long enough for a stray delivery to arrive, that the receiver got
/// nothing for any of `event_ids` and that the webhook's log has no line of them.
async fn assert_never_delivered(api: &Api, receiver: &Receiver, webhook: &str, event_ids: &[&str]) {
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in event_ids {
        assert!(
            receiver.requests_for(id).is_empty(),
            "{id} reached the receiver"
        );
        let lines = api.attempts_of_event(webhook, id).await;
        assert!(lines.is_empty(), "{id} was delivered: {lines:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reaches_the_receivers_with_answers_in_request_order() {
    let api = Api::new();
    let (both, orders) = (
        Receiver::start(vec![Reply::status(200)]).await,
        Receiver::start(vec![Reply::status(200)]).await,
    );
    let wh_both = api
        .webhook_for(&both.url, &["order.completed", "user.registered"])
        .await;
    let wh_orders = api.webhook_for(&orders.url, &["order.completed"]).await;

    let ids: Vec<String> = (0..4).map(|_| unique("evt-batch")).collect();
    let answer = api
        .post_events_batch(vec![
            event(&ids[0], "order.completed", json!({"id": 1, "n": "one"})),
            event(&ids[1], "user.registered", json!({"id": "usr_1"})),
            event(&ids[2], "competition.ended", json!({"id": "cmp_1"})),
            event(&ids[3], "order.completed", json!({"id": 2})),
            json!({"type": "user.registered", "data": {"id": "usr_2"}}),
        ])
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.content_type, "application/json");
    let got = results(&answer);
    assert_eq!(got.len(), 5, "{}", answer.text);
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(&got[i].0, id, "answers in request order: {}", answer.text);
    }
    let assigned = got[4].0.clone();
    assert!(assigned.starts_with("evt_"), "{}", answer.text);
    let count = |i: usize| got[i].1.unwrap_or_else(|| panic!("{}", answer.text));
    assert!(count(0) >= 2 && count(3) == count(0), "{}", answer.text);
    assert!(count(1) >= 1 && count(4) == count(1), "{}", answer.text);
    assert_eq!(count(2), 0, "no webhook subscribes to competition.ended");

    // Each event reaches each of its webhooks once.
    let to_both = [&ids[0], &ids[1], &ids[3], &assigned];
    for id in to_both {
        api.wait_for_event(&wh_both, id, &["succeeded"]).await;
    }
    for id in [&ids[0], &ids[3]] {
        api.wait_for_event(&wh_orders, id, &["succeeded"]).await;
    }
    for id in to_both {
        assert_eq!(both.requests_for(id).len(), 1, "{id}");
    }
    for id in [&ids[0], &ids[3]] {
        assert_eq!(orders.requests_for(id).len(), 1, "{id}");
    }
    let body: Value =
        serde_json::from_slice(&both.requests_for(&ids[0])[0].body).expect("JSON body");
    assert_eq!(body["type"], "order.completed");
    assert_eq!(body["data"], json!({"id": 1, "n": "one"}));
    let body: Value =
        serde_json::from_slice(&both.requests_for(&assigned)[0].body).expect("JSON body");
    assert_eq!(body["id"], assigned.as_str());
    assert_eq!(body["data"], json!({"id": "usr_2"}));
    assert_never_delivered(&api, &orders, &wh_orders, &[&ids[1], &ids[2], &assigned]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_batch_gets_the_same_answer_and_no_second_delivery() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let wh = api.webhook_for(&receiver.url, &["winner.drawn"]).await;
    let (a, b) = (unique("evt-resend"), unique("evt-resend"));
    // `a` twice, written differently: one event, both positions answered alike.
    let body = format!(
        r#"{{"events": [
            {{"id": "{a}", "type": "winner.drawn", "data": {{"id": 7, "prize": "car"}}}},
            {{"id": "{b}", "type": "winner.drawn", "data": {{"id": 8}}}},
            {{"id":"{a}","type":"winner.drawn","data":{{"id":7,"prize":"car"}}}}
        ]}}"#
    );
    let first = api.post_events_batch_bytes(body.clone().into_bytes()).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let got = results(&first);
    assert_eq!(
        got.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        [a.as_str(), b.as_str(), a.as_str()]
    );
    assert!(got[0].1.is_some_and(|n| n >= 1), "{}", first.text);
    assert_eq!(got[0], got[2]);
    for id in [&a, &b] {
        api.wait_for_event(&wh, id, &["succeeded"]).await;
    }

    let again = api.post_events_batch_bytes(body.into_bytes()).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.json, first.json, "a resend answers as the first time");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in [&a, &b] {
        assert_eq!(receiver.requests_for(id).len(), 1, "{id} delivered once");
        let delivery = api.wait_for_event(&wh, id, &["succeeded"]).await;
        assert_eq!(delivery["attempts"], 1, "{delivery}");
    }
    // A single post of one of them answers as the batch did.
    let single = api
        .post_event(event(&b, "winner.drawn", json!({"id": 8})))
        .await;
    assert_eq!(single.status, 202, "{}", single.text);
    assert_eq!(single.json, first.json["events"][1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_refuses_the_whole_batch_and_nothing_is_stored() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let wh = api.webhook_for(&receiver.url, &["order.refunded"]).await;
    let ids: Vec<String> = (0..4).map(|_| unique("evt-bad-batch")).collect();
    let good = |i: usize| event(&ids[i], "order.refunded", json!({"id": i}));
    let big = "x".repeat(256 * 1024);
    let cases: Vec<(Vec<Value>, u16, String)> = vec![
        (
            vec![good(0), good(1), event(&ids[2], "x", json!({})), good(3)],
            400,
            "events[2]: unknown event type \"x\"; known types: ".to_owned(),
        ),
        (
            vec![
                good(0),
                good(1),
                good(2),
                event(&ids[3], "order.refunded", json!([1])),
            ],
            400,
            "events[3]: data must be a JSON object".to_owned(),
        ),
        (
            vec![
                good(0),
                json!({"id": "no spaces allowed", "type": "order.refunded", "data": {}}),
            ],
            400,
            "events[1]: id must be".to_owned(),
        ),
        (
            vec![good(0), good(1), good(2), json!({"type": "order.refunded"})],
            400,
            "events[3]: request body is not valid: data: missing field `data`".to_owned(),
        ),
        (
            vec![
                good(0),
                good(1),
                good(2),
                event(&ids[1], "order.refunded", json!({"id": 99})),
            ],
            400,
            "events[3].id: repeats events[1].id with different content".to_owned(),
        ),
        (
            vec![
                good(0),
                event(&ids[1], "order.refunded", json!({"pad": big})),
                good(2),
            ],
            413,
            "events[1]: event body is ".to_owned(),
        ),
    ];
    for (events, status, start) in cases {
        let answer = api.post_events_batch(events).await;
        answer.assert_problem(status);
        assert!(
            answer.detail().starts_with(&start),
            "{start:?}: {}",
            answer.text
        );
        // The field names the event by its index, as the detail does.
        let index = start.split(':').next().unwrap_or_default();
        let index = index.split('.').next().unwrap_or_default();
        assert!(
            answer.json["field"]
                .as_str()
                .is_some_and(|field| field.starts_with(index)),
            "{start:?}: {}",
            answer.text
        );
    }

    // Over 4 MiB in all (each event under 256 KiB): 413 saying the limit.
    let pad = "y".repeat(200 * 1024);
    let heavy: Vec<Value> = (0..21)
        .map(|i| {
            event(
                &format!("{}-{i}", ids[0]),
                "order.refunded",
                json!({"pad": pad}),
            )
        })
        .collect();
    let answer = api.post_events_batch(heavy).await;
    answer.assert_problem(413);
    assert!(
        answer.detail().contains("4194304 bytes (4 MiB)"),
        "{}",
        answer.text
    );

    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut all = ids.clone();
    let heavy_ids: Vec<String> = (0..21).map(|i| format!("{}-{i}", ids[0])).collect();
    all.extend(heavy_ids.iter().map(String::as_str));
    assert_never_delivered(&api, &receiver, &wh, &all).await;
    let h = Harness::get();
    let store = h.adapters(&h.config(&[])).await.store;
    for id in &all {
        let stored = store.get_event(&(*id).into()).await.expect("read event");
        assert!(stored.is_none(), "{id} was stored");
    }

    // Once fixed, the same ids are new: accepted and delivered once each.
    let answer = api
        .post_events_batch(
            ids.iter()
                .map(|id| event(id, "order.refunded", json!({"id": 1})))
                .collect(),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    for id in &ids {
        api.wait_for_event(&wh, id, &["succeeded"]).await;
        assert_eq!(receiver.requests_for(id).len(), 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holds_1_to_100_events_in_an_object() {
    let api = Api::new();
    let prefix = unique("evt-count");
    let many = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                event(
                    &format!("{prefix}-{i}"),
                    "competition.ended",
                    json!({"id": i}),
                )
            })
            .collect()
    };
    let answer = api.post_events_batch(many(101)).await;
    answer.assert_problem(400);
    assert!(
        answer.detail().contains("the limit is 100"),
        "{}",
        answer.text
    );
    for (body, needle) in [
        (json!({"events": []}), "events is empty"),
        (json!({}), "events must be an array of 1 to 100 events"),
        (
            json!({"events": many(1)[0].clone()}),
            "events must be an array of 1 to 100 events",
        ),
        (
            json!({"events": many(1), "note": 1}),
            "unknown field `note`",
        ),
        (json!(many(2)), "must be a JSON object"),
    ] {
        let answer = api
            .post_events_batch_bytes(body.to_string().into_bytes())
            .await;
        answer.assert_problem(400);
        assert!(
            answer.detail().contains(needle),
            "{needle:?}: {}",
            answer.text
        );
    }
    // None of the 101 was stored: the first 100 are new now.
    let answer = api.post_events_batch(many(100)).await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    let got = results(&answer);
    assert_eq!(got.len(), 100);
    for (i, (id, deliveries)) in got.iter().enumerate() {
        assert_eq!(id, &format!("{prefix}-{i}"));
        assert_eq!(*deliveries, Some(0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_id_with_other_content_is_a_409_and_the_others_are_delivered() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let wh = api.webhook_for(&receiver.url, &["withdrawal.paid"]).await;
    let used = unique("evt-used");
    let first = api
        .post_event(event(
            &used,
            "withdrawal.paid",
            json!({"id": "wd_1", "amount": 10}),
        ))
        .await;
    assert_eq!(first.status, 202, "{}", first.text);
    api.wait_for_event(&wh, &used, &["succeeded"]).await;

    let (a, b) = (unique("evt-409"), unique("evt-409"));
    let batch = vec![
        event(&a, "withdrawal.paid", json!({"id": "wd_2"})),
        event(
            &used,
            "withdrawal.paid",
            json!({"id": "wd_1", "amount": 99}),
        ),
        event(&b, "withdrawal.paid", json!({"id": "wd_3"})),
        event(
            &used,
            "withdrawal.paid",
            json!({"id": "wd_1", "amount": 99}),
        ),
    ];
    let answer = api.post_events_batch(batch.clone()).await;
    answer.assert_problem(409);
    let detail = answer.detail();
    for needle in [
        "events[1]".to_owned(),
        "events[3]".to_owned(),
        format!("{used:?}"),
    ] {
        assert!(detail.contains(&needle), "{needle}: {}", answer.text);
    }
    assert!(
        !detail.contains("events[0]") && !detail.contains("events[2]"),
        "{detail}"
    );
    let events = answer.json["events"].as_array().expect("events").clone();
    assert_eq!(events.len(), 4, "{}", answer.text);
    assert_eq!(events[1], json!({"id": used, "conflict": true}));
    assert_eq!(events[3], events[1]);
    for (i, id) in [(0, &a), (2, &b)] {
        assert_eq!(events[i]["id"], id.as_str());
        assert!(
            events[i]["deliveries"].as_u64().is_some_and(|n| n >= 1),
            "{}",
            answer.text
        );
    }

    // The others are delivered; the used id keeps its first content, delivered once.
    for id in [&a, &b] {
        api.wait_for_event(&wh, id, &["succeeded"]).await;
    }
    // Resending is safe: the same answer, nothing delivered twice.
    let again = api.post_events_batch(batch).await;
    again.assert_problem(409);
    assert_eq!(again.json["events"], answer.json["events"]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for id in [&a, &b, &used] {
        assert_eq!(receiver.requests_for(id).len(), 1, "{id}");
    }
    let body: Value =
        serde_json::from_slice(&receiver.requests_for(&used)[0].body).expect("JSON body");
    assert_eq!(body["data"], json!({"id": "wd_1", "amount": 10}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_needs_the_ingest_token() {
    let api = Api::new();
    let h = Harness::get();
    let body = json!({"events": [event(&unique("evt-auth"), "competition.ended", json!({}))]});
    for token in [None, Some(h.admin_token.as_str()), Some("wrong")] {
        let answer = api
            .raw(
                Method::POST,
                "/api/v1/events/batch",
                token,
                Some(body.to_string().into_bytes()),
            )
            .await;
        answer.assert_problem(401);
    }
}
