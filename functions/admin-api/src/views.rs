//! What the admin API answers (SPEC §6), made from the stored records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use webhooks_shared::domain::circuit::{self, CircuitView};
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{AttemptId, DeliveryId, EventId, WebhookId};
use webhooks_shared::domain::lifecycle::Progress;
use webhooks_shared::domain::model::{
    AttemptOutcome, AttemptRecord, DeliveryRef, DeliveryState, RecordedResponse, WebhookRecord,
    WebhookStatus,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDelivery {
    pub at: Timestamp,
    pub ok: bool,
    pub response_status: Option<u16>,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttemptView {
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    pub resource_id: Option<String>,
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub at: Timestamp,
    pub manual: bool,
    /// A delivery of a test event (`POST …/test-event`), told apart by its event id.
    #[serde(default)]
    pub test: bool,
}

impl From<&AttemptRecord> for AttemptView {
    fn from(a: &AttemptRecord) -> Self {
        // Not a flattened `DeliveryRef`: the API shows `resource_id: null` and no webhook id.
        let d = &a.delivery;
        AttemptView {
            id: a.id(),
            delivery_id: d.delivery_id.clone(),
            event_id: d.event_id.clone(),
            event_type: d.event_type.clone(),
            resource_id: d.resource_id.clone(),
            attempt: a.attempt,
            outcome: a.outcome,
            response_status: a.response_status,
            error: a.error.clone(),
            duration_ms: a.duration_ms,
            at: a.at,
            manual: d.manual,
            test: crate::test_event::is_test_event(&d.event_id),
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
    pub id: DeliveryId,
    pub event_id: EventId,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub manual: bool,
    /// A delivery of a test event (`POST …/test-event`).
    #[serde(default)]
    pub test: bool,
}

impl DeliveryView {
    /// The delivery as its log tells it (see `lifecycle::Progress`).
    pub fn new(delivery: &DeliveryRef, attempts: &[AttemptRecord]) -> Self {
        let progress = Progress::of(attempts);
        DeliveryView {
            id: delivery.delivery_id.clone(),
            event_id: delivery.event_id.clone(),
            state: progress.state(),
            attempts: attempts.len() as u32,
            next_attempt_at: progress.next_attempt_at(),
            manual: delivery.manual,
            test: crate::test_event::is_test_event(&delivery.event_id),
        }
    }
}

/// What `recover` answers: how far it got, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryView {
    /// Distinct deliveries that ended `permanently_failed` or `cancelled` in the part of the
    /// window this call read (each found again by a later call over the same lines).
    pub found: u32,
    /// Recovery deliveries this call sent to the queue: new ones, and ones not attempted yet
    /// (an earlier call wrote them and may not have queued them; the queue drops a copy sent
    /// within 5 minutes of the first). One already attempted is under way and not sent.
    pub queued: u32,
    /// `queued`, under the name SPEC §6 gives it.
    pub deliveries: u32,
    /// Pass back as `cursor` (with the same `since` and `until`) to continue; `null` once the
    /// window is read to its end.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn delivery() -> DeliveryRef {
        DeliveryRef {
            delivery_id: "dlv_1".into(),
            webhook_id: "wh_1".into(),
            event_id: "evt_1".into(),
            event_type: "order.completed".into(),
            resource_id: None,
            manual: true,
        }
    }

    fn line(number: u32, state: DeliveryState, next: Option<&str>) -> AttemptRecord {
        let mut line = AttemptRecord::line(
            &delivery(),
            number,
            SystemTime::UNIX_EPOCH,
            Duration::from_secs(60),
        );
        line.delivery_state = state;
        line.next_attempt_at = next.and_then(Timestamp::parse);
        line
    }

    #[test]
    fn a_delivery_without_attempts_is_pending() {
        let view = DeliveryView::new(&delivery(), &[]);
        assert_eq!(view.state, DeliveryState::Pending);
        assert_eq!(view.attempts, 0);
        assert_eq!(view.next_attempt_at, None);
        assert!(view.manual);
    }

    #[test]
    fn a_delivery_shows_its_latest_attempts_state() {
        let next = "2026-11-27T03:02:00.000Z";
        let attempts = [
            line(2, DeliveryState::Retrying, Some(next)),
            line(1, DeliveryState::Retrying, Some("2026-11-27T03:01:00.000Z")),
        ];
        let view = DeliveryView::new(&delivery(), &attempts);
        assert_eq!(view.state, DeliveryState::Retrying);
        assert_eq!(view.attempts, 2);
        assert_eq!(view.next_attempt_at, Timestamp::parse(next));

        let done = [attempts[1].clone(), line(2, DeliveryState::Succeeded, None)];
        let view = DeliveryView::new(&delivery(), &done);
        assert_eq!(view.state, DeliveryState::Succeeded);
        assert_eq!(view.next_attempt_at, None);
    }
}
