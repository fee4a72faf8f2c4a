//! Webhooks (the user guide's "Managing Webhooks"): create, list a page, read, change
//! (name, URL, events, pause) and delete. `input`: the bodies and their rules; `views`: what
//! the routes answer. Every other feature finds its webhook through [`AdminApi::webhook`].

mod input;
mod views;

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};

pub use input::{
    invisible_character, validate_events, validate_name, validate_url, CreateWebhookRequest,
    NewWebhook, Targets, UpdateWebhookRequest, WebhookChange, MAX_NAME_CHARS, MAX_URL_LEN,
};
pub use views::{LastDelivery, WebhookList, WebhookView, WebhookWithSecret};

use crate::paging;
use crate::path_ids::IdKind;
use crate::problems::{body_of, unavailable, ApiResult, RouteResult};
use crate::AdminApi;
use webhooks_shared::domain::circuit;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{self, WebhookId};
use webhooks_shared::domain::model::{WebhookRecord, WebhookStatus};
use webhooks_shared::domain::problem::Problem;
use webhooks_shared::domain::signing::SigningSecret;

/// The webhook list answers at most this many webhooks per page (and this many by default).
pub const MAX_WEBHOOK_PAGE: u32 = 100;
/// How many webhooks' last deliveries (a log query each) a list page reads at once.
const CONCURRENT_VIEWS: usize = 16;

fn webhook_not_found(id: &WebhookId) -> Problem {
    Problem::not_found(format!("no webhook with id {id:?}"))
}

fn changed_concurrently(id: &WebhookId) -> Problem {
    Problem::conflict(format!(
        "webhook {id:?} was changed by another request at the same time; read it again and retry"
    ))
}

/// The webhook list's query: `?limit=N` (1-100, default 100) and `?cursor=` (the
/// `next_cursor` of the page before; absent: the first page).
#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    limit: u32,
    after: Option<WebhookId>,
}

fn parse_list_query(query: Option<&str>) -> ApiResult<ListQuery> {
    let mut parsed = ListQuery {
        limit: MAX_WEBHOOK_PAGE,
        after: None,
    };
    for (key, value) in paging::pairs(query) {
        match key.as_ref() {
            "limit" => parsed.limit = paging::limit(&value, MAX_WEBHOOK_PAGE)?,
            "cursor" => parsed.after = Some(decode_list_cursor(&value)?),
            other => return Err(paging::unknown_parameter(other, "limit and cursor are")),
        }
    }
    Ok(parsed)
}

/// The cursor after webhook `last`: opaque to callers (base64url of its id), so its form
/// may change.
fn encode_list_cursor(last: &WebhookId) -> String {
    URL_SAFE_NO_PAD.encode(last.as_str())
}

/// The webhook a cursor from [`encode_list_cursor`] names. The webhook need not exist any
/// more: the next page starts where it was.
fn decode_list_cursor(text: &str) -> ApiResult<WebhookId> {
    URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|id| IdKind::Webhook.admits(id))
        .map(WebhookId::from)
        .ok_or_else(|| {
            Problem::bad_request(
                "cursor is not one this API answered: pass next_cursor from the previous \
                 page unchanged, or leave cursor out for the first page",
            )
        })
}

/// `GET /api/v1/webhooks`: one page, and `next_cursor` for the next (null after the last).
pub(crate) async fn list_webhooks(
    State(api): State<Arc<AdminApi>>,
    RawQuery(query): RawQuery,
) -> RouteResult<Json<WebhookList>> {
    let query = parse_list_query(query.as_deref())?;
    let (webhooks, next) = api.list_webhooks(query.limit, query.after.as_ref()).await?;
    Ok(Json(WebhookList {
        webhooks,
        next_cursor: next.as_ref().map(encode_list_cursor),
    }))
}

/// `POST /api/v1/webhooks` (201, with the secret and a `Location`).
pub(crate) async fn create_webhook(
    State(api): State<Arc<AdminApi>>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<Response> {
    let new = CreateWebhookRequest::parse(&body_of(body)?, api.targets())?;
    let created = api.create_webhook(new).await?;
    let location = format!("/api/v1/webhooks/{}", created.webhook.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(created),
    )
        .into_response())
}

/// `GET /api/v1/webhooks/{id}`.
pub(crate) async fn get_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<Json<WebhookView>> {
    Ok(Json(api.get_webhook(&id).await?))
}

/// `PATCH /api/v1/webhooks/{id}`.
pub(crate) async fn update_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<Json<WebhookView>> {
    let change = UpdateWebhookRequest::parse(&body_of(body)?, api.targets())?;
    Ok(Json(api.update_webhook(&id, change).await?))
}

