//! Events: stored once, with the exact body every attempt sends and the webhooks it goes to.
//!
//! The body is stored deflated when that makes it smaller: DynamoDB bills a write per started
//! 1 KB of item, and a 1 KB JSON event deflates to about 600 bytes, so its item stays within
//! one write unit. Bodies are read back byte for byte; items written before (a plain
//! `payload`) read as they are.
//!
//! The webhooks are in the event's item while they are few ([`Paging::max_inline`]); more
//! are written in page items of the same table (`<event id>#webhooks#<n>`: `#` is in no
//! event id), together with the event in one transaction, so the event is still one durable
//! write that either happened whole or not at all. Every event read pays for the item's size
//! (deliver's, the log's, the alerter's), which is why a long list does not stay inline.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{
    deflated, from_item, inflated, item_size, s, to_item, Item, Store, StoreError,
    MAX_TRANSACTION_BYTES, MAX_TRANSACTION_ITEMS,
};
use crate::adapters::backoff::Backoff;
use crate::domain::clock::Timestamp;
use crate::domain::ids::{EventId, WebhookId};
use crate::domain::model::EventRecord;

/// Where an event's webhooks are written: in its item, or in pages beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Up to this many webhooks stay in the event's item (one conditional `PutItem`).
    pub max_inline: usize,
    /// More are written in page items of at most this many, with the event, in one
    /// `TransactWriteItems`.
    pub per_page: usize,
}

impl Paging {
    /// 1,000 webhook ids take ~30 KB (30 bytes each in a list): an event read stays cheap,
    /// and any event (256 KiB at most) with them fits an item. A page of 5,000 is ~150 KB,
    /// well within the 400 KB item limit; the transaction's 4 MB then binds near 135,000
    /// webhooks (~131,000 for the largest events), long before its 100 items (495,000).
    pub const DEFAULT: Paging = Paging {
        max_inline: 1_000,
        per_page: 5_000,
    };
}

impl Default for Paging {
    fn default() -> Self {
        Paging::DEFAULT
    }
}

/// One page of an event's webhooks, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct StoredPage {
    /// `<event id>#webhooks#<n>`, n from 1.
    id: String,
    event_id: EventId,
    page: u32,
    webhooks: Vec<WebhookId>,
    expires_at: i64,
}

/// The key of page `n` (from 1) of `event`'s webhooks.
fn page_key(event: &EventId, n: u32) -> String {
    format!("{event}#webhooks#{n}")
}

/// Whether an events-table stream image is a page of an event's webhooks (written with its
/// event, which is the record to fan out), not an event.
pub fn is_webhook_page(image: &serde_dynamo::Item) -> bool {
    matches!(image.get("id"), Some(serde_dynamo::AttributeValue::S(id)) if id.contains('#'))
}

/// An event item as stored: [`EventRecord`] with its body in one of two forms.
#[derive(Debug, Serialize, Deserialize)]
struct StoredEvent {
    id: EventId,
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_id: Option<String>,
    /// The body as is, when deflating would not make it smaller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    /// The body, raw deflate.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    payload_deflate: Option<Vec<u8>>,
    fingerprint: String,
    received_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhooks: Option<Vec<WebhookId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deliveries: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    webhook_pages: Option<u32>,
    expires_at: i64,
}

impl From<&EventRecord> for StoredEvent {
    fn from(event: &EventRecord) -> Self {
        let payload_deflate = deflated(&event.payload);
        StoredEvent {
            id: event.id.clone(),
            event_type: event.event_type.clone(),
            resource_id: event.resource_id.clone(),
            payload: payload_deflate.is_none().then(|| event.payload.clone()),
            payload_deflate,
            fingerprint: event.fingerprint.clone(),
            received_at: event.received_at,
            webhooks: event.webhooks.clone(),
            deliveries: event.deliveries,
            webhook_pages: (event.webhook_pages > 0).then_some(event.webhook_pages),
            expires_at: event.expires_at,
        }
    }
}

impl TryFrom<StoredEvent> for EventRecord {
    type Error = StoreError;

    fn try_from(stored: StoredEvent) -> Result<Self, StoreError> {
        let payload = match (stored.payload, stored.payload_deflate) {
            (Some(payload), _) => payload,
            (None, Some(bytes)) => inflated(&bytes)?,
            (None, None) => {
                return Err(StoreError::Corrupt(format!(
                    "event {} has no body",
                    stored.id
                )))
            }
        };
        Ok(EventRecord {
            id: stored.id,
            event_type: stored.event_type,
            resource_id: stored.resource_id,
            payload,
            fingerprint: stored.fingerprint,
            received_at: stored.received_at,
            webhooks: stored.webhooks,
            deliveries: stored.deliveries,
            webhook_pages: stored.webhook_pages.unwrap_or(0),
            expires_at: stored.expires_at,
        })
    }
}

