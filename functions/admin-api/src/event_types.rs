//! The event catalogue as the API shows it (`GET /api/v1/event-types`): what a webhook may
//! subscribe to, each type with its description and an example of its `data`.

use axum::Json;
use serde_json::{json, Value};
use webhooks_shared::domain::catalogue;

/// `GET /api/v1/event-types`.
pub(crate) async fn event_types() -> Json<Value> {
    Json(json!({ "event_types": catalogue::views() }))
}
