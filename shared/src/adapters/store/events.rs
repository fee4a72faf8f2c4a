//! Events: stored once, with the exact body every attempt sends.
//!
//! The body is stored deflated when that makes it smaller: DynamoDB bills a write per started
//! 1 KB of item, and a 1 KB JSON event deflates to about 600 bytes, so its item stays within
//! one write unit. Bodies are read back byte for byte; items written before (a plain
//! `payload`) read as they are.

use serde::{Deserialize, Serialize};

use super::{deflated, from_item, inflated, s, to_item, Store, StoreError};
use crate::domain::clock::Timestamp;
use crate::domain::ids::{EventId, WebhookId};
use crate::domain::model::EventRecord;

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

/// An event as its item, encoded (and its body deflated) once: so a batch can be checked
/// to fit before any of it is written.
#[derive(Debug, Clone)]
pub struct EncodedEvent {
    id: EventId,
    item: super::Item,
}

impl EncodedEvent {
    /// Fails with [`StoreError::TooLarge`] when DynamoDB would refuse the item.
    pub fn of(event: &EventRecord) -> Result<Self, StoreError> {
        Ok(EncodedEvent {
            id: event.id.clone(),
            item: to_item(&StoredEvent::from(event))?,
        })
    }
}

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

    /// [`Store::put_event_if_new`] for an event encoded beforehand.
    pub async fn put_encoded_event_if_new(
        &self,
        event: EncodedEvent,
    ) -> Result<Option<EventRecord>, StoreError> {
        if self
            .put_if_absent(&self.tables.events_table, event.item, "id")
            .await?
        {
            return Ok(None);
        }
        self.get_event(&event.id).await
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
            expires_at: 1,
        }
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
    fn an_event_that_would_pass_the_item_limit_is_refused_before_it_is_written() {
        let mut record = event("{}");
        record.webhooks = Some(
            (0..15_000)
                .map(|i| WebhookId::from(format!("wh_01JDQ8Z3X4Y5W6V7U8T9S{i:05}")))
                .collect(),
        );
        match EncodedEvent::of(&record) {
            Err(StoreError::TooLarge { bytes }) => assert!(bytes > 400 * 1024, "{bytes}"),
            other => panic!("expected TooLarge, got {other:?}"),
        }
        record.webhooks = Some(vec![WebhookId::from("wh_1".to_owned()); 1_000]);
        assert!(EncodedEvent::of(&record).is_ok());
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
