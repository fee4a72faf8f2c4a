//! Permanent failures reach a human: one SES email per webhook per window, the dead-letter
//! safety net, SES outages, and no secret in the logs.

use std::time::Duration;

use integration_tests::chaos::counted_in;
use integration_tests::delivery_id;
use integration_tests::lambda_events::{received_record, sqs_event, sqs_record};
use integration_tests::receiver::closed_port;
use integration_tests::{eventually, unique, Api, Harness, Receiver, Reply, WAIT};
use serde_json::{json, Value};
use webhooks_shared::domain::alerts::{AlertMessage, FailureNotice, FailureReason};
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef};

async fn emails_about(webhook_name: &str) -> Vec<Value> {
    Harness::get().emails_about(webhook_name).await
}

/// Waits for the first email about the webhook, then makes sure no second one follows.
async fn the_one_email_about(webhook_name: &str) -> Value {
    let email = eventually(
        &format!("an alert email about {webhook_name}"),
        WAIT,
        || async { emails_about(webhook_name).await.into_iter().next() },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(
        integration_tests::harness::ALERT_GATHER_SECS + 3,
    ))
    .await;
    assert_eq!(
        emails_about(webhook_name).await.len(),
        1,
        "one email per webhook per window"
    );
    email
}

/// Waits for the email about the webhook that lists `event_id`, then makes sure no second
/// email lists it. (Other tests' events of the same type may fail at this webhook too, and
/// their digests follow a window later: those are not this failure's.)
async fn the_one_email_listing(webhook_name: &str, event_id: &str) -> Value {
    let listing = |emails: Vec<Value>| -> Vec<Value> {
        emails
            .into_iter()
            .filter(|m| m["body"].as_str().is_some_and(|b| b.contains(event_id)))
            .collect()
    };
    let email = eventually(
        &format!("an alert email about {webhook_name} listing {event_id}"),
        WAIT,
        || async { listing(emails_about(webhook_name).await).into_iter().next() },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(
        integration_tests::harness::ALERT_WINDOW_SECS + 3,
    ))
    .await;
    assert_eq!(
        listing(emails_about(webhook_name).await).len(),
        1,
        "a failure is in one email"
    );
    email
}

/// The digest's subject counts `failures` permanent failures.
fn assert_counts(email: &Value, failures: usize) {
    let subject = email["subject"].as_str().expect("subject");
    assert!(
        subject.contains(&format!("{failures} deliveries permanently failed")),
        "{subject}"
    );
}

fn assert_addressed(email: &Value) {
    let h = Harness::get();
    assert_eq!(email["source"], h.env("WEBHOOKS_ALERT_FROM").as_str());
    let to: Vec<&str> = email["destinations"]["ToAddresses"]
        .as_array()
        .expect("recipients")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<String> = h
        .env("WEBHOOKS_ALERT_EMAILS")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(to, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_answer_sends_one_alert_email_with_the_details() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(400)]).await;
    let name = unique("alert-400");
    let id = api
        .create_webhook(&name, &receiver.url, &["order.completed"])
        .await
        .id;
    let event_id = api
        .post(
            "order.completed",
            json!({"id": "ord_4242", "note": "<fragile>"}),
        )
        .await
        .id;
    api.wait_for_event(&id, &event_id, &["permanently_failed"])
        .await;

    let email = the_one_email_listing(&name, &event_id).await;
    assert_addressed(&email);
    let subject = email["subject"].as_str().expect("subject");
    // Other tests' events of this type may fail here too and share the digest.
    assert!(
        subject.contains("permanently failed") && subject.contains(&name),
        "{subject}"
    );
    let body = email["body"].as_str().expect("body");
    for needle in [
        name.as_str(),
        receiver.url.as_str(),
        "order.completed",
        "ord_4242",
        event_id.as_str(),
        "HTTP 400",
        "answer not retried",
        "&lt;fragile&gt;",
    ] {
        assert!(
            body.contains(needle),
            "{needle:?} missing from the email:\n{body}"
        );
    }
    assert!(!body.contains("<fragile>"), "the payload is escaped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_schedule_sends_one_alert_email() {
    let api = Api::new();
    let name = unique("alert-exhausted");
    let url = format!("https://localhost:{}/hook", closed_port());
    let id = api
        .create_webhook(&name, &url, &["order.completed"])
        .await
        .id;
    let event_id = api.post("order.completed", json!({"id": 9})).await.id;
    let delivery = api
        .wait_for_event(&id, &event_id, &["permanently_failed"])
        .await;
    assert_eq!(delivery["attempts"], 6);

    let email = the_one_email_listing(&name, &event_id).await;
    let body = email["body"].as_str().expect("body");
    for needle in [
        event_id.as_str(),
        "connection failed",
        "all attempts failed",
        "<td>6</td>",
    ] {
        assert!(
            body.contains(needle),
            "{needle:?} missing from the email:\n{body}"
        );
    }
}

