//! The event catalogue as the API shows it (`GET /api/v1/event-types`): what a webhook may
//! subscribe to, each type with its description and an example of its `data`.

use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use webhooks_shared::adapters::openapi::Unauthorized;
use webhooks_shared::domain::catalogue;

/// The `EventType` component: the catalogue's names.
pub use webhooks_shared::domain::catalogue::EventTypeName;

/// `GET /api/v1/event-types`: every type of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeList {
    pub event_types: Vec<EventTypeInfo>,
}

/// An event type of the catalogue: its name, what it means and an example of its `data`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTypeInfo {
    #[serde(rename = "type")]
    #[schema(value_type = EventTypeName)]
    pub event_type: &'static str,
    pub description: &'static str,
    /// An example `data` object for this type.
    #[schema(value_type = Object)]
    pub example: Value,
}

impl EventTypeList {
    /// The catalogue, in its order.
    pub fn catalogue() -> Self {
        let event_types = catalogue::EVENT_TYPES
            .iter()
            .map(|t| EventTypeInfo {
                event_type: t.name,
                description: t.description,
                example: catalogue::example(t.name),
            })
            .collect();
        EventTypeList { event_types }
    }
}

/// The event catalogue, with descriptions and example data
#[utoipa::path(
    get,
    path = "/api/v1/event-types",
    operation_id = "listEventTypes",
    tag = "catalogue",
    responses(
        (status = 200, description = "Every event type.", body = EventTypeList),
        (status = 401, response = Unauthorized),
    ),
)]
pub(crate) async fn event_types() -> Json<EventTypeList> {
    Json(EventTypeList::catalogue())
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(event_types))]
pub struct Routes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_the_catalogue_as_it_was_answered() {
        // As `GET /api/v1/event-types` answered before it was typed, byte for byte.
        let views: Vec<Value> = catalogue::EVENT_TYPES
            .iter()
            .map(|t| {
                serde_json::json!({
                    "type": t.name,
                    "description": t.description,
                    "example": catalogue::example(t.name),
                })
            })
            .collect();
        let before = serde_json::json!({ "event_types": views });
        assert_eq!(
            serde_json::to_string(&EventTypeList::catalogue()).unwrap(),
            serde_json::to_string(&before).unwrap()
        );
        for info in EventTypeList::catalogue().event_types {
            assert!(info.example.get("id").is_some(), "{}", info.event_type);
        }
    }
}
