//! The delivery log (the user guide's "Delivery Log" and "Redelivery"): a webhook's
//! attempts, newest first; one attempt in full (the request as sent, the response as
//! received); a delivery as its attempts tell it; and redelivery of an attempt's event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::paging;
use crate::problems::{paused, unavailable, ApiResult, RouteResult};
use crate::test_events::is_test_event;
use crate::AdminApi;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{self, AttemptId, DeliveryId, EventId, WebhookId};
use webhooks_shared::domain::lifecycle::Progress;
use webhooks_shared::domain::model::{
    AttemptOutcome, AttemptRecord, DeliveryRecord, DeliveryRef, DeliveryState, RecordedResponse,
    WebhookStatus,
};
use webhooks_shared::domain::problem::Problem;

/// The log shows at most this many attempts per call (and this many by default).
pub const MAX_LOG_LIMIT: u32 = 100;

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
            test: is_test_event(&d.event_id),
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
            test: is_test_event(&delivery.event_id),
        }
    }
}

/// `GET …/attempts`: the log, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptList {
    pub attempts: Vec<AttemptView>,
}

/// `POST …/redeliver`: the new delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// The new (manual) delivery.
    #[schema(value_type = String, pattern = "^dlv_")]
    pub delivery_id: DeliveryId,
}

/// Parses `?limit=N` (1-100, default 100).
fn parse_limit(query: Option<&str>) -> ApiResult<u32> {
    let mut limit = MAX_LOG_LIMIT;
    for (key, value) in paging::pairs(query) {
        match key.as_ref() {
            "limit" => limit = paging::limit(&value, MAX_LOG_LIMIT)?,
            other => return Err(paging::unknown_parameter(other, "limit is")),
        }
    }
    Ok(limit)
}

/// `GET /api/v1/webhooks/{id}/attempts?limit=`.
pub(crate) async fn list_attempts(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    RawQuery(query): RawQuery,
) -> RouteResult<Json<AttemptList>> {
    let limit = parse_limit(query.as_deref())?;
    let attempts = api.attempts(&id, limit).await?;
    Ok(Json(AttemptList { attempts }))
}

/// `GET /api/v1/webhooks/{id}/attempts/{attempt_id}`.
pub(crate) async fn get_attempt(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(WebhookId, String)>,
) -> RouteResult<Json<AttemptDetailView>> {
    Ok(Json(api.attempt(&id, &attempt_id).await?))
}

/// `POST /api/v1/webhooks/{id}/attempts/{attempt_id}/redeliver` (202).
pub(crate) async fn redeliver(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(WebhookId, String)>,
) -> RouteResult<(StatusCode, Json<Redelivery>)> {
    let delivery_id = api.redeliver(&id, &attempt_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Redelivery { delivery_id })))
}

/// `GET /api/v1/webhooks/{id}/deliveries/{delivery_id}`.
pub(crate) async fn get_delivery(
    State(api): State<Arc<AdminApi>>,
    Path((id, delivery_id)): Path<(WebhookId, DeliveryId)>,
) -> RouteResult<Json<DeliveryView>> {
    Ok(Json(api.delivery(&id, &delivery_id).await?))
}

impl AdminApi {
    pub async fn attempts(&self, id: &WebhookId, limit: u32) -> ApiResult<Vec<AttemptView>> {
        self.webhook(id).await?;
        let log = self
            .store
            .webhook_log(id, limit)
            .await
            .map_err(unavailable)?;
        Ok(log.iter().map(AttemptView::from).collect())
    }

    async fn attempt_record(&self, id: &WebhookId, attempt_id: &str) -> ApiResult<AttemptRecord> {
        let not_found =
            || Problem::not_found(format!("webhook {id:?} has no attempt {attempt_id:?}"));
        let (delivery_id, number) = attempt_id
            .parse::<ids::AttemptId>()
            .map_err(|_| not_found())?
            .into_parts();
        self.store
            .get_attempt(id, &delivery_id, number)
            .await
            .map_err(unavailable)?
            .filter(|a| &a.delivery.webhook_id == id)
            .ok_or_else(not_found)
    }

