//! The admin stories of the user guide: edit and pause, rotate, redeliver, recover.

use std::time::{Duration, SystemTime};

use integration_tests::delivery_id;
use integration_tests::{eventually, unique, Api, Harness, Receiver, Reply, WAIT};
use serde_json::{json, Value};

/// Signature check as the user guide's snippet does it (hex HMAC-SHA256 keyed by the secret).
fn signed_with(request: &integration_tests::receiver::Captured, secret: &str) -> bool {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(&request.body);
    mac.verify_slice(&hex::decode(request.header("x-comps-signature")).unwrap_or_default())
        .is_ok()
}

/// Posts an event of `event_type`; returns its id.
async fn post(api: &Api, event_type: &str) -> String {
    api.post(event_type, json!({"id": "r1"})).await.id
}

/// An event delivered at its first attempt.
struct Delivered {
    receiver: Receiver,
    webhook_id: String,
    event_id: String,
    delivery_id: String,
}

/// Posts an event of `event_type` to a webhook of its own, whose receiver answers 200, and
/// waits for the delivery to succeed.
async fn delivered_event(api: &Api, event_type: &str) -> Delivered {
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let webhook_id = api.webhook_for(&receiver.url, &[event_type]).await;
    let event_id = post(api, event_type).await;
    let dlv = delivery_id(&event_id, &webhook_id).await;
    api.wait_for_state(&webhook_id, &dlv, &["succeeded"], WAIT)
        .await;
    Delivered {
        receiver,
        webhook_id,
        event_id,
        delivery_id: dlv,
    }
}

