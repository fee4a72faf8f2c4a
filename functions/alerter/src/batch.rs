//! How a batch of alerter messages is settled. The alerter's messages are alerts and dead
//! letters, not attempts: each is settled with the queue adapter's [`Settle`] directly. A
//! message of the alerts queue that must come back is hidden until due; a dead letter is
//! released and comes back after its own queue's visibility timeout (the alerter changes
//! visibility on the alerts queue only).

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use webhooks_shared::adapters::queue::{BatchSettlement, Settle};

/// How a message that failed a step is kept, to be tried again after `wait`: hidden that
/// long if it came from the alerts queue; released if it is a dead letter.
pub fn again_after(wait: Duration, from_alerts_queue: bool) -> Settle {
    if from_alerts_queue {
        Settle::HideFor(wait)
    } else {
        Settle::Release
    }
}

/// The settlement of `records`, each settled as `settles` says (same order).
pub fn settlement(records: &[SqsMessage], settles: &[Settle]) -> BatchSettlement {
    BatchSettlement::plan(records, settles.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::sqs::SqsEvent;
    use webhooks_shared::adapters::queue::Hide;

    #[test]
    fn alerts_are_hidden_until_due_and_dead_letters_released() {
        let event: SqsEvent = serde_json::from_value(serde_json::json!({"Records": [
            {"messageId": "a1", "receiptHandle": "r1", "body": "{}"},
            {"messageId": "a2", "receiptHandle": "r2", "body": "{}"},
            {"messageId": "d3", "receiptHandle": "r3", "body": "{}"},
            {"messageId": "d4", "receiptHandle": "r4", "body": "{}"}
        ]}))
        .unwrap();
        assert_eq!(
            again_after(Duration::from_secs(6), true),
            Settle::HideFor(Duration::from_secs(6))
        );
        let plan = settlement(
            &event.records,
            &[
                Settle::Delete,
                again_after(Duration::from_secs(6), true),
                again_after(Duration::from_secs(60), false),
                Settle::Delete,
            ],
        );
        assert_eq!(plan.kept_ids(), ["a2", "d3"]);
        assert_eq!(
            plan.hide,
            [Hide {
                message_id: "a2".into(),
                receipt_handle: "r2".into(),
                duration: Duration::from_secs(6),
            }]
        );
    }
}