fn notice(webhook_id: &str, i: usize) -> FailureNotice {
    FailureNotice {
        webhook_id: webhook_id.into(),
        delivery_id: format!("dlv_storm_{webhook_id}_{i}").into(),
        event_id: format!("evt_storm_{i}").into(),
        event_type: "winner.drawn".into(),
        resource_id: Some(format!("win_{i}")),
        attempts: 1,
        response_status: Some(410),
        error: None,
        failed_at: webhooks_shared::domain::clock::Timestamp::now(),
        excerpt: "{}".into(),
        reason: FailureReason::NotRetryable,
    }
}

/// The digests about `webhook_name` once they count `failures` in all (a digest counts the
/// failures recorded until its window was claimed; any handled later are in the next one, a
/// window later), then a moment more, so a digest counting too many shows too.
async fn digests_counting(webhook_name: &str, failures: usize) -> Vec<Value> {
    use integration_tests::harness::{ALERT_GATHER_SECS, ALERT_WINDOW_SECS};
    let limit = Duration::from_secs(ALERT_GATHER_SECS + 2 * ALERT_WINDOW_SECS) + WAIT;
    eventually(
        &format!("digests about {webhook_name} counting {failures} failures"),
        limit,
        || async {
            let emails = emails_about(webhook_name).await;
            (emails.iter().map(counted_in).sum::<usize>() >= failures).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    emails_about(webhook_name).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_failures_is_one_digest_per_webhook() {
    let h = Harness::get();
    let api = Api::new();
    let (storm, other) = (unique("alert-storm"), unique("alert-other"));
    let (storm_url, other_url) = ("https://storm.example.com/h", "https://other.example.com/h");
    let storm_id = api
        .create_paused_webhook(&storm, storm_url, &["winner.drawn"])
        .await
        .id;
    let other_id = api
        .create_paused_webhook(&other, other_url, &["winner.drawn"])
        .await
        .id;
    // 120 failures of one webhook and 3 of another reach the alerts queue at once, as
    // `deliver` sends them (a repeated notice among them must not be counted twice).
    let alerts = h.adapters(&h.config(&[])).await.alerts;
    let mut messages: Vec<AlertMessage> = (0..120)
        .map(|i| AlertMessage::Failure(notice(&storm_id, i)))
        .collect();
    messages.push(AlertMessage::Failure(notice(&storm_id, 7)));
    messages.extend((0..3).map(|i| AlertMessage::Failure(notice(&other_id, i))));
    alerts.send(&messages).await.expect("queue notices");

    // Every failure is in exactly one digest. Usually one digest holds them all; on a loaded
    // machine the notices handled after its window was claimed make the next digest.
    let digests = digests_counting(&storm, 120).await;
    let counts: Vec<usize> = digests.iter().map(counted_in).collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        120,
        "counted once each: {counts:?}"
    );
    let bodies: Vec<&str> = digests
        .iter()
        .map(|d| d["body"].as_str().expect("body"))
        .collect();
    for i in 0..120 {
        let listed = bodies
            .iter()
            .filter(|b| b.contains(&format!("<code>evt_storm_{i}</code>")))
            .count();
        assert!(listed <= 1, "failure {i} is listed in {listed} digests");
    }
    // Each digest lists its first 50 and counts the rest.
    for (body, count) in bodies.iter().zip(&counts) {
        assert_eq!(body.matches("<tr><td>").count(), (*count).min(50), "{body}");
        if *count > 50 {
            assert!(body.contains(&format!("and {} more", count - 50)), "{body}");
            assert!(body.contains(&format!("/api/v1/webhooks/{storm_id}/attempts")));
        }
    }
    // …having loaded only the ones it lists.
    let logs = h.logs.text();
    let sent: Vec<Value> = logs
        .lines()
        .filter(|l| l.contains(storm_id.as_str()) && l.contains("alert digest sent"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    assert_eq!(sent.len(), digests.len(), "one log line per digest");
    for line in &sent {
        let (failures, listed) = (&line["fields"]["failures"], &line["fields"]["listed"]);
        assert!(
            listed
                .as_u64()
                .is_some_and(|l| l <= 50 && Some(l) <= failures.as_u64()),
            "a digest loads only the failures it lists: {line}"
        );
    }

    let email = the_one_email_about(&other).await;
    assert_counts(&email, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_ends_in_the_dead_letter_queue_failed_and_alerted() {
    let h = Harness::get();
    let api = Api::new();
    let name = unique("alert-poison");
    let event_type = "winner.prize_choice_made";
    // A receiver that answers: other tests post this type too, and their deliveries to an
    // endpoint that cannot be reached would open its circuit, so the poison message would be
    // deferred unsent instead of failing in deliver.
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let id = api
        .create_webhook(&name, &receiver.url, &[event_type])
        .await
        .id;
    // A delivery of an event that was never stored: `deliver` fails on it every time.
    let message = DeliveryMessage {
        delivery: DeliveryRef {
            delivery_id: format!("dlv_{}", ulid::Ulid::new().to_string().to_lowercase()).into(),
            webhook_id: id.clone().into(),
            event_id: unique("evt-missing").into(),
            event_type: event_type.into(),
            resource_id: None,
            manual: false,
        },
        created_at: None,
        body: None,
        fresh: false,
    };
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);
    sqs.send_message()
        .queue_url(h.env("DELIVERY_QUEUE_URL"))
        .message_body(serde_json::to_string(&message).expect("json"))
        // The deliveries queue is FIFO: a delivery is its own message group.
        .message_group_id(message.delivery.delivery_id.as_str())
        .message_deduplication_id(message.delivery.delivery_id.as_str())
        .send()
        .await
        .expect("send poison");

    let line = eventually(
        "the dead-lettered delivery to be marked failed",
        Duration::from_secs(120),
        || async {
            api.attempts(&id)
                .await
                .into_iter()
                .find(|a| a["delivery_id"] == message.delivery.delivery_id.as_str())
        },
    )
    .await;
    assert!(
        line["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("internal_error"),
        "{line}"
    );
    assert_eq!(line["outcome"], "failed");
    let email = the_one_email_about(&name).await;
    let body = email["body"].as_str().expect("body");
    assert!(
        body.contains(message.delivery.event_id.as_str()) && body.contains("internal error"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ses_outage_delays_the_alert_but_sends_it_exactly_once() {
    let h = Harness::get();
    let api = Api::new();
    let sdk = h.sdk_config().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let ses = aws_sdk_ses::Client::new(&sdk);
    // An alerter of its own: an unverified sender (SES refuses it) and a queue of its own.
    let queue = h.own_queue("alerts-outage").await;
    let queue_url = queue.url.clone();
    let sender = format!("{}@comps-webhooks.local", unique("sender"));
    let config = h.config(&[
        ("ALERT_QUEUE_URL", &queue_url),
        ("WEBHOOKS_ALERT_FROM", &sender),
        ("WEBHOOKS_ALERT_GATHER_SECONDS", "0"),
        ("WEBHOOKS_RETRY_DELAYS", "1"),
    ]);
    let alerter = alerter::wire(&sdk, &config);

    let name = unique("alert-outage");
    let id = api
        .create_paused_webhook(&name, "https://outage.example.com/h", &["user.registered"])
        .await
        .id;
    let notice_body = serde_json::to_string(&AlertMessage::Failure(notice(&id, 1))).expect("json");
    let failure = sqs_record("notice-1", None, &notice_body, &queue.arn);
    let answer = alerter.handle_batch(sqs_event(vec![failure.clone()])).await;
    assert!(answer.batch_item_failures.is_empty());

    let receive = || async {
        sqs.receive_message()
            .queue_url(&queue_url)
            .wait_time_seconds(2)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let flush = receive()
        .await
        .into_iter()
        .next()
        .expect("the digest flush was scheduled");
    assert!(flush.body().is_some_and(|b| b.contains("\"flush\"")));

    // SES refuses the unverified sender: the flush is kept for another try.
    let refused = alerter
        .handle_batch(sqs_event(vec![received_record(&flush, &queue.arn)]))
        .await;
    assert_eq!(refused.batch_item_failures.len(), 1, "kept for a retry");
    assert!(emails_about(&name).await.is_empty());

    // The sender gets verified; SQS hands the flush back; the email goes out, once.
    ses.verify_email_identity()
        .email_address(&sender)
        .send()
        .await
        .expect("verify");
    let again = eventually("the flush to come back", WAIT, || async {
        receive().await.into_iter().next()
    })
    .await;
    let sent = alerter
        .handle_batch(sqs_event(vec![received_record(&again, &queue.arn)]))
        .await;
    assert!(
        sent.batch_item_failures.is_empty(),
        "{:?}",
        sent.batch_item_failures
    );
    assert_eq!(emails_about(&name).await.len(), 1);
    // Done: the event source deletes it (else it would surface again once its visibility
    // timeout passes, which a loaded machine can reach before the end of this test).
    sqs.delete_message()
        .queue_url(&queue_url)
        .receipt_handle(again.receipt_handle().expect("receipt handle"))
        .send()
        .await
        .expect("delete");

    // A repeated flush and a repeated notice send nothing more.
    alerter
        .handle_batch(sqs_event(vec![
            received_record(&again, &queue.arn),
            failure,
        ]))
        .await;
    assert_eq!(
        emails_about(&name).await.len(),
        1,
        "never sent twice for the same failure"
    );
    assert!(
        receive().await.is_empty(),
        "no new digest was scheduled for a failure already sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_of_a_delivery_carry_its_ids_but_no_secret_signature_or_payload() {
    let h = Harness::get();
    let api = Api::new();
    // Carried in the event's payload, which must not be logged.
    let marker = unique("payload-marker");
    let receiver = Receiver::start(vec![Reply::status(500), Reply::status(200)]).await;
    let created = api
        .create_webhook(&unique("logs"), &receiver.url, &["order.refunded"])
        .await;
    let (id, secret) = (created.id.as_str(), created.secret.as_str());
    let event_id = api
        .post("order.refunded", json!({"id": "r9", "marker": marker}))
        .await
        .id;
    let dlv = delivery_id(&event_id, id).await;
    api.wait_for_state(id, &dlv, &["succeeded"], WAIT).await;

    let logs = h.logs.text();
    let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&dlv)).collect();
    assert!(lines.len() >= 2, "the delivery's log lines carry its ids");
    for line in &lines {
        assert!(line.contains(&event_id) && line.contains(id), "{line}");
    }
    assert!(!logs.contains(secret), "the secret is never logged");
    assert!(!logs.contains(&secret["whsec_".len()..]));
    for request in receiver.requests_for(&event_id) {
        assert!(
            !logs.contains(request.header("x-comps-signature")),
            "no signature in the logs"
        );
        let standard = request.header("webhook-signature");
        assert!(
            !logs.contains(&standard["v1,".len()..]),
            "no signature in the logs"
        );
    }
    assert!(!logs.contains(&marker), "no payload in the logs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_stuck_sending_is_taken_over_by_the_next_failure() {
    let h = Harness::get();
    let api = Api::new();
    let name = unique("alert-stuck");
    let id = api
        .create_paused_webhook(&name, "https://stuck.example.com/h", &["winner.drawn"])
        .await
        .id;
    let webhook_id = webhooks_shared::domain::ids::WebhookId::from(id.clone());
    let store = h.adapters(&h.config(&[])).await.store;
    // Two hours ago a window was claimed and its email never went out: SES kept refusing
    // until the flush message was dead-lettered. Its failure still waits.
    let now = webhooks_shared::domain::clock::unix_seconds(std::time::SystemTime::now());
    let stuck = webhooks_shared::domain::alerts::AlertWindow {
        webhook_id: webhook_id.clone(),
        window_id: "stuck".into(),
        state: webhooks_shared::domain::alerts::WindowState::Open,
        due_at: now - 7_200,
        last_email_at: None,
        ..Default::default()
    };
    assert!(matches!(
        store
            .record_alert_failure(&notice(&id, 1), now + 86_400)
            .await
            .expect("failure"),
        webhooks_shared::adapters::store::RecordedFailure::New(0)
    ));
    assert!(store.open_alert_window(&stuck).await.expect("open"));
    let claimed = store
        .claim_alert_window(&webhook_id, "stuck", "a-dead-flush")
        .await
        .expect("claim")
        .expect("claimed");
    assert_eq!(claimed.digest().map(|d| (d.from, d.to)), Some((0, 0)));

    // The next failure takes the window over: one email counts and lists both.
    let alerts = h.adapters(&h.config(&[])).await.alerts;
    alerts
        .send(&[AlertMessage::Failure(notice(&id, 2))])
        .await
        .expect("queue notice");
    let digests = digests_counting(&name, 2).await;
    assert_eq!(digests.iter().map(counted_in).collect::<Vec<_>>(), [2]);
    let body = digests[0]["body"].as_str().expect("body");
    for event in ["evt_storm_1", "evt_storm_2"] {
        assert!(body.contains(&format!("<code>{event}</code>")), "{body}");
    }
}
