//! What is stored: webhooks, subscriptions, events, deliveries and their attempts, and the
//! message that carries a delivery through the queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::clock::{self, Timestamp};
use crate::domain::ids::{DeliveryId, EventId, WebhookId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    Paused,
}

/// A webhook as stored in the webhooks table. The secret is only ever stored encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: WebhookId,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub status: WebhookStatus,
    /// Base64 of the KMS ciphertext (encryption context: this webhook's id).
    pub secret_ciphertext: String,
    pub secret_hint: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped on every change; updates are conditional on it (optimistic locking).
    #[serde(default)]
    pub revision: u64,
    /// The endpoint's circuit breaker (`domain::circuit`), written by `deliver` alone and
    /// absent while the endpoint answers: attempts in a row that got no answer...
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures_in_row: u32,
    /// ...since when the circuit is open (none: closed)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_opened_at: Option<Timestamp>,
    /// ...when the next test request may go while it is open...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_at: Option<Timestamp>,
    /// ...and the last error that counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// When an attempt last waited long for an answer (cleared by any answer): while this
    /// is recent, attempts take one of a few slots (`circuit::MAX_IN_FLIGHT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_answer_since: Option<Timestamp>,
}

impl WebhookRecord {
    /// A webhook as created: revision 0, and its endpoint's circuit closed with nothing
    /// counted.
    pub fn created(id: WebhookId, new: NewWebhook, secret: StoredSecret, at: Timestamp) -> Self {
        WebhookRecord {
            id,
            name: new.name,
            url: new.url,
            events: new.events,
            status: if new.active {
                WebhookStatus::Active
            } else {
                WebhookStatus::Paused
            },
            secret_ciphertext: secret.ciphertext,
            secret_hint: secret.hint,
            created_at: at,
            updated_at: at,
            revision: 0,
            failures_in_row: 0,
            circuit_opened_at: None,
            probe_at: None,
            last_failure: None,
            awaiting_answer_since: None,
        }
    }
}

/// What an admin chooses for a new webhook, checked (admin-api's create).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// false creates it paused.
    pub active: bool,
}

/// A webhook's signing secret as its record keeps it: sealed, and the hint admins see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// Base64 of the KMS ciphertext (encryption context: the webhook's id).
    pub ciphertext: String,
    pub hint: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One item per (event type, webhook): finding an event's subscribers is a single query,
/// whatever the number of webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub event_type: String,
    pub webhook_id: WebhookId,
    pub active: bool,
}

/// An event as received; `payload` holds the exact body bytes every receiver gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub payload: String,
    /// Hash of type + data, to tell a retry of the same event from a clash of ids.
    pub fingerprint: String,
    pub received_at: Timestamp,
    /// The webhooks subscribed (and active) when the event was accepted: one delivery each,
    /// fixed with the event in its one write. Read back as stored in the event's item; an
    /// event with more than fit there reads `None` here and has `webhook_pages`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<WebhookId>>,
    /// The number of deliveries when `webhooks` is not in the item: items written before
    /// `webhooks` existed (set by an update once their fan-out was complete), and events
    /// whose webhooks are in pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
    /// How many page items hold this event's webhooks (written with it, in one transaction:
    /// `Store::event_webhooks` reads them); 0 when they are in `webhooks`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub webhook_pages: u32,
    pub expires_at: i64,
}

/// The body every receiver gets (SPEC §4), in this field order, with `data` byte for byte
/// as it was posted (or as the catalogue's example is written, for a test event).
#[derive(Debug, Serialize)]
pub struct EventBody<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub created_at: &'a str,
    pub data: &'a serde_json::value::RawValue,
}

impl EventBody<'_> {
    /// The exact bytes stored once and sent on every attempt.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Retrying,
    Succeeded,
    PermanentlyFailed,
    Cancelled,
}

impl DeliveryState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeliveryState::Succeeded | DeliveryState::PermanentlyFailed | DeliveryState::Cancelled
        )
    }
}

/// Which delivery: the fields that travel together from the delivery to its queue message,
/// its log lines and its failure notice. Embedded flattened, so the stored and sent shapes
/// are those of the fields side by side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRef {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub manual: bool,
}

