//! The delivery log (the user guide's "Delivery Log" and "Redelivery"): a webhook's
//! attempts, newest first; one attempt in full (the request as sent, the response as
//! received); a delivery as its attempts tell it; and redelivery of an attempt's event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::event_types::EventTypeName;
use crate::paging;
use crate::path_ids::{ATTEMPT_ID_DESCRIPTION, DELIVERY_ID_DESCRIPTION, WEBHOOK_ID_DESCRIPTION};
use crate::problems::{paused, unavailable, ApiResult, Paused, RouteResult};
use crate::test_events::is_test_event;
use crate::AdminApi;
use webhooks_shared::adapters::openapi::{BadRequest, NotFound, ServiceUnavailable, Unauthorized};
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

/// One line of the delivery log.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Attempt)]
pub struct AttemptView {
    /// Attempt id: `<delivery_id>.<attempt>`.
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    /// The event's id; a test event's (`POST …/test-event`) is `test~` and a ULID, which no
    /// posted event can have.
    pub event_id: EventId,
    #[schema(value_type = EventTypeName)]
    pub event_type: String,
    /// The event's `data.id` (as a string), when it had one.
    #[schema(required = true)]
    pub resource_id: Option<String>,
    /// Attempt number within its delivery (1-6).
    #[schema(minimum = 1)]
    pub attempt: u32,
    /// A delivery cancelled at its turn (webhook paused or deleted) is logged as a `failed`
    /// line whose `error` starts with `cancelled:` and that made no request.
    pub outcome: AttemptOutcome,
    /// HTTP status of the receiver's answer; null when there was none (timeout, connection
    /// error, cancelled).
    #[schema(required = true, minimum = 100, maximum = 599)]
    pub response_status: Option<u16>,
    /// Why the attempt failed, when it did; null on success.
    #[schema(required = true)]
    pub error: Option<String>,
    pub duration_ms: u64,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// True for deliveries made by redeliver, recover or a test event.
    pub manual: bool,
    /// True for a delivery of a test event (`POST /api/v1/webhooks/{id}/test-event`); such
    /// deliveries are also `manual`.
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

/// The request an attempt sent.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RecordedRequest)]
pub struct RequestView {
    #[schema(format = "uri")]
    pub url: String,
    /// Every header sent, signatures included.
    pub headers: BTreeMap<String, String>,
    /// The exact JSON body sent (identical on every attempt and redelivery of the event).
    pub body: String,
}

/// The receiver's answer as the log keeps it.
// Not the stored `RecordedResponse` itself: that stays open to fields it may gain (it is
// read back from the store), where this answer is closed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RecordedResponse)]
pub struct ResponseView {
    #[schema(minimum = 100, maximum = 599)]
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    /// At most 16 KiB of the response body (lossy UTF-8).
    #[schema(max_length = 16384)]
    pub body: String,
    /// True when the body was cut at 16 KiB.
    pub truncated: bool,
}

impl From<RecordedResponse> for ResponseView {
    fn from(r: RecordedResponse) -> Self {
        ResponseView {
            status: r.status,
            headers: r.headers,
            body: r.body,
            truncated: r.truncated,
        }
    }
}

/// A delivery-log line with the request sent and the response received.
#[derive(Debug, Clone, Serialize, ToSchema)]
// Closes the schema (see `crate::openapi`). Never read back, nor could it be: the flattened
// `AttemptView` denies unknown fields, `request` and `response` among them.
#[serde(deny_unknown_fields)]
#[schema(as = AttemptDetail)]
pub struct AttemptDetailView {
    #[serde(flatten)]
    pub attempt: AttemptView,
    /// What was sent; null for a cancelled line (no request was made).
    #[schema(required = true)]
    pub request: Option<RequestView>,
    /// What came back; null when there was no HTTP answer (timeout, connection error,
    /// cancelled).
    #[schema(required = true)]
    pub response: Option<ResponseView>,
}

/// A delivery as its attempts tell it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Delivery)]
pub struct DeliveryView {
    pub id: DeliveryId,
    /// The event's id; a test event's (`POST …/test-event`) is `test~` and a ULID, which no
    /// posted event can have.
    pub event_id: EventId,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next retry is due; null unless `retrying`.
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    pub next_attempt_at: Option<Timestamp>,
    /// True for deliveries made by redeliver, recover or a test event.
    pub manual: bool,
    /// True for a delivery of a test event (`POST /api/v1/webhooks/{id}/test-event`); such
    /// deliveries are also `manual`.
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
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttemptList {
    /// Newest first.
    // `MAX_LOG_LIMIT` (a literal here too; the same test holds it to it).
    #[schema(max_items = 100)]
    pub attempts: Vec<AttemptView>,
}

/// `POST …/redeliver`: the new delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// The new (manual) delivery.
    pub delivery_id: DeliveryId,
}

/// `GET …/attempts`' query: `?limit=N` (1-100, default 100); any other parameter is a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
struct LogQuery {
    /// How many attempts to return (newest first), 1-100.
    // `maximum` takes only a literal: a test holds it to `MAX_LOG_LIMIT`.
    #[param(required = false, minimum = 1, maximum = 100, default = json!(MAX_LOG_LIMIT))]
    limit: u32,
}

impl LogQuery {
    fn parse(query: Option<&str>) -> ApiResult<Self> {
        let mut limit = MAX_LOG_LIMIT;
        for (key, value) in paging::pairs(query) {
            match key.as_ref() {
                "limit" => limit = paging::limit(&value, MAX_LOG_LIMIT)?,
                other => return Err(paging::unknown_parameter(other, "limit is")),
            }
        }
        Ok(LogQuery { limit })
    }
}

/// The webhook's delivery log, newest first
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/attempts",
    operation_id = "listAttempts",
    tag = "delivery log",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION), LogQuery),
    responses(
        (status = 200, description = "The newest attempts, newest first.", body = AttemptList,
            links(
                ("GetAttempt" = (
                    operation_id = "getAttempt",
                    description = "The newest attempt in full.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.attempt_id" = "$response.body#/attempts/0/id"),
                    ),
                )),
                ("RedeliverAttempt" = (
                    operation_id = "redeliverAttempt",
                    description = "Deliver the newest attempt's event again.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.attempt_id" = "$response.body#/attempts/0/id"),
                    ),
                )),
                ("GetDelivery" = (
                    operation_id = "getDelivery",
                    description = "The newest attempt's delivery.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.delivery_id" = "$response.body#/attempts/0/delivery_id"),
                    ),
                )),
            ),
        ),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn list_attempts(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    RawQuery(query): RawQuery,
) -> RouteResult<Json<AttemptList>> {
    let LogQuery { limit } = LogQuery::parse(query.as_deref())?;
    let attempts = api.attempts(&id, limit).await?;
    Ok(Json(AttemptList { attempts }))
}

