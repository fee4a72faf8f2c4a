//! The ingest routes in the API document (see `integration-tests`' `openapi` module, which
//! puts it together with admin-api's).

use utoipa::OpenApi;

/// `POST /api/v1/events` and `POST /api/v1/events/batch`.
#[derive(OpenApi)]
#[openapi(paths(crate::ingest, crate::ingest_batch))]
pub struct IngestRoutes;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS, MAX_DATA_DEPTH, MAX_EVENT_BYTES};
    use serde_json::Value;

    /// The document's numbers are literals (utoipa's attributes take no constants), so they
    /// are held to the constants ingest enforces.
    #[test]
    fn the_document_states_the_limits_ingest_enforces() {
        let document = serde_json::to_value(IngestRoutes::openapi()).expect("JSON");
        let text = |pointer: &str| {
            document
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{pointer}"))
                .to_owned()
        };
        let events = &document["components"]["schemas"]["IngestBatch"]["properties"]["events"];
        assert_eq!(events["maxItems"], MAX_BATCH_EVENTS);
        assert_eq!(events["minItems"], 1);
        let kib = format!("{} KiB", MAX_EVENT_BYTES / 1024);
        let mib = format!("{} MiB", MAX_BATCH_BYTES / 1024 / 1024);
        let depth = format!("{MAX_DATA_DEPTH} levels");
        let single = "/paths/~1api~1v1~1events/post";
        let batch = "/paths/~1api~1v1~1events~1batch/post";
        assert!(text(&format!("{single}/requestBody/description")).contains(&kib));
        assert!(text(&format!("{single}/description")).contains(&depth));
        assert!(text(&format!("{batch}/requestBody/description")).contains(&mib));
        assert!(text(&format!("{batch}/requestBody/description")).contains(&kib));
        assert!(text(&format!("{batch}/summary")).contains(&MAX_BATCH_EVENTS.to_string()));
        assert!(text("/components/schemas/IngestEvent/description").contains(&kib));
        assert!(
            text("/components/schemas/IngestEvent/properties/data/description").contains(&depth)
        );
    }
}
