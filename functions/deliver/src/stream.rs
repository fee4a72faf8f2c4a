//! First attempts, straight from the events table's stream: each new event's deliveries
//! (one per webhook it was stored with) are attempted here, with no SQS message at all when
//! the first attempt ends them. A delivery that must be retried continues as a message on
//! the deliveries queue (it owns every later attempt).
//!
//! Ownership is kept clear so the two never make the same attempt: a delivery is attempted
//! here only while it has no line, and handed to the queue only once it has one. One that
//! could not be attempted has its stream record reported failed (Lambda hands it over again,
//! with the later records of its shard). Once its event is older than [`HAND_OFF_AFTER`],
//! the stream stops attempting it and hands it to the queue as it is, whose dead-letter path
//! alerts: a broken delivery does not hold up its shard for the stream's 24 hours.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::dynamodb::{Event, EventRecord as StreamRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{self, StreamExt};

use crate::batch::{self, Handled, MessageFate};
use crate::{Deliverer, Source, WebhookReads};
use webhooks_shared::adapters::backoff::Backoff;
use webhooks_shared::adapters::queue::{Queue, QueueError, QueueMessage};
use webhooks_shared::adapters::store::event_from_image;
use webhooks_shared::domain::ids::{self, DeliveryId, WebhookId};
use webhooks_shared::domain::model::{AttemptRecord, DeliveryMessage, DeliveryRef, EventRecord};

/// How long a delivery the stream cannot attempt keeps its record failing before the queue
/// takes it over.
pub const HAND_OFF_AFTER: Duration = Duration::from_secs(300);
/// Deliveries of one stream batch in flight at once.
const CONCURRENT_DELIVERIES: usize = 32;

/// What the stream path does with one delivery once it was handled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Ended (or nothing to do): the alert it owes, if any.
    Ended(Handled),
    /// The queue takes it from here: this message goes to the deliveries queue.
    ToQueue(DeliveryMessage),
    /// Not attempted and not handed over: the record is handed back by Lambda.
    Again,
}

/// The deliveries of one stream record: an inserted event, one per webhook it was stored
/// with. Other records (and events stored before they kept their webhooks, fanned out by
/// their own request) have none.
pub fn deliveries_of(record: &StreamRecord) -> Result<Vec<DeliveryMessage>, String> {
    if record.event_name != "INSERT" {
        return Ok(Vec::new());
    }
    let event: EventRecord =
        event_from_image(record.change.new_image.clone()).map_err(|e| e.to_string())?;
    Ok(event
        .webhooks
        .iter()
        .flatten()
        .map(|webhook_id| DeliveryMessage {
            delivery: DeliveryRef {
                delivery_id: ids::delivery_id(&event.id, webhook_id, event.received_at.into()),
                webhook_id: webhook_id.clone(),
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                resource_id: event.resource_id.clone(),
                manual: false,
            },
            created_at: Some(event.received_at),
            // The whole body, whatever its size: it is in hand. A message handed to the
            // queue carries it only if small (`to_queue`).
            body: Some(event.payload.clone()),
        })
        .collect())
}

/// The queue's copy of `message`: the body rides along only within the message limit.
fn to_queue(message: &DeliveryMessage) -> DeliveryMessage {
    match (&message.body, message.created_at) {
        (Some(body), Some(created_at)) => {
            DeliveryMessage::with_body(message.delivery.clone(), created_at, body)
        }
        _ => DeliveryMessage {
            body: None,
            ..message.clone()
        },
    }
}

/// What a handled delivery leads to.
fn next(message: &DeliveryMessage, handled: Handled) -> Next {
    match handled.fate {
        MessageFate::Done => Next::Ended(handled),
        // It has a line asking for a later attempt: the queue's now.
        MessageFate::RetryIn(_) => Next::ToQueue(to_queue(message)),
        MessageFate::Failed => Next::Again,
    }
}

