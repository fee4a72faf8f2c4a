//! The second half of fan-out: the events table's stream hands each newly stored event to
//! fanout, which sends one message per delivery (one per webhook the event was stored
//! with) to the deliveries queue, in `SendMessageBatch` calls. `deliver` makes every
//! attempt from there. No HTTP call is made here, so a slow endpoint never holds up this
//! stream's shard, and the records behind it.
//!
//! - **Nothing sent twice.** A batch that is handed over again (a failure, a crash) sends
//!   its messages again; the FIFO queue's deduplication on the delivery id drops a copy
//!   within 5 minutes, and a later copy waits behind the first in its message group and
//!   then finds its delivery's log lines (`deliver` never repeats an attempt that has one).
//! - **Every message is one SQS takes** (the queue adapter escapes what SQS refuses, and a
//!   body rides along only when small). A message refused all the same for what it holds
//!   is sent again bare (ids only: `deliver` reads the body from the event), so no record
//!   can hold up the ones behind it.
//! - **Only a passing failure** (SQS throttling or down, after retries) reports records
//!   failed: Lambda hands them over again, from the first of them.

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::dynamodb::{Event, EventRecord as StreamRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::Fanout;
use webhooks_shared::adapters::backoff::Backoff;
use webhooks_shared::adapters::queue::QueueError;
use webhooks_shared::adapters::store::event_from_image;
use webhooks_shared::domain::ids;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef};

/// A message sent this soon after its event was stored is marked fresh: a copy sent later
/// (the record handed over again) is still within SQS's 5-minute deduplication interval of
/// the first send, so it is dropped, and the first receive of a fresh message needs no read
/// of its delivery's log (deliver's `DeliveryMessage::fresh`). A minute's margin for clocks.
const FRESH_FOR: Duration = Duration::from_secs(240);

/// The delivery messages of one stream record: for an inserted event, one per webhook it
/// was stored with, carrying its body when small. Other records (and events stored before
/// they kept their webhooks, fanned out by their own request) have none.
pub fn deliveries_of(record: &StreamRecord) -> Result<Vec<DeliveryMessage>, String> {
    if record.event_name != "INSERT" {
        return Ok(Vec::new());
    }
    let event = event_from_image(record.change.new_image.clone()).map_err(|e| e.to_string())?;
    Ok(event
        .webhooks
        .iter()
        .flatten()
        .map(|webhook_id| {
            let delivery = DeliveryRef {
                delivery_id: ids::delivery_id(&event.id, webhook_id, event.received_at.into()),
                webhook_id: webhook_id.clone(),
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                resource_id: event.resource_id.clone(),
                manual: false,
            };
            DeliveryMessage::with_body(delivery, event.received_at, &event.payload)
        })
        .collect())
}

/// Whether the messages of `record`, sent at `now`, are fresh (see [`FRESH_FOR`]).
fn is_fresh(record: &StreamRecord, now: SystemTime) -> bool {
    let stored: SystemTime = record.change.approximate_creation_date_time.into();
    now.duration_since(stored).unwrap_or_default() < FRESH_FOR
}

/// The records to hand back: Lambda starts again from the first of them.
fn failures(sequence_numbers: impl IntoIterator<Item = String>) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    response.batch_item_failures = sequence_numbers
        .into_iter()
        .map(|sequence_number| {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(sequence_number);
            failure
        })
        .collect();
    response
}

impl Fanout {
    /// Handles one batch of the events table's stream: every delivery of its new events
    /// becomes a message on the deliveries queue.
    pub async fn handle_stream(&self, event: Event) -> DynamoDbEventResponse {
        let mut messages = Vec::new();
        let mut owners = Vec::new(); // the record (index) each message comes from
        let now = SystemTime::now();
        for (index, record) in event.records.iter().enumerate() {
            let fresh = is_fresh(record, now);
            match deliveries_of(record) {
                Ok(mut found) => {
                    found.iter_mut().for_each(|m| m.fresh = fresh);
                    owners.extend(std::iter::repeat_n(index, found.len()));
                    messages.extend(found);
                }
                // Not an event this code wrote: nothing to deliver, nothing to wait for.
                Err(err) => {
                    tracing::error!(error = %err, sequence_number = ?record.change.sequence_number, "stream record is not a stored event; skipped")
                }
            }
        }
        let unsent = self.hand_over(&messages).await;
        let mut failed: Vec<usize> = unsent
            .into_iter()
            .filter_map(|i| owners.get(i).copied())
            .collect();
        failed.sort_unstable();
        failed.dedup();
        if !failed.is_empty() {
            tracing::warn!(
                records = failed.len(),
                "deliveries not queued; their stream records will be handed over again"
            );
        }
        failures(
            failed
                .into_iter()
                .filter_map(|i| event.records.get(i)?.change.sequence_number.clone()),
        )
    }