/// Inspect one attempt: the request sent and the response received
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/attempts/{attempt_id}",
    operation_id = "getAttempt",
    tag = "delivery log",
    params(
        ("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION),
        ("attempt_id" = AttemptId, Path, description = ATTEMPT_ID_DESCRIPTION),
    ),
    responses(
        (status = 200, description = "The attempt in detail.", body = AttemptDetailView,
            links(
                ("RedeliverAttempt" = (
                    operation_id = "redeliverAttempt",
                    description = "Deliver this attempt's event again.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.attempt_id" = "$response.body#/id"),
                    ),
                )),
                ("GetDelivery" = (
                    operation_id = "getDelivery",
                    description = "This attempt's delivery.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.delivery_id" = "$response.body#/delivery_id"),
                    ),
                )),
            ),
        ),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn get_attempt(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(WebhookId, String)>,
) -> RouteResult<Json<AttemptDetailView>> {
    Ok(Json(api.attempt(&id, &attempt_id).await?))
}

/// Redeliver an attempt's event
///
/// Sends the same body bytes as a new delivery (`manual: true`) with the full retry schedule.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/attempts/{attempt_id}/redeliver",
    operation_id = "redeliverAttempt",
    tag = "delivery log",
    params(
        ("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION),
        ("attempt_id" = AttemptId, Path, description = ATTEMPT_ID_DESCRIPTION),
    ),
    responses(
        (status = 202, description = "The new delivery is queued.", body = Redelivery,
            links(
                ("GetDelivery" = (
                    operation_id = "getDelivery",
                    description = "The new (manual) delivery.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.delivery_id" = "$response.body#/delivery_id"),
                    ),
                )),
                ("ListAttempts" = (
                    operation_id = "listAttempts",
                    description = "This webhook's delivery log.",
                    parameters(("path.id" = "$request.path.id")),
                )),
            ),
        ),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Paused),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn redeliver(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(WebhookId, String)>,
) -> RouteResult<(StatusCode, Json<Redelivery>)> {
    let delivery_id = api.redeliver(&id, &attempt_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Redelivery { delivery_id })))
}

/// A delivery's state
///
/// A delivery's state, from its attempts. A delivery made by fan-out is found from its first
/// attempt on (404 before); a manual one (redeliver, recover) from the moment it is made
/// (`pending` until its first attempt).
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
    operation_id = "getDelivery",
    tag = "delivery log",
    params(
        ("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION),
        ("delivery_id" = DeliveryId, Path, description = DELIVERY_ID_DESCRIPTION),
    ),
    responses(
        (status = 200, description = "The delivery.", body = DeliveryView),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    ),
)]
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
            response: attempt.response.clone().map(ResponseView::from),
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
#[openapi(paths(list_attempts, get_attempt, redeliver, get_delivery))]
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
        let limit = |query| LogQuery::parse(query).map(|q| q.limit);
        assert_eq!(limit(None).unwrap(), 100);
        assert_eq!(limit(Some("limit=5")).unwrap(), 5);
        for bad in ["limit=0", "limit=101", "limit=x", "limit=", "page=2"] {
            let p = limit(Some(bad)).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
        }
    }

    #[test]
    fn the_document_says_the_log_limit_the_code_takes() {
        let parameters = serde_json::to_value(LogQuery::into_params(|| None)).unwrap();
        let max = serde_json::json!(MAX_LOG_LIMIT);
        assert_eq!(parameters[0]["name"], "limit");
        assert_eq!(parameters[0]["required"], false);
        let schema = &parameters[0]["schema"];
        assert_eq!(
            (&schema["minimum"], &schema["maximum"], &schema["default"]),
            (&serde_json::json!(1), &max, &max)
        );
        let list = serde_json::to_value(<AttemptList as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(list["properties"]["attempts"]["maxItems"], max);
    }
}
