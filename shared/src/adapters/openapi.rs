//! What the HTTP API's document says the same way for `admin-api` and `fanout`: the problem
//! answers (`components.responses`) and how a caller authenticates (`components
//! .securitySchemes`). Each function's routes and answers are described beside their
//! handlers; `integration-tests`' `openapi` module puts the document together.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::{Modify, ToResponse};

use crate::domain::problem::Problem;

/// Admin calls' scheme (`security(("adminBearer" = []))`).
pub const ADMIN_BEARER: &str = "adminBearer";
/// Ingest calls' scheme (`security(("ingestBearer" = []))`).
pub const INGEST_BEARER: &str = "ingestBearer";

/// Malformed request: bad JSON, unknown or missing fields, bad query parameter, or (ingest)
/// unknown type, bad id, `data` not an object.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct BadRequest(#[allow(dead_code)] Problem);

/// Missing or wrong bearer token.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Unauthorized(#[allow(dead_code)] Problem);

/// No such webhook, attempt or delivery; also a path id that cannot be one of ours (empty,
/// longer than 64 characters, or not of the id's form), refused before any lookup.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(#[allow(dead_code)] Problem);

/// The request conflicts with the current state (see the operation).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct Conflict(#[allow(dead_code)] Problem);

/// The body is larger than the route takes (see the operation).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(#[allow(dead_code)] Problem);

/// A field parsed but is not acceptable; `field` names it.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct UnprocessableEntity(#[allow(dead_code)] Problem);

/// A backing service (DynamoDB, SQS, KMS) failed. Nothing is half-done that a retry would not
/// complete: retry the request.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when known."))
)]
pub struct ServiceUnavailable(#[allow(dead_code)] Problem);

/// Adds the two bearer schemes; the admin one is every operation's unless it says otherwise.
pub struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, document: &mut OpenApi) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            ADMIN_BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Admin calls. Locally `Authorization: Bearer dev-admin-token` (the value \
                         of `WEBHOOKS_ADMIN_TOKEN`); on AWS a JWT issued by the admin identity \
                         provider, checked by the HTTP API's JWT authorizer.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            INGEST_BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`POST /api/v1/events` and `POST /api/v1/events/batch` only. Locally \
                         `Authorization: Bearer dev-ingest-token` (the value of \
                         `WEBHOOKS_INGEST_TOKEN`). On AWS these routes use IAM authorization \
                         instead: the platform signs the request with AWS SigV4 (no bearer \
                         token).",
                    ))
                    .build(),
            ),
        );
    }
}
