//! What the admin API answers (SPEC §6), made from the stored records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use webhooks_shared::model::{
    AttemptOutcome, AttemptRecord, DeliveryRecord, DeliveryState, RecordedResponse, WebhookRecord,
    WebhookStatus,
};

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