/// A receiver that first answers 503 asking to be retried after `seconds`, then 200.
async fn busy_for(seconds: u64) -> Receiver {
    Receiver::start(vec![
        Reply::status(503).with_header("retry-after", &seconds.to_string()),
        Reply::status(200),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_edits_name_url_events_and_pause_state() {
    let api = Api::new();
    let created = api
        .create_webhook(
            &unique("edit"),
            "https://a.example.com/h",
            &["order.completed"],
        )
        .await;
    let id = created.id.as_str();
    let created = &created.json;
    let edited = api
        .patch_webhook(id, json!({"name": "Renamed", "url": "https://b.example.com/h", "events": ["user.registered", "order.refunded"]}))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json["name"], "Renamed");
    assert_eq!(edited.json["url"], "https://b.example.com/h");
    assert_eq!(
        edited.json["events"],
        json!(["user.registered", "order.refunded"])
    );
    assert_eq!(edited.json["status"], "active");
    assert_eq!(edited.json["secret_hint"], created["secret_hint"]);
    assert!(edited.json.get("secret").is_none());
    assert_ne!(edited.json["updated_at"], created["updated_at"]);

    let paused = api.patch_webhook(id, json!({"active": false})).await;
    assert_eq!(paused.json["status"], "paused");
    assert_eq!(api.webhook(id).await.json["status"], "paused");
    let resumed = api.patch_webhook(id, json!({"active": true})).await;
    assert_eq!(resumed.json["status"], "active");

    // Bad edits change nothing.
    for (webhook, changes, status) in [
        (id, json!({"url": "http://plain.example.com"}), 422),
        (id, json!({"events": ["nope.nope"]}), 422),
        (id, json!({"colour": "red"}), 400),
        (id, json!({}), 400),
        ("wh_nope", json!({"name": "x"}), 404),
    ] {
        api.patch_webhook(webhook, changes)
            .await
            .assert_problem(status);
    }
    let after = api.webhook(id).await;
    assert_eq!(after.json["url"], "https://b.example.com/h");
    assert_eq!(
        after.json["events"],
        json!(["user.registered", "order.refunded"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribed_events_stop_and_new_ones_start() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let id = api.webhook_for(&receiver.url, &["order.refunded"]).await;
    api.patch_webhook(&id, json!({"events": ["competition.created"]}))
        .await;
    let dropped = post(&api, "order.refunded").await;
    let added = post(&api, "competition.created").await;
    api.wait_for_event(&id, &added, &["succeeded"]).await;
    api.delivery(&id, &delivery_id(&dropped, &id).await)
        .await
        .assert_problem(404);
    assert!(receiver.requests_for(&dropped).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_mid_retry_cancels_and_nothing_is_sent_after() {
    let api = Api::new();
    // 503 asking for 5 s gives the test time to pause before attempt 2 is due.
    let receiver = busy_for(5).await;
    let id = api.webhook_for(&receiver.url, &["winner.drawn"]).await;
    let event_id = post(&api, "winner.drawn").await;
    let dlv = delivery_id(&event_id, &id).await;
    let retrying = api.wait_for_state(&id, &dlv, &["retrying"], WAIT).await;
    assert_eq!(retrying["attempts"], 1);
    let paused = api.patch_webhook(&id, json!({"active": false})).await;
    assert_eq!(paused.status, 200, "{}", paused.text);

    let cancelled = api.wait_for_state(&id, &dlv, &["cancelled"], WAIT).await;
    assert_eq!(cancelled["attempts"], 2);
    assert_eq!(
        receiver.requests_for(&event_id).len(),
        1,
        "nothing is sent after the pause"
    );
    let lines = api.attempts_of_event(&id, &event_id).await;
    assert_eq!(lines[0]["outcome"], "failed");
    assert_eq!(lines[0]["response_status"], Value::Null);
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("paused"),
        "{}",
        lines[0]
    );
    let line_id = lines[0]["id"].as_str().expect("id");
    let detail = api.attempt(&id, line_id).await;
    assert_eq!(detail.json["request"], Value::Null, "no request was made");

    // Redelivery of a paused webhook is refused; resuming does not revive the delivery.
    api.redeliver(&id, line_id).await.assert_problem(409);
    api.patch_webhook(&id, json!({"active": true})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(api.delivery(&id, &dlv).await.json["state"], "cancelled");
    assert_eq!(receiver.requests_for(&event_id).len(), 1);

    // The cancelled line is redeliverable once the webhook is active again.
    let again = api.redeliver(&id, line_id).await;
    assert_eq!(again.status, 202, "{}", again.text);
    let manual = again.json["delivery_id"].as_str().expect("delivery id");
    let done = api.wait_for_state(&id, manual, &["succeeded"], WAIT).await;
    assert_eq!(done["manual"], true);
    assert_eq!(receiver.requests_for(&event_id).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_secret_signs_the_next_attempt_with_the_new_one_only() {
    let api = Api::new();
    let receiver = busy_for(4).await;
    let created = api
        .create_webhook(&unique("rotate"), &receiver.url, &["user.registered"])
        .await;
    let (id, old_secret) = (created.id.as_str(), created.secret.as_str());
    let event_id = post(&api, "user.registered").await;
    let dlv = delivery_id(&event_id, id).await;
    api.wait_for_state(id, &dlv, &["retrying"], WAIT).await;

    let rotated = api.rotate_secret(id).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json["secret"]
        .as_str()
        .expect("new secret shown once")
        .to_owned();
    assert_ne!(new_secret, old_secret);
    assert!(new_secret
        .ends_with(&rotated.json["secret_hint"].as_str().expect("hint")["whsec_…".len()..]));
    let shown = api.webhook(id).await;
    assert!(!shown.text.contains(&new_secret) && !shown.text.contains(old_secret));

    api.wait_for_state(id, &dlv, &["succeeded"], WAIT).await;
    let requests = receiver.requests_for(&event_id);
    assert_eq!(requests.len(), 2);
    assert!(signed_with(&requests[0], old_secret));
    assert!(
        !signed_with(&requests[1], old_secret),
        "the old secret stops signing at once"
    );
    assert!(signed_with(&requests[1], &new_secret));

    api.rotate_secret("wh_nope").await.assert_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivery_sends_the_same_bytes_and_event_id_again() {
    let api = Api::new();
    let Delivered {
        receiver,
        webhook_id: id,
        event_id,
        delivery_id: dlv,
    } = delivered_event(&api, "order.completed").await;
    let line = api.attempts_of_event(&id, &event_id).await.remove(0);
    let line_id = line["id"].as_str().expect("id");

    let answer = api.redeliver(&id, line_id).await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    let manual = answer.json["delivery_id"].as_str().expect("delivery id");
    assert_ne!(manual, dlv);
    let delivered = api.wait_for_state(&id, manual, &["succeeded"], WAIT).await;
    assert_eq!(delivered["manual"], true);
    assert_eq!(delivered["event_id"], event_id.as_str());

    let requests = receiver.requests_for(&event_id);
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "byte-identical body");
    assert_eq!(requests[1].header("x-comps-event-id"), event_id);
    assert_eq!(requests[1].header("x-comps-delivery"), manual);
    assert_eq!(requests[1].header("x-comps-attempt"), "1");
    let lines = api.attempts_of_event(&id, &event_id).await;
    assert_eq!(lines[0]["manual"], true);
    assert_eq!(lines[1]["manual"], false);

    api.redeliver(&id, "dlv_nope.1").await.assert_problem(404);
    api.redeliver("wh_nope", line_id).await.assert_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_after_an_outage_delivers_each_failure_exactly_once() {
    let api = Api::new();
    // The outage: every event's first request gets a 400 (a permanent failure), later ones 200.
    let receiver = Receiver::start(vec![Reply::status(400), Reply::status(200)]).await;
    let id = api
        .webhook_for(&receiver.url, &["withdrawal.requested"])
        .await;
    let since =
        webhooks_shared::domain::clock::rfc3339_millis(SystemTime::now() - Duration::from_secs(1));
    let mut events = Vec::new();
    for _ in 0..3 {
        let event_id = post(&api, "withdrawal.requested").await;
        api.wait_for_event(&id, &event_id, &["permanently_failed"])
            .await;
        events.push(event_id);
    }
    // A fixed window: other tests' events of this type may fail here later, outside it.
    let until = webhooks_shared::domain::clock::rfc3339_millis(SystemTime::now());
    let window = json!({"since": since, "until": until});
    let first = api.recover(&id, window.clone()).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert!(
        first.json["deliveries"].as_u64().unwrap_or(0) >= 3,
        "{}",
        first.text
    );
    // Recovering the same window again finds the same deliveries and delivers none of them
    // twice (it may send again one not attempted yet: the queue drops such a copy).
    let second = api.recover(&id, window).await;
    assert_eq!(second.status, 202, "{}", second.text);
    assert_eq!(second.json["found"], first.json["found"], "{}", second.text);

    for event_id in &events {
        eventually("the recovered delivery", WAIT, || async {
            (receiver.requests_for(event_id).len() == 2).then_some(())
        })
        .await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    for event_id in &events {
        assert_eq!(
            receiver.requests_for(event_id).len(),
            2,
            "exactly once more for {event_id}"
        );
        let lines = api.attempts_of_event(&id, event_id).await;
        assert_eq!(lines[0]["outcome"], "succeeded");
        assert_eq!(lines[0]["manual"], true);
    }

    // Bad windows are refused, naming the field.
    let bad = api.recover(&id, json!({"since": "last week"})).await;
    bad.assert_problem(422);
    assert_eq!(bad.json["field"], "since");
    let backwards = json!({"since": since, "until": "2000-01-01T00:00:00Z"});
    api.recover(&id, backwards).await.assert_problem(422);
    // Valid RFC 3339 in the year 10000 once in UTC: it used to panic the handler.
    let beyond = json!({"since": since, "until": "9999-12-31T23:59:59-23:59"});
    let beyond = api.recover(&id, beyond).await;
    beyond.assert_problem(422);
    assert_eq!(beyond.json["field"], "until");
    api.recover(&id, json!({})).await.assert_problem(400);
    let unknown = api.recover("wh_nope", json!({"since": since})).await;
    unknown.assert_problem(404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_expire_after_the_retention_period_by_ttl() {
    use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
    let h = Harness::get();
    let api = Api::new();
    let Delivered {
        delivery_id: dlv,
        webhook_id,
        ..
    } = delivered_event(&api, "order.completed").await;

    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk_config().await);
    let table = h.env("ATTEMPTS_TABLE");
    let ttl = ddb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .expect("ttl");
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    let item = ddb
        .get_item()
        .table_name(&table)
        .key("webhook_id", AttributeValue::S(webhook_id.clone()))
        .key("line_key", AttributeValue::S(format!("{dlv}#0001")))
        .send()
        .await
        .expect("get attempt")
        .item
        .expect("attempt stored");
    let expires_at: i64 = item["expires_at"]
        .as_n()
        .expect("number")
        .parse()
        .expect("seconds");
    let days: i64 = h.env("ATTEMPT_RETENTION_DAYS").parse().expect("days");
    let now = webhooks_shared::domain::clock::unix_seconds(SystemTime::now());
    assert!(
        (expires_at - (now + days * 86_400)).abs() < 3_600,
        "expires {expires_at}, now {now}"
    );
}