    /// One log line in full: the request as sent (exact body) and the response as received.
    pub async fn attempt(&self, id: &WebhookId, attempt_id: &str) -> ApiResult<AttemptDetailView> {
        self.webhook(id).await?;
        let attempt = self.attempt_record(id, attempt_id).await?;
        let request = match &attempt.request {
            None => None,
            Some(sent) => {
                let body = self
                    .store
                    .get_event(&attempt.delivery.event_id)
                    .await
                    .map_err(unavailable)?
                    .map(|e| e.payload)
                    .unwrap_or_default();
                Some(RequestView {
                    url: sent.url.clone(),
                    headers: sent.headers.clone(),
                    body,
                })
            }
        };
        Ok(AttemptDetailView {
            attempt: AttemptView::from(&attempt),
            request,
            response: attempt.response.clone(),
        })
    }

    pub async fn delivery(
        &self,
        id: &WebhookId,
        delivery_id: &DeliveryId,
    ) -> ApiResult<DeliveryView> {
        self.webhook(id).await?;
        // A manual delivery has an item from the moment it is made; a fan-out delivery is
        // known by its attempts (it has none before its first).
        let (item, attempts) = futures::try_join!(
            self.store.get_delivery(delivery_id),
            self.store.attempts_of(id, delivery_id)
        )
        .map_err(unavailable)?;
        let delivery = item
            .map(|d| d.delivery())
            .or_else(|| attempts.first().map(|a| a.delivery.clone()))
            .filter(|d| &d.webhook_id == id)
            .ok_or_else(|| {
                Problem::not_found(format!(
                    "webhook {id:?} has no delivery {delivery_id:?} (a delivery made by \
                     fan-out is found from its first attempt on)"
                ))
            })?;
        Ok(DeliveryView::new(&delivery, &attempts))
    }

    /// Sends the attempt's event again — same body bytes, same event id — as a new manual
    /// delivery with the full retry schedule.
    pub async fn redeliver(&self, id: &WebhookId, attempt_id: &str) -> ApiResult<DeliveryId> {
        let webhook = self.webhook(id).await?;
        let attempt = self.attempt_record(id, attempt_id).await?;
        if webhook.status == WebhookStatus::Paused {
            return Err(paused(id));
        }
        self.require_event(&attempt.delivery.event_id).await?;
        let delivery = self.manual_delivery(ids::new_manual_delivery_id(), &attempt);
        self.store
            .put_delivery_if_new(&delivery)
            .await
            .map_err(unavailable)?;
        self.send_or_undo(std::slice::from_ref(&delivery)).await?;
        tracing::info!(webhook_id = %id, delivery_id = %delivery.id, event_id = %delivery.event_id, "redelivery queued");
        Ok(delivery.id)
    }

    async fn require_event(&self, event_id: &EventId) -> ApiResult<()> {
        match self.store.get_event(event_id).await.map_err(unavailable)? {
            Some(_) => Ok(()),
            None => Err(Problem::not_found(format!(
                "event {event_id:?} is no longer stored (past its retention period)"
            ))),
        }
    }

    fn manual_delivery(&self, delivery_id: DeliveryId, of: &AttemptRecord) -> DeliveryRecord {
        let delivery = DeliveryRef {
            delivery_id,
            manual: true,
            ..of.delivery.clone()
        };
        DeliveryRecord::new(delivery, SystemTime::now(), self.retention)
    }
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Routes;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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

    #[test]
    fn the_log_limit_is_1_to_100_and_100_by_default() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("limit=5")).unwrap(), 5);
        for bad in ["limit=0", "limit=101", "limit=x", "limit=", "page=2"] {
            let p = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
        }
    }
}
