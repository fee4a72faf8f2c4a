//! How a batch of delivery messages is settled once each is handled: which messages Lambda
//! deletes, which it keeps (partial batch failures), and for how long each kept one hides.
//! A message settles as its delivery's [`NextStep`] says ([`settle`]).

use std::collections::HashSet;
use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use webhooks_shared::adapters::queue::{BatchSettlement, Settle};
use webhooks_shared::domain::alerts::{AlertMessage, FailureNotice};
use webhooks_shared::domain::lifecycle::NextStep;
use webhooks_shared::domain::model::DeliveryMessage;

/// What became of one message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Its delivery's next step, and the alert owed if the delivery failed for good (boxed:
    /// most messages owe none). An error of ours is `RetryIn(internal_error_wait)`: after
    /// too many receives SQS moves the message to the dead-letter queue.
    Step {
        step: NextStep,
        notice: Option<Box<FailureNotice>>,
    },
    /// A later copy of a delivery already in the batch: deleted, not handled.
    Copy,
}

impl From<NextStep> for Handled {
    fn from(step: NextStep) -> Self {
        Handled::Step { step, notice: None }
    }
}

/// What the queue does with a message whose delivery took `step`: deletes it once the
/// delivery has ended, else hides it until the next attempt is due.
pub fn settle(step: NextStep) -> Settle {
    match step {
        NextStep::RetryIn(wait) => Settle::HideFor(wait),
        NextStep::Succeeded | NextStep::PermanentlyFailed | NextStep::Cancelled => Settle::Delete,
    }
}

/// The delivery a message carries; `None` if it has no body or not a delivery's.
pub fn read_message(message: &SqsMessage) -> Option<DeliveryMessage> {
    serde_json::from_str(message.body.as_deref()?).ok()
}

/// How often SQS has handed `message` out, this time included (`ApproximateReceiveCount`).
pub fn receive_count(message: &SqsMessage) -> Option<u32> {
    message
        .attributes
        .get("ApproximateReceiveCount")?
        .parse()
        .ok()
}

/// For each message, whether an earlier message of the batch carries the same delivery. A
/// FIFO queue hands out several messages of one group (one delivery) together, e.g. a
/// delivery's message and a copy sent again later; only the first is handled, the copies
/// are deleted, so no attempt is sent twice at once.
pub fn repeats(records: &[SqsMessage]) -> Vec<bool> {
    let mut seen = HashSet::new();
    records
        .iter()
        .map(|m| read_message(m).is_some_and(|d| !seen.insert(d.delivery.delivery_id)))
        .collect()
}

/// The failure notices a batch owes the alerter, in batch order, to queue in one send.
pub fn notices<'a>(handled: impl IntoIterator<Item = &'a Handled>) -> Vec<AlertMessage> {
    handled
        .into_iter()
        .filter_map(|h| match h {
            Handled::Step {
                notice: Some(notice),
                ..
            } => Some(AlertMessage::Failure(FailureNotice::clone(notice))),
            _ => None,
        })
        .collect()
}