/// Per webhook, the first and last of its delivery ids among `deliveries`.
fn spans<'a>(
    deliveries: impl Iterator<Item = &'a DeliveryRef>,
) -> HashMap<WebhookId, (DeliveryId, DeliveryId)> {
    let mut spans: HashMap<WebhookId, (DeliveryId, DeliveryId)> = HashMap::new();
    for d in deliveries {
        let id = &d.delivery_id;
        spans
            .entry(d.webhook_id.clone())
            .and_modify(|(first, last)| {
                if id < first {
                    *first = id.clone();
                }
                if id > last {
                    *last = id.clone();
                }
            })
            .or_insert_with(|| (id.clone(), id.clone()));
    }
    spans
}

/// The records to hand back: each one any of whose deliveries must be handled again
/// (Lambda starts again from the first of them).
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

impl Deliverer {
    /// Handles one batch of the events table's stream.
    pub async fn handle_stream(&self, event: Event) -> DynamoDbEventResponse {
        let now = SystemTime::now();
        let webhooks = WebhookReads::default();
        let mut work = Vec::new();
        for (index, record) in event.records.iter().enumerate() {
            match deliveries_of(record) {
                Ok(messages) => {
                    let created: SystemTime = record.change.approximate_creation_date_time.into();
                    let age = now.duration_since(created).unwrap_or_default();
                    work.extend(messages.into_iter().map(|m| (index, m, age)));
                }
                // Not an event this code wrote: nothing to deliver, nothing to wait for.
                Err(err) => {
                    tracing::error!(error = %err, sequence_number = ?record.change.sequence_number, "stream record is not a stored event; skipped")
                }
            }
        }
        let lines = self
            .lines_by_webhook(work.iter().map(|(_, m, _)| &m.delivery))
            .await;
        let handled: Vec<(usize, DeliveryMessage, Next)> = stream::iter(work)
            .map(|(index, message, age)| {
                let webhooks = &webhooks;
                let delivery = &message.delivery;
                // Read with the batch; a webhook whose read failed has its deliveries read
                // one by one.
                let known = lines.get(&delivery.webhook_id).map(|lines| {
                    lines
                        .get(&delivery.delivery_id)
                        .cloned()
                        .unwrap_or_default()
                });
                async move {
                    let next = if age > HAND_OFF_AFTER {
                        Next::ToQueue(to_queue(&message))
                    } else {
                        let handled = self
                            .handle_delivery(&message, webhooks, Source::Stream, known)
                            .await;
                        next(&message, handled)
                    };
                    (index, message, next)
                }
            })
            .buffered(CONCURRENT_DELIVERIES)
            .collect()
            .await;

        let handed: Vec<DeliveryMessage> = handled
            .iter()
            .filter_map(|(_, _, next)| match next {
                Next::ToQueue(message) => Some(message.clone()),
                _ => None,
            })
            .collect();
        let handed_over = queued(&self.queue, &handed, "deliveries handed to the queue").await;
        let notices = batch::notices(handled.iter().filter_map(|(_, _, next)| match next {
            Next::Ended(h) => Some(h),
            _ => None,
        }));
        let notices_queued = queued(&self.alerts, &notices, "failure notices").await;
        let mut failed: Vec<usize> = handled
            .iter()
            .filter(|(_, message, next)| {
                let again = match next {
                    Next::Again => true,
                    Next::ToQueue(_) => !handed_over,
                    Next::Ended(h) => h.notice.is_some() && !notices_queued,
                };
                if again {
                    tracing::warn!(delivery_id = %message.delivery.delivery_id, "delivery not settled; its stream record will be handed over again");
                }
                again
            })
            .map(|(index, _, _)| *index)
            .collect();
        failed.dedup(); // in record order already
        failures(
            failed
                .into_iter()
                .filter_map(|i| event.records.get(i)?.change.sequence_number.clone()),
        )
    }

