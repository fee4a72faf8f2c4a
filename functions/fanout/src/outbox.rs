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
//! - **Only a passing failure** (SQS throttling or down, after retries, or the event's pages
//!   of webhooks unreadable) reports records failed: Lambda hands them over again, from the
//!   first of them.
//! - **Any number of webhooks per event.** An event with many webhooks has them in pages
//!   beside its item (`Store::event_webhooks` reads them); page items come down the stream
//!   too and are passed over. Messages are built and sent [`CHUNK_MESSAGES`] at a time,
//!   [`CHUNKS_IN_FLIGHT`] chunks at once, so memory stays bounded whatever the fan-out.
//! - **Within the invocation's time.** No new record is started after [`STREAM_TIME_BUDGET`]
//!   (less when the invocation has less left): the records not handled are reported failed,
//!   and Lambda hands them over in the next batch. A batch of events with 10,000 webhooks
//!   each can take longer than one invocation; it then takes several, never failing whole.

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::event::dynamodb::{Event, EventRecord as StreamRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures::stream::{FuturesUnordered, StreamExt};

use crate::Fanout;
use webhooks_shared::adapters::backoff::Backoff;
use webhooks_shared::adapters::queue::QueueError;
use webhooks_shared::adapters::store::{event_from_image, is_webhook_page, StoreError};
use webhooks_shared::domain::ids::{self, WebhookId};
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef, EventRecord};

/// A message sent this soon after its event was stored is marked fresh: a copy sent later
/// (the record handed over again) is still within SQS's 5-minute deduplication interval of
/// the first send, so it is dropped, and the first receive of a fresh message needs no read
/// of its delivery's log (deliver's `DeliveryMessage::fresh`). A minute's margin for clocks
/// and for the seconds between a record's messages being made and sent.
const FRESH_FOR: Duration = Duration::from_secs(240);

/// Messages are made and queued this many at a time: 50 `SendMessageBatch` calls (the queue
/// adapter makes 10 at once), ~8 MB with the largest bodies that ride along.
pub const CHUNK_MESSAGES: usize = 500;
/// Chunks queued at once: 40 calls in flight, ~10,000 messages a second at ~40 ms a call.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// A stream batch starts no new record after this long: below fanout's `Timeout` in
/// template.yaml (120 s), with room for the sends under way to finish or fail.
pub const STREAM_TIME_BUDGET: Duration = Duration::from_secs(90);
/// Of an invocation's time, what is kept for the sends under way when the budget ends
/// (their retries may take ~7 s more).
const STREAM_MARGIN: Duration = Duration::from_secs(20);

/// When a batch of an invocation that must end at `invocation_deadline` starts no new
/// record: [`STREAM_TIME_BUDGET`] from now, or sooner so [`STREAM_MARGIN`] is left.
pub fn stream_deadline(invocation_deadline: SystemTime) -> Instant {
    let left = invocation_deadline
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .saturating_sub(STREAM_MARGIN);
    Instant::now() + left.min(STREAM_TIME_BUDGET)
}

/// The event a stream record inserted, if it is one (not another change, not a page of an
/// event's webhooks).
pub fn event_of(record: &StreamRecord) -> Result<Option<EventRecord>, String> {
    if record.event_name != "INSERT" || is_webhook_page(&record.change.new_image) {
        return Ok(None);
    }
    event_from_image(record.change.new_image.clone())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The delivery messages of `event` to `webhooks`, carrying its body when small, marked
/// `fresh` as given.
pub fn messages<'a>(
    event: &'a EventRecord,
    webhooks: &'a [WebhookId],
    fresh: bool,
) -> impl Iterator<Item = DeliveryMessage> + 'a {
    // Whether the body rides along is decided once per event, not per message.
    let template = webhooks.first().map(|first| {
        let mut message =
            DeliveryMessage::with_body(delivery(event, first), event.received_at, &event.payload);
        message.fresh = fresh;
        message
    });
    webhooks
        .iter()
        .zip(std::iter::repeat(template))
        .filter_map(|(webhook_id, template)| {
            Some(DeliveryMessage {
                delivery: delivery(event, webhook_id),
                ..template?
            })
        })
}

