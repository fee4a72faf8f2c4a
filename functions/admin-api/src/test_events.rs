//! "Send a test event" (beyond the guide): the catalogue's example of an event type, sent to
//! one webhook only, as a manual delivery with the full retry schedule.
//!
//! A test event is stored like any event (its exact body, kept for the retention period) but
//! with no webhooks of its own, so the events stream delivers it nowhere; the one delivery
//! is queued as a redelivery is. Its id is `test~` and a ULID: `~` is outside the characters
//! an ingested event id may have (`[A-Za-z0-9_.:-]`), so the platform can never post one,
//! and the log tells test deliveries apart by their event id alone (no field added to the
//! stored records or the queue's messages).

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::event_types::EventTypeName;
use crate::path_ids::WEBHOOK_ID_DESCRIPTION;
use crate::problems::{body_of, paused, unavailable, ApiResult, Paused, RouteResult};
use crate::AdminApi;
use webhooks_shared::adapters::openapi::{
    BadRequest, NotFound, ServiceUnavailable, Unauthorized, UnprocessableEntity,
};
use webhooks_shared::domain::catalogue;
use webhooks_shared::domain::clock::{self, Timestamp};
use webhooks_shared::domain::ids::{self, DeliveryId, EventId, WebhookId};
use webhooks_shared::domain::model::{
    DeliveryRecord, DeliveryRef, EventBody, EventRecord, WebhookStatus,
};
use webhooks_shared::domain::problem::{self, Problem};

/// What marks a test event's id.
pub const TEST_EVENT_ID_PREFIX: &str = "test~";

/// A new test event id: `test~` and a ULID (sorts by time).
pub fn new_test_event_id() -> EventId {
    EventId::from(format!("{TEST_EVENT_ID_PREFIX}{}", ulid::Ulid::new()))
}

/// Whether `id` is the id of a test event (see the module's comment).
pub fn is_test_event(id: &EventId) -> bool {
    id.as_str().starts_with(TEST_EVENT_ID_PREFIX)
}

/// The body of `POST …/test-event`: the catalogue type whose example to send.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestEventRequest {
    #[schema(value_type = EventTypeName)]
    event_type: String,
}

/// A test event request that passed validation: a type of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestEventCall {
    pub event_type: &'static str,
}

impl TestEventCall {
    pub fn parse(body: &[u8]) -> Result<Self, Problem> {
        let request: TestEventRequest = problem::parse_object(
            body,
            "the body must be a JSON object: {\"event_type\": \"order.completed\"}",
        )?;
        let found = catalogue::find(&request.event_type).ok_or_else(|| {
            let known: Vec<_> = catalogue::names().collect();
            Problem::invalid_field(
                "event_type",
                format!(
                    "unknown event type {:?}; known types: {}",
                    request.event_type,
                    known.join(", ")
                ),
            )
        })?;
        Ok(TestEventCall {
            event_type: found.name,
        })
    }
}

/// The exact body of test event `id` of `event_type` made at `created_at` (RFC 3339), and
/// its resource id (the example's `data.id`).
pub fn payload(
    id: &EventId,
    event_type: &str,
    created_at: &str,
) -> Result<(String, Option<String>), serde_json::Error> {
    let example = catalogue::example(event_type);
    let resource_id = match example.get("id") {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let data = RawValue::from_string(serde_json::to_string(&example)?)?;
    let body = EventBody {
        id: id.as_str(),
        event_type,
        created_at,
        data: &data,
    }
    .to_json()?;
    Ok((body, resource_id))
}

/// What `POST …/test-event` answers (202): the test event and its one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TestEventAccepted)]
pub struct TestEventView {
    /// The test event's one delivery (manual).
    pub delivery_id: DeliveryId,
    #[schema(value_type = String, pattern = "^test~[0-9A-Z]{26}$")]
    pub event_id: EventId,
    #[schema(value_type = EventTypeName)]
    pub event_type: String,
}

/// Send a test event to this webhook only
///
/// Beyond the guide: stores the catalogue's example of `event_type` (`GET
/// /api/v1/event-types`) as an event whose id is `test~` and a ULID, and queues one manual
/// delivery of it to this webhook only (no other webhook gets it, whatever it subscribes to),
/// signed as usual, with the full retry schedule. Its attempts show in the log with `test:
/// true`. Any type of the catalogue may be sent, subscribed or not.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/test-event",
    operation_id = "sendTestEvent",
    tag = "delivery log",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION)),
    request_body = TestEventRequest,
    responses(
        (status = 202, description = "The test event is stored and its delivery queued.",
            body = TestEventView,
            links(
                ("GetDelivery" = (
                    operation_id = "getDelivery",
                    description = "The test event's delivery.",
                    parameters(
                        ("path.id" = "$request.path.id"),
                        ("path.delivery_id" = "$response.body#/delivery_id"),
                    ),
                )),
                ("ListAttempts" = (
                    operation_id = "listAttempts",
                    description = "This webhook's delivery log, where the test event's \
                                   attempts appear.",
                    parameters(("path.id" = "$request.path.id")),
                )),
            ),
        ),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Paused),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn send_test_event(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<(StatusCode, Json<TestEventView>)> {
    let call = TestEventCall::parse(&body_of(body)?)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(api.send_test_event(&id, call).await?),
    ))
}

