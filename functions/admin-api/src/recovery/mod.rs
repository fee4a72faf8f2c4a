//! Recover (`POST /api/v1/webhooks/{id}/recover`): every delivery of a webhook that ended
//! `permanently_failed` or `cancelled` in a window of time, redelivered once each, a page of
//! the log per call (`call`: the body and its cursor; `sweep`: which lines owe a delivery).

mod call;
mod sweep;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use bytes::Bytes;
use futures::future::try_join_all;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use call::RecoverRequest;
pub use call::{RecoveryCall, MAX_RECOVERY_LINES};
use sweep::{encode_cursor, Sweep};
pub use sweep::{RecoveryWindow, RECOVERY_CHUNK};

use crate::path_ids::WEBHOOK_ID_DESCRIPTION;
use crate::problems::{body_of, paused, unavailable, ApiResult, Paused, RouteResult};
use crate::AdminApi;
use webhooks_shared::adapters::openapi::{
    NotFound, ServiceUnavailable, Unauthorized, UnprocessableEntity,
};
use webhooks_shared::adapters::store::{LogPosition, StoreError};
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRecord, DeliveryRef, WebhookStatus};
use webhooks_shared::domain::problem::Problem;

/// A call stops reading after this long and answers a cursor, whatever its line limit: the
/// backing services may be slow, and the answer must beat API Gateway's 30 s.
pub const RECOVERY_TIME_BUDGET: Duration = Duration::from_secs(10);

/// What `recover` answers: how far it got, and where to continue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RecoverAccepted)]
pub struct RecoveryView {
    /// Distinct deliveries that ended `permanently_failed` or `cancelled` in the part of the
    /// window this call read (each found again by a later call over the same lines).
    pub found: u32,
    /// Recovery deliveries this call sent to the queue: new ones, and ones not attempted yet
    /// (an earlier call wrote them and may not have queued them; the queue drops a copy sent
    /// within 5 minutes of the first). One already attempted is under way and not sent.
    pub queued: u32,
    /// Same as `queued` (kept for existing callers).
    // (The name SPEC §6 gives it.)
    pub deliveries: u32,
    /// Pass back as `cursor` (with the same `since` and `until`) to continue; `null` once the
    /// window is read to its end.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Redeliver every failed or cancelled delivery in a time window, a page at a time
///
/// Beyond the user guide: redelivers (as new manual deliveries with the full retry schedule)
/// every delivery of this webhook that ended `permanently_failed` or `cancelled` between
/// `since` and `until` (default now), once each: a recovery delivery's id is derived from the
/// original's, so recovering the same window again queues nothing new. One call reads at
/// most `limit` log lines (1,000 by default and at most) and stops early after about 10 s;
/// deliveries are queued as they are written, ten at a time. When more of the window may
/// remain, the answer carries `next_cursor`: call again with the same `since` and `until` and
/// that `cursor` until `next_cursor` is null (a last call may find nothing). A call that
/// failed (503) or timed out is simply made again: deliveries it wrote but did not queue are
/// queued by the next call (a recovery delivery without any attempt is queued again; one
/// with an attempt is under way and left alone).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks/{id}/recover",
    operation_id = "recoverDeliveries",
    tag = "delivery log",
    params(("id" = WebhookId, Path, description = WEBHOOK_ID_DESCRIPTION)),
    request_body = RecoverRequest,
    responses(
        (status = 202, description = "What this call found and queued, and where to continue.",
            body = RecoveryView,
            links(("ListAttempts" = (
                operation_id = "listAttempts",
                description = "This webhook's delivery log, where the recovered deliveries' \
                               attempts appear.",
                parameters(("path.id" = "$request.path.id")),
            ))),
        ),
        (status = 400, description = "Malformed request, or a `cursor` this API did not answer \
                                      for this webhook and window (the detail says what to fix).",
            body = Problem, content_type = "application/problem+json"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Paused),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    ),
)]
pub(crate) async fn recover(
    State(api): State<Arc<AdminApi>>,
    Path(id): Path<WebhookId>,
    body: Result<Bytes, BytesRejection>,
) -> RouteResult<(StatusCode, Json<RecoveryView>)> {
    let call = RecoveryCall::parse(&body_of(body)?, &id, SystemTime::now())?;
    Ok((StatusCode::ACCEPTED, Json(api.recover(&id, call).await?)))
}

