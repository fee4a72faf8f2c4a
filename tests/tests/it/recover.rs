//! Recovery is complete and resumable (issue 9, defect 3): deliveries written by a call that
//! stopped half-way are queued by the next call, a window larger than one call continues
//! from a cursor, and the answer says how many deliveries were found and queued.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use integration_tests::api::Answer;
use integration_tests::{delivery_id, Api, Harness, Receiver, Reply, WAIT};
use serde_json::{json, Value};
use webhooks_shared::domain::clock::{rfc3339_millis, Timestamp};
use webhooks_shared::domain::ids::{self, DeliveryId};
use webhooks_shared::domain::model::{DeliveryRecord, DeliveryRef};

/// Other tests (these three included) may post this type too, and their events then fail at
/// this file's receivers as well: the counts expected are read from the webhook's own log.
const EVENT_TYPE: &str = "withdrawal.paid";

/// A webhook whose receiver fails every event's first request for good (400) and accepts
/// every later one; `count` events posted to it, each waited for until it failed.
struct Outage {
    api: Api,
    receiver: Receiver,
    webhook_id: String,
    events: Vec<String>,
    since: String,
    until: String,
}

async fn outage(count: usize) -> Outage {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(400), Reply::status(200)]).await;
    let webhook_id = api.webhook_for(&receiver.url, &[EVENT_TYPE]).await;
    let since = rfc3339_millis(SystemTime::now() - Duration::from_secs(1));
    let mut events = Vec::new();
    for _ in 0..count {
        events.push(api.post(EVENT_TYPE, json!({"id": "wdr_r"})).await.id);
    }
    for event_id in &events {
        api.wait_for_event(&webhook_id, event_id, &["permanently_failed"])
            .await;
    }
    let until = rfc3339_millis(SystemTime::now());
    Outage {
        api,
        receiver,
        webhook_id,
        events,
        since,
        until,
    }
}

impl Outage {
    fn window(&self) -> Value {
        json!({"since": self.since, "until": self.until})
    }

    /// The deliveries that failed in the window, as the log shows them: before any recovery
    /// every line of this webhook is a failure (its receiver answers 400 to first requests).
    /// Each with the time of the line that ended it.
    async fn failed_in_window(&self) -> HashMap<String, SystemTime> {
        // An attempt under way at `until` is logged once its (immediate) answer is in.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let lines = self.api.attempts(&self.webhook_id).await;
        lines
            .iter()
            .filter(|l| l["manual"] == false)
            .filter(|l| l["at"].as_str().is_some_and(|at| at <= self.until.as_str()))
            .filter_map(|l| {
                let at = Timestamp::parse(l["at"].as_str()?)?.system_time();
                Some((l["delivery_id"].as_str()?.to_owned(), at))
            })
            .collect()
    }

