//! The ingest routes in the API document (see `integration-tests`' `openapi` module, which
//! puts it together with admin-api's).

use utoipa::OpenApi;

/// `POST /api/v1/events` and `POST /api/v1/events/batch`.
#[derive(OpenApi)]
#[openapi()]
pub struct IngestRoutes;