/// The event an events-table stream record carries as its new image (as Lambda hands it
/// over), read as [`Store::get_event`] reads the item.
pub fn event_from_image(image: serde_dynamo::Item) -> Result<EventRecord, StoreError> {
    let stored: StoredEvent = serde_dynamo::from_item(image)?;
    stored.try_into()
}

/// An event as its items, encoded (and its body deflated) once: so a batch can be checked
/// to fit before any of it is written.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    id: EventId,
    item: Item,
    /// The pages of its webhooks, when they are not in `item`.
    pages: Vec<Item>,
}

impl EncodedEvent {
    /// `event` as it is (its `webhooks`, if any, laid out by [`Paging::DEFAULT`]). Fails
    /// with [`StoreError::TooLarge`] when DynamoDB would refuse the item.
    pub fn of(event: &EventRecord) -> Result<Self, StoreError> {
        match &event.webhooks {
            Some(webhooks) => Self::with_webhooks(event, webhooks, Paging::DEFAULT),
            None => Ok(EncodedEvent {
                id: event.id.clone(),
                item: to_item(&StoredEvent::from(event))?,
                pages: Vec::new(),
            }),
        }
    }

    /// `event` (its own `webhooks`, `deliveries` and `webhook_pages` ignored) to be
    /// delivered to `webhooks`: in its item while they are at most `paging.max_inline`,
    /// else in pages written with it. Fails with [`StoreError::TooLarge`] when DynamoDB
    /// would refuse an item, [`StoreError::TransactionTooLarge`] when it would refuse the
    /// transaction (too many webhooks for one event).
    pub fn with_webhooks(
        event: &EventRecord,
        webhooks: &[WebhookId],
        paging: Paging,
    ) -> Result<Self, StoreError> {
        let mut stored = StoredEvent::from(event);
        if webhooks.len() <= paging.max_inline {
            stored.webhooks = Some(webhooks.to_vec());
            stored.deliveries = None;
            stored.webhook_pages = None;
            return Ok(EncodedEvent {
                id: event.id.clone(),
                item: to_item(&stored)?,
                pages: Vec::new(),
            });
        }
        let chunks = webhooks.chunks(paging.per_page.max(1));
        // Counted before anything is encoded: a type with far too many webhooks costs no
        // more than the answer.
        let items = 1 + chunks.len();
        let list_bytes: usize = webhooks.iter().map(|w| 1 + w.as_str().len()).sum();
        if items > MAX_TRANSACTION_ITEMS || list_bytes > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TransactionTooLarge {
                items,
                bytes: list_bytes,
            });
        }
        // Both below 4 MB / 2 bytes by now.
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        stored.webhooks = None;
        stored.deliveries = Some(count(webhooks.len()));
        stored.webhook_pages = Some(count(chunks.len()));
        let item = to_item(&stored)?;
        let pages = chunks
            .zip(1..)
            .map(|(chunk, n)| {
                to_item(&StoredPage {
                    id: page_key(&event.id, n),
                    event_id: event.id.clone(),
                    page: n,
                    webhooks: chunk.to_vec(),
                    expires_at: event.expires_at,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = item_size(&item) + pages.iter().map(item_size).sum::<usize>();
        if bytes > MAX_TRANSACTION_BYTES {
            return Err(StoreError::TransactionTooLarge { items, bytes });
        }
        Ok(EncodedEvent {
            id: event.id.clone(),
            item,
            pages,
        })
    }

    /// How many page items its webhooks take (0: they are in the event's item).
    pub fn pages(&self) -> usize {
        self.pages.len()
    }
}

/// How many pages of one event are read at once.
const CONCURRENT_PAGE_READS: usize = 8;

impl Store {
    // ---- events ----

    /// Stores a new event. When the id exists already, returns the stored event instead.
    pub async fn put_event_if_new(
        &self,
        event: &EventRecord,
    ) -> Result<Option<EventRecord>, StoreError> {
        self.put_encoded_event_if_new(EncodedEvent::of(event)?)
            .await
    }

    /// [`Store::put_event_if_new`] for an event encoded beforehand: one conditional
    /// `PutItem`, or with its pages one `TransactWriteItems` whose event put keeps the
    /// condition (the pages are put as they are: a page left over from an expired event of
    /// the same id is replaced).
    pub async fn put_encoded_event_if_new(
        &self,
        event: EncodedEvent,
    ) -> Result<Option<EventRecord>, StoreError> {
        let written = if event.pages.is_empty() {
            self.put_if_absent(&self.tables.events_table, event.item, "id")
                .await?
        } else {
            // A resend of a stored event is read first (one read unit) rather than found
            // by a cancelled transaction, which bills its hundreds of KB of pages as writes
            // (and which moto undoes by restoring a copy of the whole table, stream
            // included: the local stream reader then reads a stream nobody writes to).
            if let Some(stored) = self.get_event(&event.id).await? {
                return Ok(Some(stored));
            }
            // A cancellation for a passing reason (another request writing the same event
            // at this moment) is tried again: then it finds the event stored, or writes it.
            Backoff::default()
                .retry(
                    || self.transact_event(&event),
                    |err| matches!(err, StoreError::Cancelled(_)),
                )
                .await?
        };
        if written {
            return Ok(None);
        }
        self.get_event(&event.id).await
    }

    /// The event and its pages in one transaction: true if written, false if the event
    /// was stored already (its condition failed, so nothing was written).
    async fn transact_event(&self, event: &EncodedEvent) -> Result<bool, StoreError> {
        let put = |item: &Item| {
            Put::builder()
                .table_name(&self.tables.events_table)
                .set_item(Some(item.clone()))
        };
        let mut actions = vec![TransactWriteItem::builder()
            .put(
                put(&event.item)
                    .condition_expression("attribute_not_exists(id)")
                    .build()?,
            )
            .build()];
        for page in &event.pages {
            actions.push(TransactWriteItem::builder().put(put(page).build()?).build());
        }
        let sent = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        let err = match sent {
            Ok(_) => return Ok(true),
            Err(err) => err,
        };
        let codes: Vec<String> = match err.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => cancelled
                .cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_owned())
                .collect(),
            _ => return Err(err.into()),
        };
        // The event's own action comes first: its condition failed, so it is stored.
        if codes.first().map(String::as_str) == Some("ConditionalCheckFailed") {
            return Ok(false);
        }
        let passing = [
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
            "RequestLimitExceeded",
        ];
        if codes.iter().any(|code| passing.contains(&code.as_str())) {
            return Err(StoreError::Cancelled(codes.join(", ")));
        }
        Err(err.into())
    }

    pub async fn get_event(&self, id: &EventId) -> Result<Option<EventRecord>, StoreError> {
        let stored = self
            .ddb
            .get_item()
            .table_name(&self.tables.events_table)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await?;
        stored
            .item
            .map(|item| from_item::<StoredEvent>(item)?.try_into())
            .transpose()
    }

    /// The webhooks `event` was stored with, in order: from its item, or read from its pages
    /// (strongly consistent: they were written with it). An event without any (stored
    /// before events kept them) has none.
    pub async fn event_webhooks(&self, event: &EventRecord) -> Result<Vec<WebhookId>, StoreError> {
        if event.webhook_pages == 0 {
            return Ok(event.webhooks.clone().unwrap_or_default());
        }
        let pages: Vec<Vec<WebhookId>> = futures::stream::iter(1..=event.webhook_pages)
            .map(|n| self.webhook_page(&event.id, n))
            .buffered(CONCURRENT_PAGE_READS)
            .try_collect()
            .await?;
        let webhooks: Vec<WebhookId> = pages.into_iter().flatten().collect();
        let expected = event.deliveries.unwrap_or(0) as usize;
        if webhooks.len() != expected {
            return Err(StoreError::Corrupt(format!(
                "event {} has {} webhooks in its {} pages, not the {expected} it was stored with",
                event.id,
                webhooks.len(),
                event.webhook_pages
            )));
        }
        Ok(webhooks)
    }

    async fn webhook_page(&self, event: &EventId, n: u32) -> Result<Vec<WebhookId>, StoreError> {
        let page: Option<StoredPage> = self
            .get_by_id(&self.tables.events_table, &page_key(event, n))
            .await?;
        match page {
            Some(page) => Ok(page.webhooks),
            None => Err(StoreError::Corrupt(format!(
                "page {n} of event {event}'s webhooks is missing"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(payload: &str) -> EventRecord {
        EventRecord {
            id: EventId::from("evt_1".to_owned()),
            event_type: "order.completed".into(),
            resource_id: Some("ord_1".into()),
            payload: payload.into(),
            fingerprint: "f".repeat(64),
            received_at: Timestamp::parse("2026-11-27T03:00:00.000Z").expect("time"),
            webhooks: Some(vec![WebhookId::from("wh_1".to_owned())]),
            deliveries: None,
            webhook_pages: 0,
            expires_at: 1,
        }
    }

    /// `n` webhook ids as ours look (`wh_` and a ULID: 29 characters).
    fn webhook_ids(n: usize) -> Vec<WebhookId> {
        (0..n)
            .map(|i| WebhookId::from(format!("wh_01jdq8z3x4y5w6v7u8t9{i:06}")))
            .inspect(|id| debug_assert_eq!(id.as_str().len(), 29))
            .collect()
    }

    fn round_trip(event: &EventRecord) -> (super::super::Item, EventRecord) {
        let item = to_item(&StoredEvent::from(event)).expect("item");
        let back = from_item::<StoredEvent>(item.clone())
            .expect("stored")
            .try_into()
            .expect("record");
        (item, back)
    }

    #[test]
    fn a_body_that_deflates_is_stored_deflated_and_reads_back_byte_for_byte() {
        let body = format!(
            r#"{{"id":"evt_1","type":"order.completed","data":{{"tickets":[{}], "n": 1e15}}}}"#,
            (1..200)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let (item, back) = round_trip(&event(&body));
        assert!(item.contains_key("payload_deflate"), "{item:?}");
        assert!(!item.contains_key("payload"));
        let stored = item["payload_deflate"]
            .as_b()
            .expect("binary")
            .as_ref()
            .len();
        assert!(stored < body.len() * 3 / 4, "{stored} of {}", body.len());
        assert_eq!(back.payload, body);
    }

    #[test]
    fn a_stream_image_as_lambda_sends_it_reads_as_the_stored_event() {
        // Deflated (binary, base64 in Lambda's JSON) and plain bodies both.
        for body in [format!(r#"{{"data":"{}"}}"#, "ab".repeat(400)), "{}".into()] {
            let record = event(&body);
            let image: serde_dynamo::Item =
                serde_dynamo::to_item(StoredEvent::from(&record)).expect("image");
            let json = serde_json::to_string(&image).expect("json");
            let sent: serde_dynamo::Item = serde_json::from_str(&json).expect("as sent");
            assert_eq!(event_from_image(sent).expect("event"), record);
        }
        let empty = serde_dynamo::Item::from(std::collections::HashMap::<
            String,
            serde_dynamo::AttributeValue,
        >::new());
        assert!(event_from_image(empty).is_err());
    }

    #[test]
    fn an_event_with_few_webhooks_keeps_them_in_its_item() {
        let record = event("{}");
        let webhooks = webhook_ids(Paging::DEFAULT.max_inline);
        let encoded = EncodedEvent::with_webhooks(&record, &webhooks, Paging::DEFAULT).unwrap();
        assert_eq!(encoded.pages(), 0);
        let back: EventRecord = from_item::<StoredEvent>(encoded.item)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(back.webhooks.as_deref(), Some(webhooks.as_slice()));
        assert_eq!((back.deliveries, back.webhook_pages), (None, 0));
        // The event as it is: its own list, or none at all (as before events kept them).
        assert_eq!(EncodedEvent::of(&record).unwrap().pages(), 0);
        let mut bare = record.clone();
        bare.webhooks = None;
        let item = EncodedEvent::of(&bare).unwrap().item;
        assert!(!item.contains_key("webhooks"), "{item:?}");
    }

    #[test]
    fn more_webhooks_go_to_pages_that_cover_them_once_in_order() {
        let record = event("{}");
        let paging = Paging {
            max_inline: 2,
            per_page: 3,
        };
        for (n, pages) in [(3, 1), (6, 2), (7, 3), (10, 4)] {
            let webhooks = webhook_ids(n);
            let encoded = EncodedEvent::with_webhooks(&record, &webhooks, paging).unwrap();
            assert_eq!(encoded.pages(), pages, "{n} webhooks");
            let back: EventRecord = from_item::<StoredEvent>(encoded.item.clone())
                .unwrap()
                .try_into()
                .unwrap();
            assert_eq!(back.webhooks, None);
            assert_eq!(back.deliveries, Some(n as u32));
            assert_eq!(back.webhook_pages, pages as u32);
            let mut listed = Vec::new();
            for (i, page) in encoded.pages.iter().enumerate() {
                let page: StoredPage = from_item(page.clone()).unwrap();
                assert_eq!(page.id, format!("evt_1#webhooks#{}", i + 1));
                assert_eq!(page.page as usize, i + 1);
                assert_eq!(page.event_id, record.id);
                assert_eq!(page.expires_at, record.expires_at);
                assert!(page.webhooks.len() <= 3);
                listed.extend(page.webhooks);
            }
            assert_eq!(listed, webhooks);
        }
    }

    #[test]
    fn a_page_is_no_event_and_no_event_id_makes_a_page_key() {
        let page = to_item(&StoredPage {
            id: page_key(&EventId::from("evt_1"), 2),
            event_id: EventId::from("evt_1"),
            page: 2,
            webhooks: webhook_ids(2),
            expires_at: 1,
        })
        .unwrap();
        let image: serde_dynamo::Item =
            serde_dynamo::to_item(from_item::<serde_json::Value>(page.clone()).unwrap()).unwrap();
        assert!(is_webhook_page(&image));
        assert!(
            event_from_image(image).is_err(),
            "a page does not read as an event"
        );
        let event_image: serde_dynamo::Item =
            serde_dynamo::to_item(StoredEvent::from(&event("{}"))).unwrap();
        assert!(!is_webhook_page(&event_image));
        assert!(!crate::domain::ids::is_valid_event_id("evt_1#webhooks#1"));
    }

    #[test]
    fn ten_thousand_webhooks_fit_pages_well_within_the_item_limit() {
        let record = event(&"x".repeat(200));
        let webhooks = webhook_ids(10_000);
        let encoded = EncodedEvent::with_webhooks(&record, &webhooks, Paging::DEFAULT).unwrap();
        assert_eq!(encoded.pages(), 2);
        for page in &encoded.pages {
            let bytes = item_size(page);
            assert!((140_000..=160_000).contains(&bytes), "{bytes}");
        }
        assert!(item_size(&encoded.item) < 1_024);
    }

    #[test]
    fn a_type_with_more_webhooks_than_one_transaction_takes_is_refused_before_writing() {
        // The largest event the API takes: 256 KiB of data that does not deflate.
        let mut seed = 7u64;
        let noise: String = (0..256 * 1024)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                char::from(b'!' + ((seed >> 33) % 90) as u8)
            })
            .collect();
        let largest = event(&noise);
        let smallest = event("{}");
        // 4 MB of transaction: ~135,000 ids of 30 bytes with a small event, fewer with the
        // largest; the 100 items bind only with much smaller pages.
        for (record, fits, refused) in [(&smallest, 135_000, 140_000), (&largest, 130_000, 135_000)]
        {
            let fitting = EncodedEvent::with_webhooks(record, &webhook_ids(fits), Paging::DEFAULT);
            assert!(fitting.is_ok(), "{fits}: {fitting:?}");
            match EncodedEvent::with_webhooks(record, &webhook_ids(refused), Paging::DEFAULT) {
                Err(err @ StoreError::TransactionTooLarge { .. }) => assert!(!err.is_retryable()),
                other => panic!("{refused}: expected TransactionTooLarge, got {other:?}"),
            }
        }
        let small_pages = Paging {
            max_inline: 0,
            per_page: 10,
        };
        assert!(EncodedEvent::with_webhooks(&smallest, &webhook_ids(990), small_pages).is_ok());
        assert!(matches!(
            EncodedEvent::with_webhooks(&smallest, &webhook_ids(991), small_pages),
            Err(StoreError::TransactionTooLarge { items: 101, .. })
        ));
    }

    #[test]
    fn a_body_that_does_not_deflate_is_stored_as_is() {
        let (item, back) = round_trip(&event("{}"));
        assert_eq!(item["payload"].as_s().expect("text"), "{}");
        assert!(!item.contains_key("payload_deflate"));
        assert_eq!(back.payload, "{}");
    }

    #[test]
    fn a_damaged_body_is_an_error_not_a_panic() {
        let mut item = to_item(&StoredEvent::from(&event(&"x".repeat(500)))).expect("item");
        item.insert(
            "payload_deflate".into(),
            aws_sdk_dynamodb::types::AttributeValue::B(vec![0xff, 0x00, 0x13].into()),
        );
        let stored = from_item::<StoredEvent>(item).expect("stored");
        assert!(EventRecord::try_from(stored).is_err());
    }
}
