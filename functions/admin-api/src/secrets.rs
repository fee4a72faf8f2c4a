//! Secrets (the user guide's "Rotate secret"): a new signing secret, shown once; the old one
//! stops signing on the very next attempt.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;

use crate::path_ids::WEBHOOK_ID_DESCRIPTION;
use crate::problems::{unavailable, ApiResult, RouteResult};
use crate::webhooks::{ChangedConcurrently, WebhookWithSecret};
use crate::AdminApi;
use webhooks_shared::adapters::openapi::{NotFound, ServiceUnavailable, Unauthorized};
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::signing::SigningSecret;

/// Rotate a webhook's signing secret
///
/// Answers with the new full secret (the only time it is shown); the old secret stops signing
/// at once.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/rotate-secret",
    operation_id = "rotateWebhookSecret",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION)),
    responses(
        (status = 200, body = WebhookWithSecret, description = "The webhook with its new secret."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = ChangedConcurrently),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub(crate) async fn rotate_secret(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<Json<WebhookWithSecret>> {
    Ok(Json(api.rotate_secret(&id).await?))
}

impl AdminApi {
    /// A new secret, shown once; the old one stops signing on the very next attempt.
    pub async fn rotate_secret(&self, id: &WebhookId) -> ApiResult<WebhookWithSecret> {
        let current = self.webhook(id).await?;
        let secret = SigningSecret::generate();
        let mut updated = current.clone();
        updated.secret_ciphertext = self.secrets.seal(id, &secret).await.map_err(unavailable)?;
        updated.secret_hint = secret.hint();
        let updated = self.save(&current, updated).await?;
        tracing::info!(webhook_id = %id, "signing secret rotated");
        Ok(self.with_secret(&updated, &secret).await)
    }
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(rotate_secret))]
pub struct Routes;
