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
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{IntoParams, Modify, ToSchema};

pub use input::{
    invisible_character, validate_events, validate_name, validate_url, CreateWebhookRequest,
    NewWebhook, Targets, UpdateWebhookRequest, WebhookChange, MAX_NAME_CHARS, MAX_URL_LEN,
    NAME_PATTERN,
};
pub use views::{LastDelivery, WebhookList, WebhookView, WebhookWithSecret};

use crate::paging;
use crate::path_ids::{IdKind, WEBHOOK_ID_DESCRIPTION};
use crate::problems::{body_of, unavailable, ApiResult, RouteResult};
use crate::AdminApi;
use webhooks_shared::adapters::openapi::{
    BadRequest, NotFound, ServiceUnavailable, Unauthorized, UnprocessableEntity,
};
use webhooks_shared::domain::catalogue::EventTypeName;
use webhooks_shared::domain::circuit;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{self, WebhookId};
use webhooks_shared::domain::model::{StoredSecret, WebhookRecord, WebhookStatus};
use webhooks_shared::domain::problem::Problem;
use webhooks_shared::domain::signing::SigningSecret;

/// The webhook list answers at most this many webhooks per page (and this many by default).
pub const MAX_WEBHOOK_PAGE: u32 = 100;
/// How many webhooks' last deliveries (a log query each) a list page reads at once.
const CONCURRENT_VIEWS: usize = 16;

fn webhook_not_found(id: &WebhookId) -> Problem {
    Problem::not_found(format!("no webhook with id {id:?}"))
}

/// [`changed_concurrently`]'s answer, as the API document describes it (a change, a delete
/// or a secret's rotation that lost a race).
#[derive(utoipa::ToResponse)]
#[response(
    description = "The webhook was changed by another request at the same time (e.g. a PATCH \
                   landed meanwhile); read it again and retry.",
    content_type = "application/problem+json"
)]
pub struct ChangedConcurrently(#[allow(dead_code)] Problem);

fn changed_concurrently(id: &WebhookId) -> Problem {
    Problem::conflict(format!(
        "webhook {id:?} was changed by another request at the same time; read it again and retry"
    ))
}

/// A link's value for the webhook an answer shows (its `id`).
const ANSWERED_ID: &str = "$response.body#/id";
/// A link's value for the webhook the request's path named.
const REQUESTED_ID: &str = "$request.path.id";

/// The webhook list's query: `?limit=N` (1-100, default 100) and `?cursor=` (the
/// `next_cursor` of the page before; absent: the first page). Parsed by [`parse_list_query`]
/// (which refuses other parameters); the derive documents it.
#[derive(Debug, PartialEq, Eq, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// How many webhooks to return at most, 1-100.
    #[param(required = false, minimum = 1, maximum = 100, default = json!(MAX_WEBHOOK_PAGE))]
    limit: u32,
    /// `next_cursor` from the previous page, unchanged. Opaque; leave it out for the first
    /// page. One this API did not answer is a 400.
    // At most base64url of a path id (`MAX_ID_CHARS`), with room to change the form.
    #[param(
        rename = "cursor",
        value_type = Option<String>,
        min_length = 1,
        max_length = 128,
        pattern = "^[A-Za-z0-9_-]+$"
    )]
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

/// List webhooks, a page at a time
///
/// One page of at most `limit` webhooks (default and most 100), each with its last delivery.
/// While `next_cursor` is not null, pass it as `cursor` for the next page; every webhook is on
/// exactly one page (one created or deleted meanwhile may or may not be). The order is the
/// store's: stable from page to page, not by name or time.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    operation_id = "listWebhooks",
    tag = "webhooks",
    params(ListQuery),
    responses(
        (status = 200, body = WebhookList, description = "One page of webhooks."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 503, response = ServiceUnavailable),
    )
)]
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

/// Create a webhook
///
/// Answers with the full signing secret: the only time it is shown.
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    operation_id = "createWebhook",
    tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, body = WebhookWithSecret,
            description = "Created; the answer carries the full secret.",
            headers(("Location" = String, description = "`/api/v1/webhooks/{id}` of the new webhook."))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    )
)]
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

/// Get a webhook (never its secret)
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}",
    operation_id = "getWebhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION)),
    responses(
        (status = 200, body = WebhookView, description = "The webhook."),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub(crate) async fn get_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
) -> RouteResult<Json<WebhookView>> {
    Ok(Json(api.get_webhook(&id).await?))
}