impl AdminApi {
    /// Sends the catalogue's example of `call.event_type` to this webhook only: the event is
    /// stored with no webhooks of its own (the stream delivers it nowhere) and one manual
    /// delivery of it is queued, with the full retry schedule (see the module's comment).
    pub async fn send_test_event(
        &self,
        id: &WebhookId,
        call: TestEventCall,
    ) -> ApiResult<TestEventView> {
        let webhook = self.webhook(id).await?;
        if webhook.status == WebhookStatus::Paused {
            return Err(paused(id));
        }
        let now = SystemTime::now();
        let event_id = new_test_event_id();
        let (payload, resource_id) =
            payload(&event_id, call.event_type, &clock::rfc3339_seconds(now))
                .map_err(unavailable)?;
        let event = EventRecord {
            id: event_id.clone(),
            event_type: call.event_type.to_owned(),
            resource_id: resource_id.clone(),
            payload,
            fingerprint: format!("test:{}", call.event_type),
            received_at: Timestamp::from(now),
            webhooks: Some(Vec::new()),
            deliveries: None,
            webhook_pages: 0,
            expires_at: clock::expiry(now, self.retention),
        };
        if self
            .store
            .put_event_if_new(&event)
            .await
            .map_err(unavailable)?
            .is_some()
        {
            // A fresh ULID already taken: nothing is written, and a second call makes another.
            return Err(Problem::conflict(
                "a test event with the same id exists already; send the request again",
            ));
        }
        let delivery = DeliveryRecord::new(
            DeliveryRef {
                delivery_id: ids::new_manual_delivery_id(),
                webhook_id: id.clone(),
                event_id: event_id.clone(),
                event_type: call.event_type.to_owned(),
                resource_id,
                manual: true,
            },
            now,
            self.retention,
        );
        self.store
            .put_delivery_if_new(&delivery)
            .await
            .map_err(unavailable)?;
        self.send_or_undo(std::slice::from_ref(&delivery)).await?;
        tracing::info!(webhook_id = %id, delivery_id = %delivery.id, event_id = %event_id, "test event queued");
        Ok(TestEventView {
            delivery_id: delivery.id,
            event_id,
            event_type: call.event_type.to_owned(),
        })
    }
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(send_test_event))]
pub struct Routes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_catalogue_type_is_accepted_and_anything_else_is_refused_with_a_reason() {
        let call = TestEventCall::parse(br#"{"event_type":"winner.drawn"}"#).unwrap();
        assert_eq!(call.event_type, "winner.drawn");
        for (body, status) in [
            (&br#"{"event_type":"order.deleted"}"#[..], 422),
            (br#"{}"#, 400),
            (br#"[]"#, 400),
            (br#"{"event_type":"order.completed","extra":1}"#, 400),
            (br#"{"event_type":7}"#, 400),
            (b"", 400),
        ] {
            let problem = TestEventCall::parse(body).unwrap_err();
            assert_eq!(problem.status, status, "{}", String::from_utf8_lossy(body));
            assert!(!problem.detail.is_empty());
        }
    }

    #[test]
    fn test_event_ids_cannot_be_posted_by_the_platform() {
        let id = new_test_event_id();
        assert!(is_test_event(&id));
        assert!(!webhooks_shared::domain::ids::is_valid_event_id(
            id.as_str()
        ));
        assert!(!is_test_event(&EventId::from("test_1")));
        assert!(!is_test_event(&webhooks_shared::domain::ids::new_event_id()));
    }

    #[test]
    fn the_payload_is_the_catalogue_example_in_the_usual_envelope() {
        let id = EventId::from("test~01JABC");
        let (body, resource_id) = payload(&id, "order.completed", "2026-11-27T03:00:00Z").unwrap();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(body.starts_with(
            r#"{"id":"test~01JABC","type":"order.completed","created_at":"2026-11-27T03:00:00Z","data":{"#
        ));
        assert_eq!(parsed["data"], catalogue::example("order.completed"));
        assert_eq!(resource_id.as_deref(), Some("ord_1042"));
    }
}