    /// The lines of `deliveries`, by webhook then delivery: one query per webhook for the
    /// span of delivery ids the batch has (they sort by when they were made, and a batch's
    /// events arrived close together). A webhook whose query failed is left out.
    async fn lines_by_webhook<'a>(
        &self,
        deliveries: impl Iterator<Item = &'a DeliveryRef>,
    ) -> HashMap<WebhookId, HashMap<DeliveryId, Vec<AttemptRecord>>> {
        let reads = spans(deliveries)
            .into_iter()
            .map(|(webhook, (first, last))| async move {
                match self.store.attempts_between(&webhook, &first, &last).await {
                    Ok(lines) => Some((webhook, lines)),
                    Err(err) => {
                        tracing::warn!(error = %err, webhook_id = %webhook, "batch read of lines failed; reading them one by one");
                        None
                    }
                }
            });
        futures::future::join_all(reads)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Queues `messages` (none: nothing to do), retrying well beyond the SDK's own tries (a
/// delivery copy that got through is dropped by the FIFO queue's deduplication; the alerter
/// counts a failure once); false if they could not all be queued.
async fn queued<M: QueueMessage>(queue: &Queue, messages: &[M], what: &str) -> bool {
    if messages.is_empty() {
        return true;
    }
    match Backoff::RECORDING
        .retry(|| queue.send(messages), QueueError::is_retryable)
        .await
    {
        Ok(()) => true,
        Err(err) => {
            tracing::error!(error = %err, what, "not queued; their records will be handled again");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use webhooks_shared::domain::alerts::FailureNotice;

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
    fn an_inserted_event_gives_one_delivery_per_webhook_with_its_whole_body() {
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(20_000));
        let record = inserted(&["wh_a", "wh_b"], &big);
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
        assert_eq!(messages[0].body.as_deref(), Some(big.as_str()));
        assert!(!messages[0].delivery.manual);
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
    fn a_queued_copy_carries_a_small_body_only() {
        let small = deliveries_of(&inserted(&["wh_a"], "{}")).unwrap();
        assert_eq!(to_queue(&small[0]).body.as_deref(), Some("{}"));
        let big = format!(r#"{{"data":"{}"}}"#, "x".repeat(20_000));
        let big = deliveries_of(&inserted(&["wh_a"], &big)).unwrap();
        let queued = to_queue(&big[0]);
        assert_eq!(queued.body, None);
        assert_eq!(queued.delivery, big[0].delivery);
        assert_eq!(queued.created_at, big[0].created_at);
    }

    #[test]
    fn a_retry_goes_to_the_queue_and_a_failure_back_to_the_stream() {
        let message = &deliveries_of(&inserted(&["wh_a"], "{}")).unwrap()[0];
        let retry = MessageFate::RetryIn(Duration::from_secs(3)).into();
        assert_eq!(next(message, retry), Next::ToQueue(to_queue(message)));
        assert_eq!(next(message, MessageFate::Failed.into()), Next::Again);
        let ended = Handled {
            fate: MessageFate::Done,
            notice: None::<FailureNotice>,
        };
        assert_eq!(next(message, ended.clone()), Next::Ended(ended));
    }

    #[test]
    fn each_webhook_is_read_once_over_the_span_of_its_deliveries() {
        let refs: Vec<DeliveryRef> = [
            ("wh_a", "dlv_3"),
            ("wh_b", "dlv_2"),
            ("wh_a", "dlv_1"),
            ("wh_a", "dlv_2"),
        ]
        .iter()
        .map(|(w, d)| {
            let mut m = deliveries_of(&inserted(&[w], "{}")).unwrap().remove(0);
            m.delivery.delivery_id = (*d).to_owned().into();
            m.delivery
        })
        .collect();
        let spans = spans(refs.iter());
        assert_eq!(spans.len(), 2);
        let id = |s: &str| DeliveryId::from(s.to_owned());
        assert_eq!(
            spans[&WebhookId::from("wh_a".to_owned())],
            (id("dlv_1"), id("dlv_3"))
        );
        assert_eq!(
            spans[&WebhookId::from("wh_b".to_owned())],
            (id("dlv_2"), id("dlv_2"))
        );
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
