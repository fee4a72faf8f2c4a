//! `admin-api`: the admin JSON API of SPEC §6 — webhooks, their secrets, the delivery log.

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use futures::future::join_all;
use serde_json::json;

use webhooks_shared::aws::Adapters;
use webhooks_shared::model::{
    AttemptDetailView, AttemptView, DeliveryView, LastDelivery, RequestView, WebhookRecord,
    WebhookStatus, WebhookView, WebhookWithSecret,
};
use webhooks_shared::problem::Problem;
use webhooks_shared::secret_box::SecretBox;
use webhooks_shared::signing::SigningSecret;
use webhooks_shared::store::Store;
use webhooks_shared::validation::CreateWebhookRequest;
use webhooks_shared::{catalogue, clock, ids};

/// The log shows at most this many attempts per call (and this many by default).
pub const MAX_LOG_LIMIT: u32 = 100;

pub struct AdminApi {
    store: Store,
    secrets: SecretBox,
}

type ApiResult<T> = Result<T, Problem>;

fn unavailable(err: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %err, "admin call failed on a backing service");
    Problem::unavailable()
}

fn webhook_not_found(id: &str) -> Problem {
    Problem::not_found(format!("no webhook with id {id:?}"))
}

impl AdminApi {
    pub fn new(adapters: Adapters) -> Self {
        AdminApi {
            store: adapters.store,
            secrets: adapters.secrets,
        }
    }

    async fn webhook(&self, id: &str) -> ApiResult<WebhookRecord> {
        self.store
            .get_webhook(id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| webhook_not_found(id))
    }

    /// "Last delivery" is read from the log, not kept as an extra write per delivery.
    async fn view(&self, webhook: &WebhookRecord) -> ApiResult<WebhookView> {
        let latest = self
            .store
            .webhook_log(&webhook.id, 1)
            .await
            .map_err(unavailable)?;
        Ok(WebhookView::new(
            webhook,
            latest.first().map(LastDelivery::from),
        ))
    }

    pub async fn create_webhook(&self, body: &[u8]) -> ApiResult<WebhookWithSecret> {
        let new = CreateWebhookRequest::parse(body)?;
        let id = ids::new_webhook_id();
        let secret = SigningSecret::generate();
        let secret_ciphertext = self.secrets.seal(&id, &secret).await.map_err(unavailable)?;
        let now = clock::rfc3339_millis(SystemTime::now());
        let record = WebhookRecord {
            id,
            name: new.name,
            url: new.url,
            events: new.events,
            status: if new.active {
                WebhookStatus::Active
            } else {
                WebhookStatus::Paused
            },
            secret_ciphertext,
            secret_hint: secret.hint(),
            created_at: now.clone(),
            updated_at: now,
        };
        self.store
            .create_webhook(&record)
            .await
            .map_err(unavailable)?;
        tracing::info!(webhook_id = %record.id, "webhook created");
        Ok(WebhookWithSecret {
            webhook: WebhookView::new(&record, None),
            secret: secret.expose().to_owned(),
        })
    }

    pub async fn list_webhooks(&self) -> ApiResult<Vec<WebhookView>> {
        let webhooks = self.store.list_webhooks().await.map_err(unavailable)?;
        join_all(webhooks.iter().map(|w| self.view(w)))
            .await
            .into_iter()
            .collect()
    }

    pub async fn get_webhook(&self, id: &str) -> ApiResult<WebhookView> {
        let webhook = self.webhook(id).await?;
        self.view(&webhook).await
    }

    pub async fn delete_webhook(&self, id: &str) -> ApiResult<()> {
        let webhook = self.webhook(id).await?;
        self.store
            .delete_webhook(&webhook)
            .await
            .map_err(unavailable)?;
        tracing::info!(webhook_id = %id, "webhook deleted");
        Ok(())
    }

    pub async fn attempts(&self, id: &str, limit: u32) -> ApiResult<Vec<AttemptView>> {
        self.webhook(id).await?;
        let log = self
            .store
            .webhook_log(id, limit)
            .await
            .map_err(unavailable)?;
        Ok(log.iter().map(AttemptView::from).collect())
    }