/// One event to one webhook. Its state is not stored here: it is the state recorded by its
/// latest attempt, so a successful delivery costs one write here and one attempt write.
/// Stored with the delivery id as `id` (the table's key), so the [`DeliveryRef`] fields are
/// kept side by side here rather than embedded: see [`DeliveryRecord::new`] and
/// [`DeliveryRecord::delivery`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub manual: bool,
    pub created_at: Timestamp,
    pub expires_at: i64,
}

impl DeliveryRecord {
    /// The record of `delivery`, made at `now` and kept for `retention`.
    pub fn new(
        delivery: DeliveryRef,
        now: std::time::SystemTime,
        retention: std::time::Duration,
    ) -> Self {
        let DeliveryRef {
            delivery_id,
            webhook_id,
            event_id,
            event_type,
            resource_id,
            manual,
        } = delivery;
        DeliveryRecord {
            id: delivery_id,
            webhook_id,
            event_id,
            event_type,
            resource_id,
            manual,
            created_at: Timestamp::from(now),
            expires_at: clock::expiry(now, retention),
        }
    }

    /// Which delivery this is.
    pub fn delivery(&self) -> DeliveryRef {
        DeliveryRef {
            delivery_id: self.id.clone(),
            webhook_id: self.webhook_id.clone(),
            event_id: self.event_id.clone(),
            event_type: self.event_type.clone(),
            resource_id: self.resource_id.clone(),
            manual: self.manual,
        }
    }
}

/// The SQS message of a delivery: everything `deliver` needs besides the stored items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    /// When the delivery was made, to measure delivery latency (unreadable text: none).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clock::lenient"
    )]
    pub created_at: Option<Timestamp>,
    /// The event's body, when it is small enough to ride along (see
    /// [`DeliveryMessage::with_body`]): `deliver` then reads no event item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Sent by fan-out soon enough after the event was stored that any other copy of it was
    /// sent within SQS's deduplication interval (and so dropped): on its first receive, its
    /// delivery cannot have a log line yet, and `deliver` reads none.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
}

/// The most a body may take in a message, as JSON text: ten such messages stay well inside
/// SQS's 256 KiB per batch and within one 64 KiB billing chunk for typical 1 KB events.
pub const MAX_BODY_IN_MESSAGE: usize = 8 * 1024;

impl DeliveryMessage {
    /// The message of `delivery`, made at `created_at`, carrying `body` if its JSON text
    /// (escapes included) is at most [`MAX_BODY_IN_MESSAGE`] bytes.
    pub fn with_body(delivery: DeliveryRef, created_at: Timestamp, body: &str) -> Self {
        let fits = serde_json::to_string(body).is_ok_and(|json| json.len() <= MAX_BODY_IN_MESSAGE);
        DeliveryMessage {
            delivery,
            created_at: Some(created_at),
            body: fits.then(|| body.to_owned()),
            fresh: false,
        }
    }
}

impl From<&DeliveryRecord> for DeliveryMessage {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryMessage {
            delivery: d.delivery(),
            created_at: Some(d.created_at),
            body: None,
            fresh: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub url: String,
    pub headers: BTreeMap<String, String>,
}

/// The receiver's answer as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// At most 16 KiB of the response body (lossy UTF-8).
    pub body: String,
    /// True when the body was cut at 16 KiB.
    pub truncated: bool,
}

/// One line of the delivery log: an HTTP attempt, or a delivery cancelled at its turn.
/// Stored under its webhook, keyed by delivery id and attempt number, which makes recording
/// an attempt idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    #[serde(flatten)]
    pub delivery: DeliveryRef,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: Timestamp,
    /// The delivery's state once this attempt was made.
    pub delivery_state: DeliveryState,
    /// Unreadable text reads as none: the attempt is then due at once.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "clock::lenient"
    )]
    pub next_attempt_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RecordedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    #[serde(default)]
    pub expires_at: i64,
}

impl AttemptRecord {
    pub fn id(&self) -> crate::domain::ids::AttemptId {
        crate::domain::ids::AttemptId::new(self.delivery.delivery_id.clone(), self.attempt)
    }