/// The delivery of `event` to `webhook_id`, with the id every other path computes for it.
fn delivery(event: &EventRecord, webhook_id: &WebhookId) -> DeliveryRef {
    DeliveryRef {
        delivery_id: ids::delivery_id(&event.id, webhook_id, event.received_at.into()),
        webhook_id: webhook_id.clone(),
        event_id: event.id.clone(),
        event_type: event.event_type.clone(),
        resource_id: event.resource_id.clone(),
        manual: false,
    }
}

/// Whether the messages of `record`, made at `now`, are fresh (see [`FRESH_FOR`]).
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

/// What one stream record fans out.
enum FanOutSet {
    /// An event, to the webhooks it was stored with.
    Deliver(Box<EventRecord>, Vec<WebhookId>),
    /// No event (another change, a page of webhooks, a record this code did not write).
    Nothing,
    /// The event's webhooks cannot be read now: the record is to be handed over again.
    Later,
}

/// Messages on their way to the queue, and the record (index) each comes from.
#[derive(Default)]
struct Chunk {
    messages: Vec<DeliveryMessage>,
    owners: Vec<usize>,
}

impl Fanout {
    /// Handles one batch of the events table's stream: every delivery of its new events
    /// becomes a message on the deliveries queue (within [`STREAM_TIME_BUDGET`]).
    pub async fn handle_stream(&self, event: Event) -> DynamoDbEventResponse {
        self.handle_stream_until(event, Instant::now() + STREAM_TIME_BUDGET)
            .await
    }