    pub async fn attempt(&self, id: &str, attempt_id: &str) -> ApiResult<AttemptDetailView> {
        self.webhook(id).await?;
        let not_found =
            || Problem::not_found(format!("webhook {id:?} has no attempt {attempt_id:?}"));
        let (delivery_id, number) = ids::parse_attempt_id(attempt_id).ok_or_else(not_found)?;
        let attempt = self
            .store
            .get_attempt(delivery_id, number)
            .await
            .map_err(unavailable)?
            .filter(|a| a.webhook_id == id)
            .ok_or_else(not_found)?;
        let body = self
            .store
            .get_event(&attempt.event_id)
            .await
            .map_err(unavailable)?
            .map(|e| e.payload);
        let request = attempt.request.as_ref().map(|r| RequestView {
            url: r.url.clone(),
            headers: r.headers.clone(),
            body: body.unwrap_or_default(),
        });
        Ok(AttemptDetailView {
            attempt: AttemptView::from(&attempt),
            request,
            response: attempt.response.clone(),
        })
    }

    pub async fn delivery(&self, id: &str, delivery_id: &str) -> ApiResult<DeliveryView> {
        self.webhook(id).await?;
        let delivery = self
            .store
            .get_delivery(delivery_id)
            .await
            .map_err(unavailable)?
            .filter(|d| d.webhook_id == id)
            .ok_or_else(|| {
                Problem::not_found(format!("webhook {id:?} has no delivery {delivery_id:?}"))
            })?;
        let attempts = self
            .store
            .attempts_of(delivery_id)
            .await
            .map_err(unavailable)?;
        Ok(DeliveryView::new(&delivery, &attempts))
    }
}

/// Parses `?limit=N` (1-100, default 100).
fn parse_limit(query: Option<&str>) -> ApiResult<u32> {
    let mut limit = MAX_LOG_LIMIT;
    for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                limit = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_LOG_LIMIT).contains(n))
                    .ok_or_else(|| {
                        Problem::bad_request(format!(
                            "limit must be a whole number from 1 to {MAX_LOG_LIMIT} (got {value:?})"
                        ))
                    })?
            }
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown query parameter {other:?}; only limit is accepted"
                )))
            }
        }
    }
    Ok(limit)
}

fn body_of(body: Result<Bytes, BytesRejection>) -> ApiResult<Bytes> {
    body.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))
}

/// The HTTP surface of this function.
pub fn router(api: Arc<AdminApi>) -> Router {
    Router::new()
        .route("/api/v1/webhooks", get(list_webhooks).post(create_webhook))
        .route(
            "/api/v1/webhooks/{id}",
            get(get_webhook).delete(delete_webhook),
        )
        .route("/api/v1/webhooks/{id}/attempts", get(list_attempts))
        .route(
            "/api/v1/webhooks/{id}/attempts/{attempt_id}",
            get(get_attempt),
        )
        .route(
            "/api/v1/webhooks/{id}/deliveries/{delivery_id}",
            get(get_delivery),
        )
        .route("/api/v1/event-types", get(event_types))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(api)
}

async fn not_found() -> Problem {
    Problem::not_found("no such route; see GET /api/v1/openapi.json")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not accept that method",
    )
}

async fn list_webhooks(State(api): State<Arc<AdminApi>>) -> ApiResult<Json<serde_json::Value>> {
    let webhooks = api.list_webhooks().await?;
    Ok(Json(json!({ "webhooks": webhooks })))
}

async fn create_webhook(
    State(api): State<Arc<AdminApi>>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    let created = api.create_webhook(&body_of(body)?).await?;
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

async fn get_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(api.get_webhook(&id).await?))
}

async fn delete_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    api.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_attempts(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<serde_json::Value>> {
    let limit = parse_limit(query.as_deref())?;
    let attempts = api.attempts(&id, limit).await?;
    Ok(Json(json!({ "attempts": attempts })))
}

async fn get_attempt(
    State(api): State<Arc<AdminApi>>,
    Path((id, attempt_id)): Path<(String, String)>,
) -> ApiResult<Json<AttemptDetailView>> {
    Ok(Json(api.attempt(&id, &attempt_id).await?))
}

async fn get_delivery(
    State(api): State<Arc<AdminApi>>,
    Path((id, delivery_id)): Path<(String, String)>,
) -> ApiResult<Json<DeliveryView>> {
    Ok(Json(api.delivery(&id, &delivery_id).await?))
}

async fn event_types() -> Json<serde_json::Value> {
    Json(json!({ "event_types": catalogue::views() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_parsing() {
        assert_eq!(parse_limit(None).unwrap(), 100);
        assert_eq!(parse_limit(Some("limit=5")).unwrap(), 5);
        for bad in ["limit=0", "limit=101", "limit=x", "limit=", "page=2"] {
            let p = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
        }
    }
}
