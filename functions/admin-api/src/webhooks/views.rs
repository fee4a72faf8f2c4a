//! What the webhook routes answer: a webhook as admins see it (its secret only as a hint,
//! its last delivery, its endpoint's circuit), and the one answer that carries the secret.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use webhooks_shared::domain::circuit::{self, CircuitView};
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::model::{AttemptOutcome, AttemptRecord, WebhookRecord, WebhookStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LastDelivery {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub ok: bool,
    #[schema(required = true, minimum = 100, maximum = 599)]
    pub response_status: Option<u16>,
    #[schema(required = true)]
    pub error: Option<String>,
}

impl From<&AttemptRecord> for LastDelivery {
    fn from(a: &AttemptRecord) -> Self {
        LastDelivery {
            at: a.at,
            ok: a.outcome == AttemptOutcome::Succeeded,
            response_status: a.response_status,
            error: a.error.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: WebhookId,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    pub status: WebhookStatus,
    pub secret_hint: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_delivery: Option<LastDelivery>,
    /// The endpoint's circuit breaker: while `open`, due attempts are logged as not sent
    /// and one test request goes per interval (`next_probe_at`).
    pub circuit: CircuitView,
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
            created_at: w.created_at,
            updated_at: w.updated_at,
            last_delivery,
            circuit: circuit::view(w),
        }
    }
}

/// One page of `GET /api/v1/webhooks`: `next_cursor` asks for the next (null: the last).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
    pub next_cursor: Option<String>,
}

/// The one answer that carries the full secret: creation (and rotation).
#[derive(Debug, Clone, Serialize)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    pub secret: String,
}