    /// Queues `messages`, retrying passing failures well beyond the SDK's own tries; the
    /// positions of those that could not be queued.
    async fn hand_over(&self, messages: &[DeliveryMessage]) -> Vec<usize> {
        if messages.is_empty() {
            return Vec::new();
        }
        let sent = Backoff::RECORDING
            .retry(|| self.queue.send(messages), QueueError::is_retryable)
            .await;
        let rejected = match sent {
            Ok(()) => return Vec::new(),
            Err(QueueError::Rejected(positions)) => positions,
            Err(err) => {
                tracing::error!(error = %err, "deliveries not queued");
                return (0..messages.len()).collect();
            }
        };
        // Cannot happen with the adapter's encoding; if it does, the bare message (ids,
        // which SQS always takes) keeps the delivery and the records behind it going.
        let bare: Vec<DeliveryMessage> = rejected
            .iter()
            .filter_map(|&i| messages.get(i))
            .map(|m| {
                tracing::error!(delivery_id = %m.delivery.delivery_id, "SQS refused a delivery message; sending it without its body");
                DeliveryMessage {
                    body: None,
                    fresh: false,
                    ..m.clone()
                }
            })
            .collect();
        match Backoff::RECORDING
            .retry(|| self.queue.send(&bare), QueueError::is_retryable)
            .await
        {
            Ok(()) => Vec::new(),
            Err(err) => {
                tracing::error!(error = %err, "bare delivery messages not queued");
                rejected
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A stream record as Lambda sends it, for an event stored with `webhooks`.
    fn inserted(webhooks: &[&str], body: &str) -> StreamRecord {
        let image = json!({
            "id": {"S": "evt_1"},
            "type": {"S": "order.completed"},
            "resource_id": {"S": "ord_1"},
            "payload": {"S": body},
            "fingerprint": {"S": "f"},
            "received_at": {"S": "2026-11-27T03:00:00.000Z"},
            "webhooks": {"L": webhooks.iter().map(|w| json!({"S": w})).collect::<Vec<_>>()},
            "expires_at": {"N": "1"},
        });
        serde_json::from_value(json!({
            "eventID": "1",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/x",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_795_000_000,
                "Keys": {"id": {"S": "evt_1"}},
                "NewImage": image,
                "SequenceNumber": "100",
                "SizeBytes": 300,
                "StreamViewType": "NEW_IMAGE"
            }
        }))
        .unwrap()
    }

    #[test]
    fn an_inserted_event_gives_one_delivery_per_webhook() {
        let record = inserted(&["wh_a", "wh_b"], r#"{"id":"evt_1"}"#);
        let messages = deliveries_of(&record).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].delivery.webhook_id.as_str(), "wh_a");
        assert_eq!(messages[1].delivery.webhook_id.as_str(), "wh_b");
        // The same ids as any other path computes for this event and webhook.
        assert_eq!(
            messages[0].delivery.delivery_id,
            ids::delivery_id(
                &"evt_1".to_owned().into(),
                &"wh_a".to_owned().into(),
                messages[0].created_at.unwrap().into()
            )
        );
        assert_eq!(messages[0].body.as_deref(), Some(r#"{"id":"evt_1"}"#));
        assert_eq!(messages[0].delivery.resource_id.as_deref(), Some("ord_1"));
        assert!(!messages[0].delivery.manual);
    }

    #[test]
    fn a_large_body_stays_in_the_event_item() {
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(20_000));
        let messages = deliveries_of(&inserted(&["wh_a"], &big)).unwrap();
        assert_eq!(messages[0].body, None);
        assert!(messages[0].created_at.is_some());
    }

    #[test]
    fn other_records_and_events_without_webhooks_give_none() {
        let mut modified = inserted(&["wh_a"], "{}");
        modified.event_name = "MODIFY".into();
        assert!(deliveries_of(&modified).unwrap().is_empty());
        let mut old = inserted(&[], "{}");
        old.change.new_image.remove("webhooks");
        assert!(deliveries_of(&old).unwrap().is_empty());
        let mut broken = inserted(&["wh_a"], "{}");
        broken.change.new_image.remove("payload");
        assert!(deliveries_of(&broken).is_err());
    }

    #[test]
    fn messages_sent_within_four_minutes_of_the_event_are_fresh() {
        let record = inserted(&["wh_a"], "{}");
        let stored = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert!(is_fresh(&record, stored));
        assert!(is_fresh(&record, stored + Duration::from_secs(239)));
        assert!(!is_fresh(&record, stored + FRESH_FOR));
        assert!(!is_fresh(&record, stored + Duration::from_secs(3600)));
        // Not fresh unless fan-out says so.
        assert!(!deliveries_of(&record).unwrap()[0].fresh);
    }

    #[test]
    fn failed_records_are_reported_by_sequence_number() {
        let response = failures(["7".to_owned(), "9".to_owned()]);
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "7"}, {"itemIdentifier": "9"}]})
        );
        assert_eq!(
            serde_json::to_value(failures([])).unwrap(),
            json!({"batchItemFailures": []})
        );
    }
}
