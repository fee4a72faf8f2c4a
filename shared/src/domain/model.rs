//! What is stored: webhooks, subscriptions, events, deliveries and their attempts, and the
//! message that carries a delivery through the queue.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookStatus {
    Active,
    Paused,
}

/// A webhook as stored in the webhooks table. The secret is only ever stored encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        crate::domain::ids::attempt_id(&self.delivery_id, self.attempt)
    }

    /// A new log line for attempt `number` of `delivery`, made at `now`: failed, with no
    /// request yet. The caller fills in what happened.
    pub fn line(
        delivery: &DeliveryMessage,
        number: u32,
        now: std::time::SystemTime,
        retention: std::time::Duration,
    ) -> Self {
        let at = crate::domain::clock::rfc3339_millis(now);
        AttemptRecord {
            delivery_id: delivery.delivery_id.clone(),
            attempt: number,
            webhook_id: delivery.webhook_id.clone(),
            at_key: format!(
                "{at}#{}",
                crate::domain::ids::attempt_id(&delivery.delivery_id, number)
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
            expires_at: crate::domain::clock::expiry(now, retention),
        }
    }
}