    /// Waits until the recovery delivery of each of `failed` succeeded, then checks that
    /// each of this test's events reached the receiver exactly twice (the original and one
    /// recovery), and that recovering the whole window again finds them all and queues none.
    async fn assert_recovered_once(&self, failed: &HashMap<String, SystemTime>) {
        for (original, ended_at) in failed {
            let recovery =
                ids::recovery_delivery_id(&DeliveryId::from(original.as_str()), *ended_at);
            self.api
                .wait_for_state(&self.webhook_id, recovery.as_str(), &["succeeded"], WAIT)
                .await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        for event_id in &self.events {
            assert_eq!(
                self.receiver.requests_for(event_id).len(),
                2,
                "exactly once more for {event_id}"
            );
        }
        // A call may stop early (its time budget, on a loaded machine): follow its cursors.
        let mut request = self.window();
        let (mut found, mut queued) = (0, 0);
        for _ in 0..20 {
            let again = self.api.recover(&self.webhook_id, request.clone()).await;
            let (found_now, queued_now) = counts(&again);
            found += found_now;
            queued += queued_now;
            match again.json["next_cursor"].as_str() {
                Some(cursor) => request["cursor"] = json!(cursor),
                None => break,
            }
        }
        let expected = failed.len() as u64;
        assert_eq!(
            (found, queued),
            (expected, 0),
            "found all again, queued none"
        );
    }
}

/// `(found, queued)` of an accepted recover call (whose `deliveries` is `queued`).
fn counts(answer: &Answer) -> (u64, u64) {
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(
        answer.json["deliveries"], answer.json["queued"],
        "{}",
        answer.text
    );
    let count = |field: &str| {
        answer.json[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is a count: {}", answer.text))
    };
    (count("found"), count("queued"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_recovery_queues_deliveries_an_earlier_call_wrote_but_never_queued() {
    let outage = outage(1).await;
    let (api, id) = (&outage.api, outage.webhook_id.as_str());
    let original = DeliveryId::from(delivery_id(&outage.events[0], id).await);

    // What a recovery that timed out between writing and queueing left behind: the recovery
    // delivery item, with no message in the queue and no attempt.
    let h = Harness::get();
    let config = h.config(&[]);
    let store = h.adapters(&config).await.store;
    let line = store
        .attempts_of(&id.into(), &original)
        .await
        .expect("log")
        .pop()
        .expect("the failed attempt");
    let recovery_id = ids::recovery_delivery_id(&original, line.at.into());
    let left_behind = DeliveryRecord::new(
        DeliveryRef {
            delivery_id: recovery_id.clone(),
            manual: true,
            ..line.delivery
        },
        SystemTime::now(),
        config.retention,
    );
    assert!(store
        .put_delivery_if_new(&left_behind)
        .await
        .expect("write"));

    let failed = outage.failed_in_window().await;
    let expected = failed.len() as u64;
    let retried = api.recover(id, outage.window()).await;
    assert_eq!(retried.status, 202, "{}", retried.text);
    // The delivery written but never queued is queued now, and reaches the receiver.
    let delivered = api
        .wait_for_state(id, recovery_id.as_str(), &["succeeded"], WAIT)
        .await;
    assert_eq!(delivered["manual"], true);
    assert_eq!(counts(&retried), (expected, expected), "{}", retried.text);
    assert_eq!(retried.json["next_cursor"], Value::Null, "{}", retried.text);
    // Under way now (it has an attempt): found again, queued no more.
    outage.assert_recovered_once(&failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_larger_than_one_call_continues_from_its_cursor_each_delivery_once() {
    let outage = outage(5).await;
    let (api, id) = (&outage.api, outage.webhook_id.as_str());
    let failed = outage.failed_in_window().await;
    let expected = failed.len() as u64;

    // Two log lines per call: the first call cannot finish the window.
    let mut request = json!({"since": outage.since, "until": outage.until, "limit": 2});
    let first = api.recover(id, request.clone()).await;
    assert_eq!(counts(&first), (2, 2), "{}", first.text);
    assert!(
        first.json["next_cursor"].is_string(),
        "more remains: {}",
        first.text
    );

    let (mut found, mut queued, mut calls) = (2, 2, 1);
    let mut answer = first;
    while let Some(cursor) = answer.json["next_cursor"].as_str() {
        calls += 1;
        assert!(calls <= 20, "the cursors should end: {}", answer.text);
        request["cursor"] = json!(cursor);
        answer = api.recover(id, request.clone()).await;
        let (found_now, queued_now) = counts(&answer);
        assert!(found_now <= 2, "{}", answer.text);
        found += found_now;
        queued += queued_now;
    }
    assert_eq!(found, expected, "every failed delivery found once");
    assert_eq!(queued, expected, "every failed delivery queued once");
    outage.assert_recovered_once(&failed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cursors_and_limits_are_refused_saying_what_to_fix() {
    let outage = outage(2).await;
    let (api, id) = (&outage.api, outage.webhook_id.as_str());
    let first = api
        .recover(
            id,
            json!({"since": outage.since, "until": outage.until, "limit": 1}),
        )
        .await;
    counts(&first);
    let cursor = first.json["next_cursor"].as_str().expect("a cursor");

    for garbage in ["", "not a cursor!", "bm90IGEgcG9zaXRpb24"] {
        let answer = api
            .recover(id, json!({"since": outage.since, "cursor": garbage}))
            .await;
        answer.assert_problem(400);
        assert!(answer.detail().contains("cursor"), "{}", answer.text);
    }
    // A cursor belongs to the window it came from.
    let elsewhere = json!({"since": outage.until, "cursor": cursor});
    let answer = api.recover(id, elsewhere).await;
    answer.assert_problem(400);
    assert!(answer.detail().contains("since"), "{}", answer.text);

    for limit in [json!(0), json!(1001), json!("ten")] {
        let answer = api
            .recover(id, json!({"since": outage.since, "limit": limit}))
            .await;
        assert!(
            matches!(answer.status, 400 | 422),
            "limit {limit}: {}",
            answer.text
        );
        answer.assert_problem(answer.status);
    }
    let answer = api
        .recover(id, json!({"since": outage.since, "limit": 0}))
        .await;
    assert_eq!(answer.json["field"], "limit", "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_made_before_the_window_that_ended_in_it_is_recovered() {
    // The log is kept in delivery order; recover looks for deliveries by when they ended.
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(500)]).await;
    let id = api.webhook_for(&receiver.url, &[EVENT_TYPE]).await;
    let posted_at = rfc3339_millis(SystemTime::now());
    let event_id = api.post(EVENT_TYPE, json!({"id": "wdr_late"})).await.id;
    api.wait_for_event(&id, &event_id, &["retrying"]).await;
    // Made and first tried before the window starts; its schedule ends inside it.
    let since = rfc3339_millis(SystemTime::now());
    let ended = api
        .wait_for_event(&id, &event_id, &["permanently_failed"])
        .await;
    assert_eq!(ended["attempts"], 6);
    let until = rfc3339_millis(SystemTime::now());
    // Other tests' events of this type fail here too: what ended in a window is read from
    // the log (a line is written once its answer is in).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ended_in = |since: &str, until: &str, log: &[Value]| {
        log.iter()
            .filter(|l| l["attempt"] == 6 && l["manual"] == false)
            .filter(|l| {
                l["at"]
                    .as_str()
                    .is_some_and(|at| since <= at && at <= until)
            })
            .count() as u64
    };
    let log = api.attempts(&id).await;
    let expected = ended_in(&since, &until, &log);
    assert!(expected >= 1, "{log:?}");

    let answer = api
        .recover(&id, json!({"since": since, "until": until}))
        .await;
    assert_eq!(counts(&answer), (expected, expected), "{}", answer.text);
    let log = api.attempts_of_event(&id, &event_id).await;
    let last = &log[0];
    assert_eq!(last["attempt"], 6, "newest first: {log:?}");
    let ended_at = Timestamp::parse(last["at"].as_str().expect("at"))
        .expect("time")
        .system_time();
    let original = DeliveryId::from(last["delivery_id"].as_str().expect("delivery id"));
    let recovery = ids::recovery_delivery_id(&original, ended_at);
    let made = api.delivery(&id, recovery.as_str()).await;
    assert_eq!(made.status, 200, "{}", made.text);
    assert_eq!(made.json["manual"], true);

    // The window in which it was made and first tried, but did not end, does not find it.
    let before = api
        .recover(&id, json!({"since": posted_at, "until": since}))
        .await;
    let expected = ended_in(&posted_at, &since, &log);
    assert_eq!(counts(&before).0, expected, "{}", before.text);
}
