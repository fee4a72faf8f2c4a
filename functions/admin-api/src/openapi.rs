//! The API document's frame (title, description, servers, tags, the problem answers and the
//! security schemes) and its admin routes, each feature's described beside its handlers
//! (`#[utoipa::path]` on the handler, `ToSchema` on its request and answer types).
//!
//! The document is put together by `integration-tests`' `openapi` module, which adds the
//! ingest routes (fanout's), writes `openapi.json` (`make openapi`) and fails a test when the
//! file in the repository is not what the code derives. This function serves that file as it
//! is: building the document at run time would cost every cold start for a read that is the
//! same every time.
//!
//! Answers' types carry `#[serde(deny_unknown_fields)]`, though they are only written: it is
//! what closes their schema (`additionalProperties: false`), so a field the code adds without
//! documenting it fails the contract tests.

use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};

use webhooks_shared::adapters::openapi::{
    BadRequest, Conflict, NotFound, PayloadTooLarge, SecuritySchemes, ServiceUnavailable,
    Unauthorized, UnprocessableEntity,
};

use crate::problems::Paused;
use crate::webhooks::ChangedConcurrently;
use crate::{attempts, event_types, http, recovery, secrets, test_events, webhooks};

/// Everything but the routes.
#[derive(OpenApi)]
#[openapi(
    info(title = "comps-webhooks API", description = include_str!("openapi.md")),
    servers((url = "http://127.0.0.1:3000", description = "Local (`make dev`)")),
    security(("adminBearer" = [])),
    tags(
        (name = "ingest", description = "Events from the platform."),
        (name = "webhooks", description = "Webhooks and their secrets."),
        (name = "delivery log", description = "Attempts, deliveries, redelivery and recovery."),
        (name = "catalogue", description = "Event types and this document."),
    ),
    components(responses(
        BadRequest,
        Unauthorized,
        NotFound,
        Conflict,
        PayloadTooLarge,
        UnprocessableEntity,
        ServiceUnavailable,
        Paused,
        ChangedConcurrently,
    )),
    modifiers(&SecuritySchemes),
)]
pub struct Frame;

/// The admin routes, feature by feature.
pub fn admin_routes() -> Document {
    let mut routes = webhooks::Routes::openapi();
    for feature in [
        secrets::Routes::openapi(),
        attempts::Routes::openapi(),
        recovery::Routes::openapi(),
        test_events::Routes::openapi(),
        event_types::Routes::openapi(),
        http::Routes::openapi(),
    ] {
        routes.merge(feature);
    }
    webhooks::WebhookLinks.modify(&mut routes);
    routes
}