/// The settlement of `records`, handled as `handled` (same order). If the notices were not
/// queued, the messages that owed one are kept as failed: their next receive finds the
/// delivery final and sends the notice again.
pub fn settlement(
    records: &[SqsMessage],
    handled: &[Handled],
    notices_queued: bool,
    internal_error_wait: Duration,
) -> BatchSettlement {
    let settles = handled.iter().map(|h| match h {
        Handled::Copy => Settle::Delete,
        Handled::Step {
            notice: Some(_), ..
        } if !notices_queued => settle(NextStep::RetryIn(internal_error_wait)),
        Handled::Step { step, .. } => settle(*step),
    });
    BatchSettlement::plan(records, settles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use serde_json::json;
    use webhooks_shared::adapters::queue::Hide;
    use webhooks_shared::domain::alerts::FailureReason;

    const INTERNAL_WAIT: Duration = Duration::from_secs(60);

    fn delivery_body(n: u32) -> String {
        json!({
            "delivery_id": format!("dlv_{n}"),
            "webhook_id": "wh_1",
            "event_id": format!("evt_{n}"),
            "event_type": "order.completed",
            "created_at": "2026-11-27T03:00:00.000Z"
        })
        .to_string()
    }

    /// A batch as Lambda hands it over: message `m{n}` with receipt handle `r{n}`.
    fn event(bodies: &[Option<String>]) -> SqsEvent {
        let records: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                json!({
                    "messageId": format!("m{}", i + 1),
                    "receiptHandle": format!("r{}", i + 1),
                    "body": body,
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:eu-west-1:000000000000:deliveries",
                    "awsRegion": "eu-west-1"
                })
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    #[test]
    fn later_copies_of_a_delivery_in_a_batch_are_repeats() {
        let batch = event(&[
            Some(delivery_body(1)),
            Some(delivery_body(2)),
            Some(delivery_body(1)),
            None,
            None,
            Some(delivery_body(2)),
            Some(delivery_body(3)),
        ]);
        assert_eq!(
            repeats(&batch.records),
            [false, false, true, false, false, true, false]
        );
    }

    fn notice(n: u32) -> FailureNotice {
        FailureNotice {
            webhook_id: "wh_1".into(),
            delivery_id: format!("dlv_{n}").into(),
            event_id: format!("evt_{n}").into(),
            event_type: "order.completed".into(),
            resource_id: None,
            attempts: 6,
            response_status: Some(500),
            error: None,
            failed_at: webhooks_shared::domain::clock::Timestamp::parse("2026-11-27T03:30:00.000Z")
                .expect("time"),
            excerpt: "{}".into(),
            reason: FailureReason::RetriesExhausted,
        }
    }

    fn failed_for_good(n: u32) -> Handled {
        Handled::Step {
            step: NextStep::PermanentlyFailed,
            notice: Some(Box::new(notice(n))),
        }
    }

    fn internal_error() -> Handled {
        NextStep::RetryIn(INTERNAL_WAIT).into()
    }

    fn hide(n: u32, duration: Duration) -> Hide {
        Hide {
            message_id: format!("m{n}"),
            receipt_handle: format!("r{n}"),
            duration,
        }
    }

    #[test]
    fn a_message_is_deleted_once_its_delivery_ends_else_hidden_until_due() {
        for ended in [
            NextStep::Succeeded,
            NextStep::PermanentlyFailed,
            NextStep::Cancelled,
        ] {
            assert_eq!(settle(ended), Settle::Delete, "{ended:?}");
        }
        let wait = Duration::from_secs(120);
        assert_eq!(settle(NextStep::RetryIn(wait)), Settle::HideFor(wait));
    }

    #[test]
    fn finished_deliveries_are_deleted_and_the_rest_kept_and_hidden() {
        let event = event(&(1..=7).map(|n| Some(delivery_body(n))).collect::<Vec<_>>());
        let handled = [
            NextStep::Succeeded.into(),
            NextStep::RetryIn(Duration::from_secs(120)).into(),
            internal_error(),
            failed_for_good(4),
            NextStep::RetryIn(Duration::ZERO).into(),
            NextStep::Cancelled.into(),
            Handled::Copy,
        ];
        let plan = settlement(&event.records, &handled, true, INTERNAL_WAIT);
        assert_eq!(plan.kept_ids(), ["m2", "m3", "m5"]);
        assert_eq!(
            plan.hide,
            [
                hide(2, Duration::from_secs(120)),
                hide(3, INTERNAL_WAIT),
                hide(5, Duration::ZERO),
            ]
        );
        // What Lambda gets back.
        assert_eq!(
            serde_json::to_value(&plan.response).unwrap(),
            json!({"batchItemFailures": [
                {"itemIdentifier": "m2"},
                {"itemIdentifier": "m3"},
                {"itemIdentifier": "m5"}
            ]})
        );
    }

    #[test]
    fn notices_not_queued_keep_the_messages_that_owed_them() {
        let event = event(&(1..=3).map(|n| Some(delivery_body(n))).collect::<Vec<_>>());
        let handled = [
            failed_for_good(1),
            NextStep::Succeeded.into(),
            failed_for_good(3),
        ];
        let plan = settlement(&event.records, &handled, false, INTERNAL_WAIT);
        assert_eq!(plan.kept_ids(), ["m1", "m3"]);
        assert_eq!(plan.hide, [hide(1, INTERNAL_WAIT), hide(3, INTERNAL_WAIT)]);
    }

    #[test]
    fn a_batch_with_nothing_kept_reports_no_failures() {
        let event = event(&[Some(delivery_body(1)), Some(delivery_body(2))]);
        let handled = [NextStep::Succeeded.into(), failed_for_good(2)];
        let plan = settlement(&event.records, &handled, true, INTERNAL_WAIT);
        assert!(plan.kept_ids().is_empty());
        assert!(plan.hide.is_empty());
        assert_eq!(
            serde_json::to_value(&plan.response).unwrap(),
            json!({"batchItemFailures": []})
        );
    }

    #[test]
    fn the_notices_owed_are_collected_in_batch_order() {
        let handled = [
            failed_for_good(2),
            NextStep::RetryIn(Duration::from_secs(1)).into(),
            Handled::Copy,
            failed_for_good(1),
        ];
        assert_eq!(
            notices(&handled),
            [
                AlertMessage::Failure(notice(2)),
                AlertMessage::Failure(notice(1))
            ]
        );
        assert!(notices(&[NextStep::Succeeded.into()]).is_empty());
    }

    #[test]
    fn the_receive_count_is_read_from_the_attributes() {
        let batch = event(&[Some(delivery_body(1))]);
        assert_eq!(receive_count(&batch.records[0]), Some(1));
        let mut again = batch.records[0].clone();
        again
            .attributes
            .insert("ApproximateReceiveCount".into(), "3".into());
        assert_eq!(receive_count(&again), Some(3));
        again.attributes.clear();
        assert_eq!(receive_count(&again), None);
    }

    #[test]
    fn messages_are_read_as_deliveries_or_not_at_all() {
        let event = event(&[
            Some(delivery_body(7)),
            None,
            Some("not json".into()),
            Some(r#"{"kind":"flush","webhook_id":"wh","window_id":"w"}"#.into()),
        ]);
        let read: Vec<_> = event.records.iter().map(read_message).collect();
        let first = read[0].as_ref().unwrap();
        assert_eq!(first.delivery.delivery_id, "dlv_7");
        assert_eq!(first.delivery.event_id, "evt_7");
        assert!(!first.delivery.manual, "manual defaults to false");
        assert!(read[1..].iter().all(Option::is_none));
    }
}
