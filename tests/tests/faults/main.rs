//! The pipeline under faults: short runs of each kind (`make chaos` makes long ones). A test
//! process of its own, because the fault proxy fails calls of every handler: the other
//! integration tests must not see its faults. Runs take turns (one proxy setting at a time).

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::chaos::{self, Outcome, Plan};
use integration_tests::fault_proxy::Faults;
use integration_tests::functions::{deliver_from, deliver_role_for};
use integration_tests::lambda_events::{received_record, sqs_event_json};
use integration_tests::receiver::Flaky;
use integration_tests::runtime_api::Outcome as RuntimeOutcome;
use integration_tests::{eventually, unique, Api, Harness, WAIT};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio::sync::Mutex;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef, DeliveryState, EventRecord};

/// An event type the chaos runs do not post.
const TOPIC: &str = "winner.prize_choice_made";

static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn run(plan: Plan) -> Outcome {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let outcome = chaos::run(&plan).await;
    eprintln!("{}", serde_json::to_string(&outcome).unwrap_or_default());
    outcome
}

fn plan(fault: &str, faults: Faults) -> Plan {
    Plan {
        fault: fault.into(),
        events: 20,
        webhooks: 2,
        faults,
        // Some retries, and some permanent failures so alerts are made under faults too. Which
        // deliveries fail for good is drawn from their (new) ids: with a quarter of 40, a run
        // without any is a 1-in-100,000 chance (with a tenth it was 1 in 70, and it happened).
        receivers: Some(Flaky {
            seed: 3,
            fail: 0.1,
            hang: 0.0,
            reset: 0.0,
            hang_for: Duration::ZERO,
            dead: 0.25,
        }),
        duplicate_messages: false,
        seed: 7,
        deadline: Duration::from_secs(150),
    }
}

