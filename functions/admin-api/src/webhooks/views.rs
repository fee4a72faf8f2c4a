//! What the webhook routes answer: a webhook as admins see it (its secret only as a hint,
//! its last delivery, its endpoint's circuit), and the one answer that carries the secret.

use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::Object;
use utoipa::ToSchema;
use webhooks_shared::domain::catalogue::EventTypeName;
use webhooks_shared::domain::circuit::{self, CircuitView};
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::model::{AttemptOutcome, AttemptRecord, WebhookRecord, WebhookStatus};

use super::input::url_form;

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

/// A webhook as the API shows it: never the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(as = Webhook)]
#[serde(deny_unknown_fields)]
pub struct WebhookView {
    pub id: WebhookId,
    /// Display name, 1-100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(schema_with = stored_url_schema)]
    pub url: String,
    #[schema(value_type = Vec<EventTypeName>)]
    pub events: Vec<String>,
    /// `paused` webhooks get no new deliveries; queued ones end `cancelled`.
    pub status: WebhookStatus,
    /// `whsec_…` followed by the secret's last four characters; the full secret is never
    /// shown again after creation or rotation.
    #[schema(pattern = "^whsec_…[A-Za-z0-9+/=]{4}$", examples("whsec_…Qk0="))]
    pub secret_hint: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// The newest line of this webhook's delivery log, or null when it has none.
    #[schema(required = true)]
    pub last_delivery: Option<LastDelivery>,
    /// The endpoint's circuit breaker: while `open`, due attempts are logged as not sent
    /// and one test request goes per interval (`next_probe_at`).
    pub circuit: CircuitView,
}

/// `url` as answered: the form every stored URL has (see [`super::input::url_form`]).
fn stored_url_schema() -> Object {
    url_form().build()
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
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookList {
    #[schema(max_items = 100)]
    pub webhooks: Vec<WebhookView>,
    /// Pass back as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A webhook plus its full secret: only the answers to create and rotate-secret carry it.
#[derive(Debug, Clone, Serialize, ToSchema)]
// Closes the schema (see `crate::openapi`). Never read back, nor could it be: the flattened
// `WebhookView` denies unknown fields, `secret` among them.
#[serde(deny_unknown_fields)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The full signing secret, `whsec_` + base64 of 32 random bytes. Shown only in this
    /// answer: store it now.
    #[schema(
        pattern = "^whsec_[A-Za-z0-9+/]{43}=$",
        examples("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw1q4kBHdTkUE=")
    )]
    pub secret: String,
}
