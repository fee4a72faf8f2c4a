//! The event catalogue as the API shows it (`GET /api/v1/event-types`): what a webhook may
//! subscribe to, each type with its description and an example of its `data`.

use std::borrow::Cow;

use axum::Json;
use serde_json::{json, Value};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};
use webhooks_shared::domain::catalogue;

/// An event type's name, one of the catalogue's (`EventType` in the document): its enum is
/// the catalogue's names, so a type added there is in the document too.
pub struct EventTypeName;

impl PartialSchema for EventTypeName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(catalogue::names()))
            .description(Some("The event catalogue; unknown types are rejected."))
            .into()
    }
}

impl ToSchema for EventTypeName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventType")
    }
}

/// `GET /api/v1/event-types`.
pub(crate) async fn event_types() -> Json<Value> {
    Json(json!({ "event_types": catalogue::views() }))
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Routes;