/// `DELETE /api/v1/webhooks/{id}` (204).
pub(crate) async fn delete_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<StatusCode> {
    api.delete_webhook(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl AdminApi {
    /// Which hosts a webhook URL may name (the local switch lifts the public-only rule).
    fn targets(&self) -> Targets {
        Targets::from_switch(self.allow_private_targets)
    }

    /// The webhook `id`, or the 404 that says there is none.
    pub(crate) async fn webhook(&self, id: &WebhookId) -> ApiResult<WebhookRecord> {
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

    /// The answer that reveals a secret just committed: it is the caller's only copy, so a
    /// log that cannot be read now costs the `last_delivery` field, never the secret.
    pub(crate) async fn with_secret(
        &self,
        webhook: &WebhookRecord,
        secret: &SigningSecret,
    ) -> WebhookWithSecret {
        let view = match self.view(webhook).await {
            Ok(view) => view,
            Err(_) => {
                tracing::warn!(webhook_id = %webhook.id, "answering without last_delivery: the log could not be read");
                WebhookView::new(webhook, None)
            }
        };
        WebhookWithSecret {
            webhook: view,
            secret: secret.expose().to_owned(),
        }
    }

    pub async fn create_webhook(&self, new: NewWebhook) -> ApiResult<WebhookWithSecret> {
        let id = ids::new_webhook_id();
        let secret = SigningSecret::generate();
        let secret_ciphertext = self.secrets.seal(&id, &secret).await.map_err(unavailable)?;
        let now = Timestamp::now();
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
            created_at: now,
            updated_at: now,
            revision: 0,
            failures_in_row: 0,
            circuit_opened_at: None,
            probe_at: None,
            last_failure: None,
            awaiting_answer_since: None,
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

    /// One page of the webhooks (at most `limit`, after the webhook `after`), each with its
    /// last delivery, and the webhook to continue after when more may follow. Only this
    /// page's logs are read, [`CONCURRENT_VIEWS`] at a time.
    pub async fn list_webhooks(
        &self,
        limit: u32,
        after: Option<&WebhookId>,
    ) -> ApiResult<(Vec<WebhookView>, Option<WebhookId>)> {
        let (webhooks, next) = self
            .store
            .list_webhooks(limit, after)
            .await
            .map_err(unavailable)?;
        // (The futures are made before the stream: a closure over borrowed items would not
        // be `Send` enough for an axum handler.)
        let views: Vec<_> = webhooks.iter().map(|w| self.view(w)).collect();
        let views = stream::iter(views)
            .buffered(CONCURRENT_VIEWS)
            .try_collect()
            .await?;
        Ok((views, next))
    }

    pub async fn get_webhook(&self, id: &WebhookId) -> ApiResult<WebhookView> {
        let webhook = self.webhook(id).await?;
        self.view(&webhook).await
    }

    /// Edits name, URL, events or pause state. A paused webhook gets no new deliveries; its
    /// queued ones end `cancelled` when their turn comes (resuming does not revive them).
    pub async fn update_webhook(
        &self,
        id: &WebhookId,
        change: WebhookChange,
    ) -> ApiResult<WebhookView> {
        let current = self.webhook(id).await?;
        let mut updated = current.clone();
        if let Some(name) = change.name {
            updated.name = name;
        }
        if let Some(url) = change.url {
            if url != updated.url {
                circuit::close(&mut updated); // another endpoint: tried at once
            }
            updated.url = url;
        }
        if let Some(events) = change.events {
            updated.events = events;
        }
        if let Some(active) = change.active {
            updated.status = if active {
                WebhookStatus::Active
            } else {
                WebhookStatus::Paused
            };
        }
        let updated = self.save(&current, updated).await?;
        tracing::info!(webhook_id = %id, status = ?updated.status, "webhook updated");
        self.view(&updated).await
    }

    /// Stores `updated` in place of `current`, unless someone changed it meanwhile (409).
    pub(crate) async fn save(
        &self,
        current: &WebhookRecord,
        mut updated: WebhookRecord,
    ) -> ApiResult<WebhookRecord> {
        updated.updated_at = Timestamp::now();
        updated.revision = current.revision + 1;
        if self
            .store
            .update_webhook(current, &updated)
            .await
            .map_err(unavailable)?
        {
            Ok(updated)
        } else {
            Err(changed_concurrently(&current.id))
        }
    }

    pub async fn delete_webhook(&self, id: &WebhookId) -> ApiResult<()> {
        let webhook = self.webhook(id).await?;
        // Conditional on the revision read: a PATCH landing meanwhile may have subscribed
        // other event types, which this delete would otherwise leave behind.
        if !self
            .store
            .delete_webhook(&webhook)
            .await
            .map_err(unavailable)?
        {
            return Err(changed_concurrently(id));
        }
        tracing::info!(webhook_id = %id, "webhook deleted");
        Ok(())
    }
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi()]
pub struct Routes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_list_takes_a_limit_and_the_cursor_it_answered() {
        assert_eq!(
            parse_list_query(None).unwrap(),
            ListQuery {
                limit: 100,
                after: None
            }
        );
        let id = WebhookId::from("wh_01jd8x9k4m2n3p4q5r6s7t8v9w");
        let cursor = encode_list_cursor(&id);
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(
            parse_list_query(Some(&format!("limit=7&cursor={cursor}"))).unwrap(),
            ListQuery {
                limit: 7,
                after: Some(id)
            }
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "page=2",
            "cursor=",
            "cursor=%2A",
        ] {
            let p = parse_list_query(Some(bad)).unwrap_err();
            assert_eq!(p.status, 400, "{bad}");
        }
        // Base64 of something that is no webhook id: not a cursor of ours.
        for not_ours in ["wh_UPPER", "dlv_01jd8x9k4m2n3p4q5r6s7t8v9w", "", "wh_1 x"] {
            let cursor = URL_SAFE_NO_PAD.encode(not_ours);
            let p = parse_list_query(Some(&format!("cursor={cursor}"))).unwrap_err();
            assert!(p.detail.contains("next_cursor"), "{}", p.detail);
        }
    }
}
