//! How a batch of alerter messages is settled: messages of the alerts queue that must come
//! back are hidden until due; dead letters come back after their own queue's visibility
//! timeout (the alerter changes visibility on the alerts queue only).

use std::time::Duration;

use aws_lambda_events::event::sqs::SqsMessage;
use webhooks_shared::adapters::queue::{BatchSettlement, Settle};

/// What becomes of one alerter message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Done,
    /// Keep the message and see it again after this long.
    RetryIn(Duration),
}

/// The settlement of `records` from each one's fate and whether it came from the alerts
/// queue (same order).
pub fn settlement(records: &[SqsMessage], fates: &[(Fate, bool)]) -> BatchSettlement {
    let settles = fates.iter().map(|&(fate, from_alerts_queue)| match fate {
        Fate::Done => Settle::Delete,
        Fate::RetryIn(wait) if from_alerts_queue => Settle::HideFor(wait),
        Fate::RetryIn(_) => Settle::Release,
    });
    BatchSettlement::plan(records, settles)
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
        let plan = settlement(
            &event.records,
            &[
                (Fate::Done, true),
                (Fate::RetryIn(Duration::from_secs(6)), true),
                (Fate::RetryIn(Duration::from_secs(60)), false),
                (Fate::Done, false),
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
