//! What is stored (records) and what the API answers (views).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    Paused,
}

/// A webhook as stored in the webhooks table. The secret is only ever stored encrypted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub status: WebhookStatus,
    /// Base64 of the KMS ciphertext (encryption context: this webhook's id).
    pub secret_ciphertext: String,
    pub secret_hint: String,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped on every change; updates are conditional on it (optimistic locking).
    #[serde(default)]
    pub revision: u64,
}

/// One item per (event type, webhook): finding an event's subscribers is a single query,
/// whatever the number of webhooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    pub event_type: String,
    pub webhook_id: String,
    pub active: bool,
}

/// An event as received; `payload` holds the exact body bytes every receiver gets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub payload: String,
    /// Hash of type + data, to tell a retry of the same event from a clash of ids.
    pub fingerprint: String,
    pub received_at: String,
    /// Set once the fan-out is complete: the number of deliveries made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

/// One event to one webhook. Its state is not stored here: it is the state recorded by its
/// latest attempt, so a successful delivery costs one write here and one attempt write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub manual: bool,
    pub created_at: String,
    pub expires_at: i64,
}

/// The SQS message of a delivery: everything `deliver` needs besides the stored items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default)]
    pub manual: bool,
    /// When the delivery was made, to measure delivery latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl From<&DeliveryRecord> for DeliveryMessage {
    fn from(d: &DeliveryRecord) -> Self {
        DeliveryMessage {
            delivery_id: d.id.clone(),
            webhook_id: d.webhook_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            resource_id: d.resource_id.clone(),
            manual: d.manual,
            created_at: Some(d.created_at.clone()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// At most 16 KiB of the body (lossy UTF-8).
    pub body: String,
    pub truncated: bool,
}

/// One line of the delivery log: an HTTP attempt, or a delivery cancelled at its turn.
/// Keyed by (delivery id, attempt number), which makes recording an attempt idempotent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub delivery_id: String,
    pub attempt: u32,
    pub webhook_id: String,
    /// Sort key of the per-webhook log index: `at` then the attempt id.
    pub at_key: String,
    pub event_id: String,
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: String,
    pub manual: bool,
    /// The delivery's state once this attempt was made.
    pub delivery_state: DeliveryState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    // Not projected into the log index; present when read from the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RecordedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    #[serde(default)]
    pub expires_at: i64,
}

impl AttemptRecord {
    pub fn id(&self) -> String {
        crate::ids::attempt_id(&self.delivery_id, self.attempt)
    }

    /// A new log line for attempt `number` of `delivery`, made at `now`: failed, with no
    /// request yet. The caller fills in what happened.
    pub fn line(
        delivery: &DeliveryMessage,
        number: u32,
        now: std::time::SystemTime,
        retention: std::time::Duration,
    ) -> Self {
        let at = crate::clock::rfc3339_millis(now);
        AttemptRecord {
            delivery_id: delivery.delivery_id.clone(),
            attempt: number,
            webhook_id: delivery.webhook_id.clone(),
            at_key: format!(
                "{at}#{}",
                crate::ids::attempt_id(&delivery.delivery_id, number)
            ),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            resource_id: delivery.resource_id.clone(),
            outcome: AttemptOutcome::Failed,
            response_status: None,
            error: None,
            duration_ms: 0,
            at,
            manual: delivery.manual,
            delivery_state: DeliveryState::Pending,
            next_attempt_at: None,
            request: None,
            response: None,
            expires_at: crate::clock::expiry(now, retention),
        }
    }
}

// ---- API views (SPEC §6) ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDelivery {
    pub at: String,
    pub ok: bool,
    pub response_status: Option<u16>,
    pub error: Option<String>,
}

impl From<&AttemptRecord> for LastDelivery {
    fn from(a: &AttemptRecord) -> Self {
        LastDelivery {
            at: a.at.clone(),
            ok: a.outcome == AttemptOutcome::Succeeded,
            response_status: a.response_status,
            error: a.error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub status: WebhookStatus,
    pub secret_hint: String,
    pub created_at: String,
    pub updated_at: String,
    pub last_delivery: Option<LastDelivery>,
}

impl WebhookView {
    pub fn new(w: &WebhookRecord, last_delivery: Option<LastDelivery>) -> Self {
        WebhookView {
            id: w.id.clone(),
            name: w.name.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            status: w.status,
            secret_hint: w.secret_hint.clone(),
            created_at: w.created_at.clone(),
            updated_at: w.updated_at.clone(),
            last_delivery,
        }
    }
}

/// The one answer that carries the full secret: creation (and rotation).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptView {
    pub id: String,
    pub delivery_id: String,
    pub event_id: String,
    pub event_type: String,
    pub resource_id: Option<String>,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: String,
    pub manual: bool,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        AttemptView {
            id: a.id(),
            delivery_id: a.delivery_id.clone(),
            event_id: a.event_id.clone(),
            event_type: a.event_type.clone(),
            resource_id: a.resource_id.clone(),
            attempt: a.attempt,
            outcome: a.outcome,
            response_status: a.response_status,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
            at: a.at.clone(),
            manual: a.manual,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestView {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptDetailView {
    #[serde(flatten)]
    pub attempt: AttemptView,
    pub request: Option<RequestView>,
    pub response: Option<RecordedResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryView {
    pub id: String,
    pub event_id: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub manual: bool,
}

impl DeliveryView {
    /// A delivery's state is the one its latest attempt recorded (`pending` before any).
    pub fn new(delivery: &DeliveryRecord, attempts: &[AttemptRecord]) -> Self {
        let latest = attempts.iter().max_by_key(|a| a.attempt);
        let state = latest.map_or(DeliveryState::Pending, |a| a.delivery_state);
        DeliveryView {
            id: delivery.id.clone(),
            event_id: delivery.event_id.clone(),
            state,
            attempts: attempts.len() as u32,
            next_attempt_at: latest
                .filter(|a| a.delivery_state == DeliveryState::Retrying)
                .and_then(|a| a.next_attempt_at.clone()),
            manual: delivery.manual,
        }
    }
}