/// Change a webhook's name, URL, events or active state
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    operation_id = "updateWebhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION)),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, body = WebhookView, description = "The updated webhook."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = ChangedConcurrently),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    )
)]
pub(crate) async fn update_webhook(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<Json<WebhookView>> {
    let change = UpdateWebhookRequest::parse(&body_of(body)?, api.targets())?;
    Ok(Json(api.update_webhook(&id, change).await?))
}

/// Delete a webhook
///
/// Its queued deliveries end `cancelled`.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    operation_id = "deleteWebhook",
    tag = "webhooks",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION)),
    responses(
        (status = 204, description = "Deleted.",
            links(
                ("GetWebhook" = (operation_id = "getWebhook",
                    description = "The deleted webhook: a 404 from now on.",
                    parameters(("path.id" = REQUESTED_ID)))),
            )
        ),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = ChangedConcurrently),
        (status = 503, response = ServiceUnavailable),
    )
)]
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
        let sealed = StoredSecret {
            ciphertext: secret_ciphertext,
            hint: secret.hint(),
        };
        let record = WebhookRecord::created(id, new, sealed, Timestamp::now());
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

/// This feature's routes in the API document (see `crate::openapi`). `EventType` is listed
/// because schemas refer to it from `schema_with` functions, whose references are not
/// collected.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_webhooks, create_webhook, get_webhook, update_webhook, delete_webhook),
    components(schemas(EventTypeName)),
    modifiers(&AtLeastOneChange)
)]
pub struct Routes;

/// `UpdateWebhook` holds at least one field (`minProperties: 1`). Set here because utoipa
/// 5.5's `#[schema(min_properties = 1)]` writes `maxProperties` instead.
struct AtLeastOneChange;

impl Modify for AtLeastOneChange {
    fn modify(&self, document: &mut Document) {
        let update = document
            .components
            .as_mut()
            .and_then(|components| components.schemas.get_mut(&*UpdateWebhookRequest::name()));
        if let Some(RefOr::T(Schema::Object(update))) = update {
            update.min_properties = Some(1);
        }
    }
}

/// What can be done with a webhook: every answer that shows one (create, read, change,
/// rotate-secret) links to each of these by the answer's `id`, but to its own operation. For
/// clients, and for schemathesis's stateful phase, which follows them with real ids
/// (tests/tests/contract).
const WEBHOOK_LINKS: [(&str, &str, &str); 7] = [
    ("GetWebhook", "getWebhook", "Read this webhook."),
    ("UpdateWebhook", "updateWebhook", "Change this webhook."),
    (
        "RotateSecret",
        "rotateWebhookSecret",
        "Give this webhook a new signing secret.",
    ),
    ("DeleteWebhook", "deleteWebhook", "Delete this webhook."),
    (
        "ListAttempts",
        "listAttempts",
        "This webhook's delivery log.",
    ),
    (
        "SendTestEvent",
        "sendTestEvent",
        "Send this webhook a test event.",
    ),
    (
        "RecoverDeliveries",
        "recoverDeliveries",
        "Redeliver this webhook's failed deliveries in a window.",
    ),
];

/// Adds [`WEBHOOK_LINKS`] to every answer whose body is a `Webhook` or a `WebhookWithSecret`,
/// whichever feature's route gives it (`crate::openapi::admin_routes` applies it to them all).
pub struct WebhookLinks;

