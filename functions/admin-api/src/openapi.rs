//! The API document's source in the code (issue 22 item 5), as far as it goes: the
//! components below are derived from the request and answer types themselves (`ToSchema`),
//! and a test holds `openapi.json` to them. The rest of the document (paths, links,
//! responses, the ingest routes) is still written by hand; see docs/decisions.md.

use utoipa::OpenApi;

use crate::attempts::Redelivery;
use crate::event_types::EventTypeName;
use crate::recovery::{RecoverRequest, RecoveryView};
use crate::test_events::{TestEventRequest, TestEventView};
use crate::webhooks::LastDelivery;

/// The components derived so far.
#[derive(OpenApi)]
#[openapi(components(schemas(
    EventTypeName,
    LastDelivery,
    Redelivery,
    RecoverRequest,
    RecoveryView,
    TestEventRequest,
    TestEventView,
)))]
pub struct ApiDocument;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::OPENAPI_DOCUMENT;
    use serde_json::Value;

    #[test]
    fn the_documents_components_are_the_ones_the_code_derives() {
        let document: Value = serde_json::from_str(OPENAPI_DOCUMENT).expect("JSON");
        let derived = ApiDocument::openapi().components.expect("components");
        assert!(derived.schemas.len() >= 7);
        let differ: Vec<String> = derived
            .schemas
            .iter()
            .filter_map(|(name, schema)| {
                let derived = serde_json::to_value(schema).expect("a schema is JSON");
                (derived != document["components"]["schemas"][name]).then(|| {
                    format!(
                        "components.schemas.{name}: the code derives {}",
                        serde_json::to_string_pretty(&derived).unwrap_or_default()
                    )
                })
            })
            .collect();
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }
}