/// Every delivery ended, some of them in failure (so the alert path ran).
fn assert_all_ended_some_failed(outcome: &Outcome) {
    assert!(
        outcome.permanently_failed > 0,
        "the alert path ran: {outcome:?}"
    );
    assert_eq!(
        outcome.succeeded + outcome.permanently_failed,
        outcome.deliveries,
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_before_the_call_lose_nothing() {
    let outcome = run(plan(
        "DynamoDB and SQS calls fail before taking effect",
        Faults {
            rate: 0.25,
            after_share: 0.0,
        },
    ))
    .await;
    outcome.assert_faults_injected();
    outcome.assert_clean();
    assert_all_ended_some_failed(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_after_the_call_took_effect_send_nothing_twice() {
    let outcome = run(plan(
        "DynamoDB and SQS calls fail after taking effect",
        Faults {
            rate: 0.25,
            after_share: 1.0,
        },
    ))
    .await;
    outcome.assert_faults_injected();
    outcome.assert_clean();
    assert_all_ended_some_failed(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_messages_send_each_attempt_once() {
    let outcome = run(Plan {
        duplicate_messages: true,
        ..plan("copies of every delivery message", Faults::NONE)
    })
    .await;
    outcome.assert_clean();
    assert_all_ended_some_failed(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_receivers_are_retried_and_logged_as_they_answered() {
    let outcome = run(Plan {
        receivers: Some(Flaky {
            seed: 11,
            fail: 0.3,
            hang: 0.03,
            reset: 0.07,
            hang_for: Duration::from_secs(11),
            dead: 0.25,
        }),
        ..plan(
            "receivers fail 30 %, hang 3 %, reset 7 %; 25 % always fail",
            Faults::NONE,
        )
    })
    .await;
    outcome.assert_clean();
    assert_all_ended_some_failed(&outcome);
}

/// The real deliver binary, killed (SIGKILL) at random points of its batches, as a Lambda
/// container that runs out of time or memory is: the messages come back after their
/// visibility timeout and a fresh process finishes them. Nothing is lost, no attempt is
/// logged twice, every permanent failure is alerted once. (Inside Lambda the binary cannot
/// reach a loopback receiver, so its deliveries here end without a request: blocked targets
/// fail for good, a paused webhook's deliveries are cancelled.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliver_killed_mid_batch_loses_nothing() {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let h = Harness::get();
    let api = Api::new();
    let store = h.adapters(&h.config(&[])).await.store;
    let blocked_name = unique("killed-blocked");
    let blocked = api
        .create_webhook(&blocked_name, "https://127.0.0.1:9/h", &[TOPIC])
        .await
        .id;
    let paused = api
        .paused_webhook_for("https://paused.example.com/h", &[TOPIC])
        .await
        .to_string();
    let mut messages = Vec::new();
    let received_at = Timestamp::parse("2026-11-27T03:00:00.000Z").expect("time");
    for n in 0..10 {
        let event_id = unique("evt-killed");
        let payload = json!({"id": event_id, "type": TOPIC, "created_at": "2026-11-27T03:00:00Z", "data": {"id": format!("win_{n}")}}).to_string();
        store
            .put_event_if_new(&EventRecord {
                id: event_id.clone().into(),
                event_type: TOPIC.into(),
                resource_id: Some(format!("win_{n}")),
                payload,
                fingerprint: "test".into(),
                received_at,
                webhooks: None,
                deliveries: Some(2),
                webhook_pages: 0,
                expires_at: 0,
            })
            .await
            .expect("store event");
        for webhook in [&blocked, &paused] {
            messages.push(DeliveryMessage {
                delivery: DeliveryRef {
                    delivery_id: ids::delivery_id(
                        &event_id.clone().into(),
                        &webhook.clone().into(),
                        received_at.into(),
                    ),
                    webhook_id: webhook.clone().into(),
                    event_id: event_id.clone().into(),
                    event_type: TOPIC.into(),
                    resource_id: Some(format!("win_{n}")),
                    manual: false,
                },
                created_at: None,
                body: None,
                fresh: false,
            });
        }
    }
    let queue = h.own_fifo_queue("killed", 2).await;
    let config = h.config(&[("DELIVERY_QUEUE_URL", &queue.url)]);
    h.adapters(&config)
        .await
        .queue
        .send(&messages)
        .await
        .expect("queue deliveries");
    let credentials = deliver_role_for(&queue, None).await;
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);

    // The test is the event source: it receives batches, invokes a fresh process with each,
    // and either kills it after a random moment or deletes what it answered done.
    let mut rng = StdRng::seed_from_u64(5);
    let (mut kills, mut kills_mid_batch) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(180);
    // Done when the queue holds nothing, in flight included: a message whose process was
    // killed after its line was written but before its alert was queued is still owed a run
    // (its line alone says nothing of the alert).
    let drained = || async {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&queue.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes")
            .attributes
            .unwrap_or_default();
        assert_eq!(attributes.len(), 2, "{attributes:?}");
        attributes.values().all(|count| count == "0")
    };
    while Instant::now() < deadline {
        let received = queue.receive(&sqs, 1).await;
        if received.is_empty() {
            if drained().await {
                break;
            }
            continue;
        }
        let mut function = deliver_from(&queue, credentials.clone()).await;
        let records: Vec<_> = received
            .iter()
            .map(|m| received_record(m, &queue.arn))
            .collect();
        function.runtime.invoke(sqs_event_json(records));
        if kills < 12 && rng.gen_bool(0.6) {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(50..600))).await;
            let _ = function.child.start_kill();
            let _ = function.child.wait().await;
            kills += 1;
            if function.output().contains("delivery_id") {
                kills_mid_batch += 1;
            }
            continue;
        }
        let answer = match function.runtime.outcome(Duration::from_secs(60)).await {
            RuntimeOutcome::Response { body, .. } => body,
            other => panic!("deliver failed: {other:?}\n{}", function.output()),
        };
        let kept: Vec<&str> = answer["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str())
            .collect();
        for m in &received {
            if !kept.contains(&m.message_id().unwrap_or_default()) {
                sqs.delete_message()
                    .queue_url(&queue.url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
    assert!(
        kills_mid_batch > 0,
        "no kill landed mid-batch ({kills} kills)"
    );

    for m in &messages {
        let attempts = store
            .attempts_of(&m.delivery.webhook_id, &m.delivery.delivery_id)
            .await
            .expect("attempts");
        assert_eq!(attempts.len(), 1, "one line, once: {attempts:?}");
        let expected = if m.delivery.webhook_id.as_str() == blocked {
            DeliveryState::PermanentlyFailed
        } else {
            DeliveryState::Cancelled
        };
        assert_eq!(attempts[0].delivery_state, expected, "{attempts:?}");
    }
    // Each permanent failure is counted in exactly one email (one digest, or more when the
    // failures spread past the gathering time on a loaded machine).
    let failed = messages
        .iter()
        .filter(|m| m.delivery.webhook_id.as_str() == blocked)
        .count();
    eventually("the alerts about the blocked webhook", WAIT, || async {
        let emails = h.emails_about(&blocked_name).await;
        (emails.iter().map(chaos::counted_in).sum::<usize>() >= failed).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let emails = h.emails_about(&blocked_name).await;
    assert_eq!(
        emails.iter().map(chaos::counted_in).sum::<usize>(),
        failed,
        "{emails:?}"
    );
    for m in messages
        .iter()
        .filter(|m| m.delivery.webhook_id.as_str() == blocked)
    {
        let listing = emails
            .iter()
            .filter(|e| {
                e["body"]
                    .as_str()
                    .unwrap_or_default()
                    .contains(m.delivery.event_id.as_str())
            })
            .count();
        assert_eq!(listing, 1, "{} in {emails:?}", m.delivery.event_id);
    }
}
