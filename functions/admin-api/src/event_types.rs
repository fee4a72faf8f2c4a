//! The event catalogue as the API shows it (`GET /api/v1/event-types`): what a webhook may
//! subscribe to, each type with its description and an example of its `data`.

use axum::Json;
use serde_json::{json, Value};
use webhooks_shared::domain::catalogue;

/// The `EventType` component: the catalogue's names.
pub use webhooks_shared::domain::catalogue::EventTypeName;

/// `GET /api/v1/event-types`.
pub(crate) async fn event_types() -> Json<Value> {
    Json(json!({ "event_types": catalogue::views() }))
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Routes;