    /// A new log line for attempt `number` of `delivery`, made at `now`: failed, with no
    /// request yet. The caller fills in what happened.
    pub fn line(
        delivery: &DeliveryRef,
        number: u32,
        now: std::time::SystemTime,
        retention: std::time::Duration,
    ) -> Self {
        let at = Timestamp::from(now);
        AttemptRecord {
            delivery: delivery.clone(),
            attempt: number,
            outcome: AttemptOutcome::Failed,
            response_status: None,
            error: None,
            duration_ms: 0,
            at,
            delivery_state: DeliveryState::Pending,
            next_attempt_at: None,
            request: None,
            response: None,
            expires_at: clock::expiry(now, retention),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, SystemTime};

    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;

    #[test]
    fn a_webhook_as_created_is_at_revision_0_with_its_circuit_closed() {
        let at = Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000));
        let created = |active| {
            let new = NewWebhook {
                name: "CRM".into(),
                url: "https://crm.example.com/hook".into(),
                events: vec!["order.completed".into()],
                active,
            };
            let secret = StoredSecret {
                ciphertext: "c2VhbGVk".into(),
                hint: "whsec_…Qk0=".into(),
            };
            WebhookRecord::created("wh_1".into(), new, secret, at)
        };
        let webhook = created(true);
        assert_eq!(webhook.status, WebhookStatus::Active);
        assert_eq!(created(false).status, WebhookStatus::Paused);
        assert_eq!((webhook.created_at, webhook.updated_at), (at, at));
        assert_eq!(
            (
                webhook.secret_ciphertext.as_str(),
                webhook.secret_hint.as_str()
            ),
            ("c2VhbGVk", "whsec_…Qk0=")
        );
        assert_eq!(webhook.revision, 0);
        assert_eq!(
            crate::domain::circuit::view(&webhook).state,
            crate::domain::circuit::CircuitState::Closed
        );
        assert_eq!(webhook.failures_in_row, 0);
        assert_eq!(webhook.awaiting_answer_since, None);
    }

    fn delivery(resource_id: Option<&str>) -> DeliveryRef {
        DeliveryRef {
            delivery_id: "dlv_1".into(),
            webhook_id: "wh_1".into(),
            event_id: "evt_1".into(),
            event_type: "order.completed".into(),
            resource_id: resource_id.map(str::to_owned),
            manual: true,
        }
    }

    #[test]
    fn the_delivery_message_keeps_its_json() {
        let message = DeliveryMessage {
            delivery: delivery(Some("ord_1")),
            created_at: Timestamp::parse("2026-11-27T03:00:00.000Z"),
            body: None,
            fresh: false,
        };
        let json = r#"{"delivery_id":"dlv_1","webhook_id":"wh_1","event_id":"evt_1","event_type":"order.completed","resource_id":"ord_1","manual":true,"created_at":"2026-11-27T03:00:00.000Z"}"#;
        assert_eq!(serde_json::to_string(&message).unwrap(), json);
        assert_eq!(
            serde_json::from_str::<DeliveryMessage>(json).unwrap(),
            message
        );
        let bare = DeliveryMessage {
            delivery: DeliveryRef {
                manual: false,
                ..delivery(None)
            },
            created_at: None,
            body: None,
            fresh: false,
        };
        let json = r#"{"delivery_id":"dlv_1","webhook_id":"wh_1","event_id":"evt_1","event_type":"order.completed","manual":false}"#;
        assert_eq!(serde_json::to_string(&bare).unwrap(), json);
        let old = r#"{"delivery_id":"dlv_1","webhook_id":"wh_1","event_id":"evt_1","event_type":"order.completed"}"#;
        assert_eq!(serde_json::from_str::<DeliveryMessage>(old).unwrap(), bare);
        let unreadable = r#"{"delivery_id":"dlv_1","webhook_id":"wh_1","event_id":"evt_1","event_type":"order.completed","created_at":"soon"}"#;
        assert_eq!(
            serde_json::from_str::<DeliveryMessage>(unreadable).unwrap(),
            bare,
            "an unreadable created_at does not make the message unreadable"
        );
    }

    #[test]
    fn a_small_body_rides_in_the_message_byte_for_byte_and_a_large_one_does_not() {
        let at = Timestamp::parse("2026-11-27T03:00:00.000Z").expect("time");
        let body = r#"{"id":"evt_1","data":{"total":1.10,"note":"caf\u00e9 \"x\""}}"#;
        let message = DeliveryMessage::with_body(delivery(None), at, body);
        let json = serde_json::to_string(&message).unwrap();
        let back: DeliveryMessage = serde_json::from_str(&json).unwrap();
        assert_eq!(back.body.as_deref(), Some(body));

        let just_fits = "a".repeat(MAX_BODY_IN_MESSAGE - 2); // plus its two quotes
        let message = DeliveryMessage::with_body(delivery(None), at, &just_fits);
        assert_eq!(message.body.as_deref(), Some(just_fits.as_str()));
        let too_long = "a".repeat(MAX_BODY_IN_MESSAGE - 1);
        assert_eq!(
            DeliveryMessage::with_body(delivery(None), at, &too_long).body,
            None
        );
        // Counted as sent: a control character is six bytes of JSON.
        let escaped = "\u{1}".repeat(MAX_BODY_IN_MESSAGE / 5);
        assert_eq!(
            DeliveryMessage::with_body(delivery(None), at, &escaped).body,
            None
        );
    }

    #[test]
    fn ten_messages_with_the_largest_body_fit_one_sqs_batch() {
        let at = Timestamp::parse("2026-11-27T03:00:00.000Z").expect("time");
        let longest_id = "x".repeat(128); // event ids are at most 128 characters
        let delivery = DeliveryRef {
            event_id: longest_id.clone().into(),
            resource_id: Some(longest_id.clone()),
            event_type: longest_id,
            ..delivery(None)
        };
        let body = "a".repeat(MAX_BODY_IN_MESSAGE - 2);
        let one = serde_json::to_string(&DeliveryMessage::with_body(delivery, at, &body)).unwrap();
        assert!(10 * one.len() <= 256 * 1024, "{}", one.len());
    }

    #[test]
    fn the_delivery_record_keeps_its_id_and_gives_its_delivery() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_748_400_123);
        let record = DeliveryRecord::new(delivery(None), now, Duration::from_secs(60));
        assert_eq!(record.id, "dlv_1");
        assert_eq!(record.created_at.to_string(), "2026-11-27T03:00:00.123Z");
        assert_eq!(record.expires_at, 1_795_748_460);
        assert_eq!(record.delivery(), delivery(None));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["id"], "dlv_1");
        assert!(json.get("delivery_id").is_none());
        assert!(json.get("resource_id").is_none());
        let message = DeliveryMessage::from(&record);
        assert_eq!(message.delivery, delivery(None));
        assert_eq!(
            message.created_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-27T03:00:00.123Z")
        );
    }

    #[test]
    fn an_attempt_is_stored_with_the_delivery_fields_side_by_side() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_748_400_123);
        let mut line = AttemptRecord::line(&delivery(Some("ord_1")), 2, now, Duration::ZERO);
        line.response_status = Some(503);
        line.duration_ms = 12;
        line.delivery_state = DeliveryState::Retrying;
        line.next_attempt_at = Timestamp::parse("2026-11-27T03:01:00.123Z");
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(&line).unwrap();
        let s = |v: &str| AttributeValue::S(v.into());
        let n = |v: &str| AttributeValue::N(v.into());
        let expected: HashMap<String, AttributeValue> = [
            ("delivery_id", s("dlv_1")),
            ("webhook_id", s("wh_1")),
            ("event_id", s("evt_1")),
            ("event_type", s("order.completed")),
            ("resource_id", s("ord_1")),
            ("manual", AttributeValue::Bool(true)),
            ("attempt", n("2")),
            ("outcome", s("failed")),
            ("response_status", n("503")),
            ("duration_ms", n("12")),
            ("at", s("2026-11-27T03:00:00.123Z")),
            ("delivery_state", s("retrying")),
            ("next_attempt_at", s("2026-11-27T03:01:00.123Z")),
            ("expires_at", n("1795748400")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(item, expected);
        let back: AttemptRecord = serde_dynamo::from_item(item).unwrap();
        assert_eq!(back, line);

        // As the table holds it: with its sort key, which reading ignores; items written
        // before a field existed read with its default.
        let mut stored = expected.clone();
        stored.insert("line_key".into(), s("dlv_1#0002"));
        stored.remove("resource_id");
        stored.remove("expires_at");
        let back: AttemptRecord = serde_dynamo::from_item(stored).unwrap();
        assert_eq!(back.delivery, delivery(None));
        assert_eq!(back.attempt, 2);
        assert_eq!(back.response_status, Some(503));
    }
}