impl AdminApi {
    /// Redelivers, once each, every delivery of this webhook that ended `permanently_failed`
    /// or `cancelled` within the window, reading at most `max_lines` log lines (and for at
    /// most [`RECOVERY_TIME_BUDGET`]) after `resume_after`. Deliveries are queued as they are
    /// written, a chunk at a time; when more may remain, the answer has the cursor to continue.
    /// Everything read before that cursor is queued (or was already under way), so calling
    /// again — with the cursor, or the same call after a failure — completes the window.
    pub async fn recover(&self, id: &WebhookId, call: RecoveryCall) -> ApiResult<RecoveryView> {
        let webhook = self.webhook(id).await?;
        if webhook.status == WebhookStatus::Paused {
            return Err(paused(id));
        }
        let since = Timestamp::from(call.window.since);
        let until = Timestamp::from(call.window.until);
        let deadline = Instant::now() + RECOVERY_TIME_BUDGET;
        let mut sweep = Sweep::default();
        let mut queued = 0;
        let mut position = call.resume_after;
        let mut read = 0;
        let mut more = true;
        'reading: while more && read < call.max_lines {
            let page = self
                .store
                .webhook_log_page(id, since, until, position.as_ref(), call.max_lines - read)
                .await
                .map_err(unavailable)?;
            // Without a filter, a page is empty only when nothing is left.
            more = page.more && !page.lines.is_empty();
            for line in &page.lines {
                read += 1;
                position = Some(LogPosition::of(line));
                if let Some(chunk) = sweep.take(line) {
                    queued += self.queue_recoveries(chunk).await?;
                }
                if Instant::now() >= deadline {
                    more = true;
                    break 'reading;
                }
            }
        }
        queued += self.queue_recoveries(sweep.rest()).await?;
        let next_cursor = position
            .filter(|_| more)
            .map(|position| encode_cursor(id, &position));
        tracing::info!(webhook_id = %id, lines = read, found = sweep.found(), queued, more, "recovery queued");
        Ok(RecoveryView {
            found: sweep.found(),
            queued,
            deliveries: queued,
            next_cursor,
        })
    }

    /// Writes recovery deliveries and queues those not queued yet: new ones, and ones an
    /// earlier call wrote but did not get to queue (it failed or timed out in between) —
    /// those have no attempt. One with an attempt is under way and left alone. A copy that
    /// is queued twice is harmless: the queue drops a duplicate sent within 5 minutes, and
    /// `deliver` follows the log, so a later copy makes no second request. Nothing is undone
    /// on failure: the caller calls again and that call queues what this one wrote.
    async fn queue_recoveries(&self, deliveries: Vec<DeliveryRef>) -> ApiResult<u32> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        let now = SystemTime::now();
        let due = try_join_all(deliveries.into_iter().map(|delivery| async move {
            // A re-queued delivery's message says it was made now, not when first written:
            // its latency is measured from when it really entered the queue.
            let record = DeliveryRecord::new(delivery, now, self.retention);
            let unqueued = self.store.put_delivery_if_new(&record).await?
                || self
                    .store
                    .attempts_of(&record.webhook_id, &record.id)
                    .await?
                    .is_empty();
            Ok::<_, StoreError>(unqueued.then_some(record))
        }))
        .await
        .map_err(unavailable)?;
        let messages: Vec<DeliveryMessage> =
            due.iter().flatten().map(DeliveryMessage::from).collect();
        if !messages.is_empty() {
            self.queue.send(&messages).await.map_err(unavailable)?;
        }
        Ok(messages.len() as u32)
    }
}

/// This feature's routes in the API document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(recover))]
pub struct Routes;

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    /// The route's description states figures the code holds as constants.
    #[test]
    fn the_document_says_the_recovery_limits_the_code_keeps() {
        let document = serde_json::to_value(Routes::openapi()).expect("JSON");
        let description = document["paths"]["/api/v1/webhooks/{id}/recover"]["post"]["description"]
            .as_str()
            .expect("a description");
        let lines = MAX_RECOVERY_LINES
            .to_string()
            .as_bytes()
            .rchunks(3)
            .rev()
            .map(|digits| String::from_utf8_lossy(digits).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        for figure in [
            format!("{lines} by default and at most"),
            format!("about {} s", RECOVERY_TIME_BUDGET.as_secs()),
        ] {
            assert!(
                description.contains(&figure),
                "{figure:?} in {description:?}"
            );
        }
        assert_eq!(RECOVERY_CHUNK, 10, "the description says \"ten at a time\"");
        assert!(description.contains("ten at a time"));
    }
}