impl Modify for WebhookLinks {
    fn modify(&self, document: &mut Document) {
        let shows_a_webhook = [WebhookView::name(), WebhookWithSecret::name()]
            .map(|name| Ref::from_schema_name(name).ref_location);
        for item in document.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let own = operation.operation_id.clone();
                for answer in operation.responses.responses.values_mut() {
                    let RefOr::T(answer) = answer else { continue };
                    let body = answer.content.get("application/json");
                    let shows = body.and_then(|c| c.schema.as_ref()).is_some_and(
                        |schema| matches!(schema, RefOr::Ref(r) if shows_a_webhook.contains(&r.ref_location)),
                    );
                    if !shows {
                        continue;
                    }
                    for (name, target, description) in WEBHOOK_LINKS {
                        if own.as_deref() == Some(target) {
                            continue;
                        }
                        let link = LinkBuilder::new()
                            .operation_id(target)
                            .parameter("path.id", ANSWERED_ID)
                            .description(description)
                            .build();
                        answer.links.insert(name.to_owned(), RefOr::T(link));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use utoipa::OpenApi;
    use webhooks_shared::domain::ids::MAX_ID_CHARS;

    #[test]
    fn every_answer_showing_a_webhook_links_to_what_can_be_done_with_it_but_itself() {
        use std::collections::BTreeSet;
        let document = serde_json::to_value(crate::openapi::admin_routes()).expect("JSON");
        // (target operation, its `path.id`) of each link of an answer.
        let links = |path: &str, method: &str, status: &str| -> BTreeSet<(String, String)> {
            let answer = &document["paths"][path][method]["responses"][status];
            let links = answer["links"].as_object().cloned().unwrap_or_default();
            links
                .values()
                .map(|link| {
                    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                    (
                        text(&link["operation_id"]),
                        text(&link["parameters"]["path.id"]),
                    )
                })
                .collect()
        };
        let all_but = |own: &str| -> BTreeSet<(String, String)> {
            WEBHOOK_LINKS
                .iter()
                .filter(|(_, target, _)| *target != own)
                .map(|(_, target, _)| (target.to_string(), ANSWERED_ID.to_owned()))
                .collect()
        };
        let webhook = "/api/v1/webhooks/{id}";
        assert_eq!(
            links("/api/v1/webhooks", "post", "201"),
            all_but("createWebhook")
        );
        assert_eq!(links(webhook, "get", "200"), all_but("getWebhook"));
        assert_eq!(links(webhook, "patch", "200"), all_but("updateWebhook"));
        let rotate = "/api/v1/webhooks/{id}/rotate-secret";
        assert_eq!(links(rotate, "post", "200"), all_but("rotateWebhookSecret"));
        // Answers that show no webhook get none of these.
        assert!(links("/api/v1/webhooks", "get", "200").is_empty());
        let test_event = links("/api/v1/webhooks/{id}/test-event", "post", "202");
        assert!(!test_event.is_empty());
        assert!(test_event
            .iter()
            .all(|(target, _)| target != "updateWebhook"));
    }

    /// Attributes take literals, not constants: the document's numbers are held to the ones
    /// the routes enforce. And `AtLeastOneChange` did its work.
    #[test]
    fn the_document_states_the_limits_the_routes_enforce() {
        let document = serde_json::to_value(Routes::openapi()).expect("JSON");
        let schemas = &document["components"]["schemas"];
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        let name = &schemas["Webhook"]["properties"]["name"];
        assert_eq!(name["maxLength"], MAX_NAME_CHARS);
        assert!(text(&name["description"]).contains(&format!("1-{MAX_NAME_CHARS} ")));
        let page = &schemas["WebhookList"]["properties"]["webhooks"];
        assert_eq!(page["maxItems"], MAX_WEBHOOK_PAGE);
        let list = &document["paths"]["/api/v1/webhooks"]["get"];
        assert!(text(&list["description"]).contains(&format!("most {MAX_WEBHOOK_PAGE})")));
        let limit = &list["parameters"][0];
        assert_eq!(limit["name"], "limit");
        assert_eq!(limit["schema"]["maximum"], MAX_WEBHOOK_PAGE);
        assert_eq!(limit["schema"]["default"], MAX_WEBHOOK_PAGE);
        assert!(text(&limit["description"]).contains(&format!("1-{MAX_WEBHOOK_PAGE}.")));
        // The longest id a path may carry still has a cursor the document allows.
        let cursor = &list["parameters"][1];
        assert_eq!(cursor["name"], "cursor");
        let longest = WebhookId::from(format!("wh_{}", "0".repeat(MAX_ID_CHARS - 3)));
        assert!(
            cursor["schema"]["maxLength"].as_u64()
                >= Some(encode_list_cursor(&longest).len() as u64)
        );
        assert!(WEBHOOK_ID_DESCRIPTION.contains(&format!("longer than {MAX_ID_CHARS} characters")));
        let update = &schemas["UpdateWebhook"];
        assert_eq!(update["minProperties"], 1);
        assert_eq!(update.get("maxProperties"), None);
    }

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