    /// [`Fanout::handle_stream`], starting no record after `deadline`: those left are
    /// reported failed, so Lambda hands them over again.
    pub async fn handle_stream_until(
        &self,
        event: Event,
        deadline: Instant,
    ) -> DynamoDbEventResponse {
        let records = &event.records;
        let mut failed = BTreeSet::new();
        let mut chunk = Chunk::default();
        let mut sending = FuturesUnordered::new();
        'records: for (index, record) in records.iter().enumerate() {
            if Instant::now() >= deadline {
                failed.extend(index..records.len());
                break;
            }
            let (event, webhooks) = match self.fan_out_set(record).await {
                FanOutSet::Deliver(event, webhooks) => (event, webhooks),
                FanOutSet::Nothing => continue,
                FanOutSet::Later => {
                    failed.insert(index);
                    continue;
                }
            };
            let fresh = is_fresh(record, SystemTime::now());
            for message in messages(&event, &webhooks, fresh) {
                chunk.messages.push(message);
                chunk.owners.push(index);
                if chunk.messages.len() < CHUNK_MESSAGES {
                    continue;
                }
                sending.push(self.send_chunk(std::mem::take(&mut chunk)));
                while sending.len() >= CHUNKS_IN_FLIGHT {
                    failed.extend(sending.next().await.into_iter().flatten());
                }
                if Instant::now() >= deadline {
                    // Part of this record is queued: it is handed over again whole (the
                    // queue drops the copies sent within 5 minutes, deliver's log the rest).
                    failed.extend(index..records.len());
                    break 'records;
                }
            }
        }
        if !chunk.messages.is_empty() {
            sending.push(self.send_chunk(chunk));
        }
        while let Some(unsent) = sending.next().await {
            failed.extend(unsent);
        }
        if !failed.is_empty() {
            tracing::warn!(
                records = failed.len(),
                of = records.len(),
                "deliveries not queued; their stream records will be handed over again"
            );
        }
        failures(
            failed
                .into_iter()
                .filter_map(|i| records.get(i)?.change.sequence_number.clone()),
        )
    }

    /// What `record` fans out.
    async fn fan_out_set(&self, record: &StreamRecord) -> FanOutSet {
        let event = match event_of(record) {
            Ok(Some(event)) => event,
            Ok(None) => return FanOutSet::Nothing,
            // Not an event this code wrote: nothing to deliver, nothing to wait for.
            Err(err) => {
                tracing::error!(error = %err, sequence_number = ?record.change.sequence_number, "stream record is not a stored event; skipped");
                return FanOutSet::Nothing;
            }
        };
        match self.store.event_webhooks(&event).await {
            Ok(webhooks) => FanOutSet::Deliver(Box::new(event), webhooks),
            // Pages that can never be read (missing, damaged): nothing to wait for either.
            Err(err @ (StoreError::Corrupt(_) | StoreError::Codec(_))) => {
                tracing::error!(error = %err, event_id = %event.id, "event's webhooks unreadable; skipped");
                FanOutSet::Nothing
            }
            // An outage, throttling, or a role without access: the record waits for it.
            Err(err) => {
                tracing::warn!(error = %err, event_id = %event.id, "event's pages of webhooks not read; the record will be handed over again");
                FanOutSet::Later
            }
        }
    }

    /// Queues one chunk; the records of the messages that could not be queued.
    async fn send_chunk(&self, chunk: Chunk) -> Vec<usize> {
        self.hand_over(&chunk.messages)
            .await
            .into_iter()
            .filter_map(|i| chunk.owners.get(i).copied())
            .collect()
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

    /// The messages of an event stored with its webhooks in its item, as the stream handler
    /// makes them (not fresh).
    fn deliveries_of(record: &StreamRecord) -> Result<Vec<DeliveryMessage>, String> {
        Ok(match event_of(record)? {
            None => Vec::new(),
            Some(event) => {
                let webhooks = event.webhooks.clone().unwrap_or_default();
                messages(&event, &webhooks, false).collect()
            }
        })
    }

    /// A stream record of a page of `evt_1`'s webhooks, as the transaction wrote it.
    fn page(n: u32, webhooks: &[&str]) -> StreamRecord {
        let mut record = inserted(&[], "{}");
        let id = format!("evt_1#webhooks#{n}");
        record.change.new_image = serde_json::from_value(json!({
            "id": {"S": id},
            "event_id": {"S": "evt_1"},
            "page": {"N": n.to_string()},
            "webhooks": {"L": webhooks.iter().map(|w| json!({"S": w})).collect::<Vec<_>>()},
            "expires_at": {"N": "1"},
        }))
        .unwrap();
        record
    }

    /// An event stored with its webhooks in `pages` pages beside it.
    fn paged(webhooks: u32, pages: u32, sequence: &str) -> StreamRecord {
        let mut record = inserted(&[], "{}");
        let mut image = serde_json::to_value(&record.change.new_image).unwrap();
        let fields = image.as_object_mut().unwrap();
        fields.remove("webhooks");
        fields.insert("deliveries".into(), json!({"N": webhooks.to_string()}));
        fields.insert("webhook_pages".into(), json!({"N": pages.to_string()}));
        record.change.new_image = serde_json::from_value(image).unwrap();
        record.change.sequence_number = Some(sequence.into());
        record
    }

    /// A fanout whose AWS endpoint is a closed local port: every call fails, at once.
    async fn offline_fanout() -> Fanout {
        let sdk = webhooks_shared::adapters::load_sdk_config()
            .await
            .to_builder()
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let config = webhooks_shared::Config::from_lookup(|name| {
            let resource = name.ends_with("_TABLE")
                || name.ends_with("_QUEUE_URL")
                || name == "SECRETS_KEY_ID";
            resource.then(|| format!("offline-{name}"))
        })
        .expect("config");
        crate::wire(&sdk, &config)
    }

    fn batch(records: Vec<StreamRecord>) -> Event {
        let mut event = Event::default();
        event.records = records;
        event
    }

    fn failed_sequence_numbers(response: &DynamoDbEventResponse) -> Vec<String> {
        response
            .batch_item_failures
            .iter()
            .filter_map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn records_past_the_deadline_are_handed_back_unread() {
        let fanout = offline_fanout().await;
        let records = ["1", "2", "3"]
            .map(|n| {
                let mut record = inserted(&["wh_a"], "{}");
                record.change.sequence_number = Some(n.into());
                record
            })
            .to_vec();
        let answer = fanout
            .handle_stream_until(batch(records), Instant::now())
            .await;
        assert_eq!(failed_sequence_numbers(&answer), ["1", "2", "3"]);
    }

    #[tokio::test]
    async fn an_event_whose_pages_cannot_be_read_is_handed_back_and_nothing_else_is() {
        let fanout = offline_fanout().await;
        let mut modified = inserted(&["wh_a"], "{}");
        modified.event_name = "MODIFY".into();
        modified.change.sequence_number = Some("1".into());
        let mut page_record = page(1, &["wh_a", "wh_b"]);
        page_record.change.sequence_number = Some("2".into());
        let records = vec![modified, page_record, paged(2, 1, "3")];
        let answer = fanout
            .handle_stream_until(batch(records), Instant::now() + Duration::from_secs(60))
            .await;
        assert_eq!(failed_sequence_numbers(&answer), ["3"]);
    }

    #[test]
    fn pages_of_webhooks_are_no_events() {
        assert_eq!(event_of(&page(1, &["wh_a"])), Ok(None));
        let event = event_of(&paged(12_000, 3, "1")).unwrap().unwrap();
        assert_eq!(
            (event.webhooks, event.deliveries, event.webhook_pages),
            (None, Some(12_000), 3)
        );
    }

    #[test]
    fn the_deadline_leaves_the_margin_and_never_passes_the_budget() {
        let now = SystemTime::now();
        let soon = stream_deadline(now + Duration::from_secs(30));
        let budget = soon.saturating_duration_since(Instant::now());
        assert!(budget <= Duration::from_secs(10), "{budget:?}");
        let later = stream_deadline(now + Duration::from_secs(900));
        let budget = later.saturating_duration_since(Instant::now());
        assert!(
            budget <= STREAM_TIME_BUDGET && budget > STREAM_TIME_BUDGET - Duration::from_secs(5),
            "{budget:?}"
        );
        assert!(stream_deadline(now - Duration::from_secs(1)) <= Instant::now());
    }

    #[test]
    fn the_budget_and_its_margin_fit_fanouts_timeout_in_the_template() {
        let template = include_str!("../../../template.yaml");
        let start = template
            .find("\n  FanoutFunction:\n")
            .expect("FanoutFunction");
        let function = &template[start + 1..];
        let end = function[2..]
            .find("\n  F")
            .map_or(function.len(), |i| i + 2);
        let timeout: u64 = function[..end]
            .lines()
            .find_map(|line| line.trim().strip_prefix("Timeout: "))
            .expect("FanoutFunction sets its Timeout")
            .parse()
            .expect("seconds");
        assert!(
            STREAM_TIME_BUDGET + STREAM_MARGIN <= Duration::from_secs(timeout),
            "{STREAM_TIME_BUDGET:?} + {STREAM_MARGIN:?} > {timeout} s"
        );
    }

    #[test]
    fn every_webhook_gets_its_own_message_with_the_body_decided_once() {
        let event = event_of(&inserted(&[], r#"{"id":"evt_1"}"#))
            .unwrap()
            .unwrap();
        let webhooks: Vec<WebhookId> = (0..1_234).map(|i| format!("wh_{i}").into()).collect();
        let made: Vec<DeliveryMessage> = messages(&event, &webhooks, true).collect();
        assert_eq!(made.len(), 1_234);
        for (message, webhook) in made.iter().zip(&webhooks) {
            assert_eq!(&message.delivery.webhook_id, webhook);
            assert_eq!(
                message.delivery.delivery_id,
                ids::delivery_id(&event.id, webhook, event.received_at.into())
            );
            assert_eq!(message.body.as_deref(), Some(r#"{"id":"evt_1"}"#));
            assert!(message.fresh);
        }
        let distinct: BTreeSet<_> = made.iter().map(|m| &m.delivery.delivery_id).collect();
        assert_eq!(distinct.len(), 1_234);
        assert_eq!(messages(&event, &[], true).count(), 0);
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
