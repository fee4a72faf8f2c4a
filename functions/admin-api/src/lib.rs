//! `admin-api`: what an admin does in the user guide's "Managing Webhooks", "Delivery Log"
//! and "Redelivery" sections, as the JSON API of SPEC §6. `http` maps it onto routes.

pub mod console;
pub mod http;
pub mod recovery;
pub mod scope;
pub mod test_event;
pub mod validation;
pub mod views;
pub mod wire;

use std::time::{Duration, Instant, SystemTime};

use futures::future::try_join_all;
use futures::stream::{self, StreamExt, TryStreamExt};

use crate::recovery::{Sweep, RECOVERY_TIME_BUDGET};
use crate::validation::{NewWebhook, RecoveryCall, Targets, WebhookChange};
use crate::views::{
    AttemptDetailView, AttemptView, DeliveryView, LastDelivery, RecoveryView, RequestView,
    WebhookView, WebhookWithSecret,
};
use webhooks_shared::adapters::queue::Queue;
use webhooks_shared::adapters::secret_box::SecretBox;
use webhooks_shared::adapters::store::{LogPosition, Store, StoreError};
use webhooks_shared::adapters::Adapters;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{DeliveryId, EventId, WebhookId};
use webhooks_shared::domain::model::{
    AttemptRecord, DeliveryMessage, DeliveryRecord, DeliveryRef, EventRecord, WebhookRecord,
    WebhookStatus,
};
use webhooks_shared::domain::problem::Problem;
use webhooks_shared::domain::signing::SigningSecret;
use webhooks_shared::domain::{circuit, clock, ids};
use webhooks_shared::Config;

pub use http::{public_router, router};
pub use wire::{wire, Handler};

/// The log shows at most this many attempts per call (and this many by default).
pub const MAX_LOG_LIMIT: u32 = 100;
/// The webhook list answers at most this many webhooks per page (and this many by default).
pub const MAX_WEBHOOK_PAGE: u32 = 100;
/// How many webhooks' last deliveries (a log query each) a list page reads at once.
const CONCURRENT_VIEWS: usize = 16;

pub struct AdminApi {
    store: Store,
    secrets: SecretBox,
    queue: Queue,
    retention: Duration,
    /// Which hosts a webhook URL may name (the local switch lifts the public-only rule).
    targets: Targets,
}

type ApiResult<T> = Result<T, Problem>;

fn unavailable(err: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %err, "admin call failed on a backing service");
    Problem::unavailable()
}

fn webhook_not_found(id: &WebhookId) -> Problem {
    Problem::not_found(format!("no webhook with id {id:?}"))
}

fn changed_concurrently(id: &WebhookId) -> Problem {
    Problem::conflict(format!(
        "webhook {id:?} was changed by another request at the same time; read it again and retry"
    ))
}

fn paused(id: &WebhookId) -> Problem {
    Problem::conflict(format!(
        "webhook {id:?} is paused; resume it first (PATCH {{\"active\": true}})"
    ))
}

impl AdminApi {
    /// Built by [`wire`] (and the crate's own tests).
    pub(crate) fn new(adapters: Adapters, config: &Config) -> Self {
        AdminApi {
            store: adapters.store,
            secrets: adapters.secrets,
            queue: adapters.queue,
            retention: config.retention,
            targets: Targets::from_switch(config.allow_private_targets),
        }
    }

    async fn webhook(&self, id: &WebhookId) -> ApiResult<WebhookRecord> {
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
    async fn with_secret(
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

    /// Stores `updated` in place of `current`, unless someone changed it meanwhile (409).
    async fn save(
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

    pub async fn attempts(&self, id: &WebhookId, limit: u32) -> ApiResult<Vec<AttemptView>> {
        self.webhook(id).await?;
        let log = self
            .store
            .webhook_log(id, limit)
            .await
            .map_err(unavailable)?;
        Ok(log.iter().map(AttemptView::from).collect())
    }

    async fn attempt_record(&self, id: &WebhookId, attempt_id: &str) -> ApiResult<AttemptRecord> {
        let not_found =
            || Problem::not_found(format!("webhook {id:?} has no attempt {attempt_id:?}"));
        let (delivery_id, number) = attempt_id
            .parse::<ids::AttemptId>()
            .map_err(|_| not_found())?
            .into_parts();
        self.store
            .get_attempt(id, &delivery_id, number)
            .await
            .map_err(unavailable)?
            .filter(|a| &a.delivery.webhook_id == id)
            .ok_or_else(not_found)
    }

    /// One log line in full: the request as sent (exact body) and the response as received.
    pub async fn attempt(&self, id: &WebhookId, attempt_id: &str) -> ApiResult<AttemptDetailView> {
        self.webhook(id).await?;
        let attempt = self.attempt_record(id, attempt_id).await?;
        let request = match &attempt.request {
            None => None,
            Some(sent) => {
                let body = self
                    .store
                    .get_event(&attempt.delivery.event_id)
                    .await
                    .map_err(unavailable)?
                    .map(|e| e.payload)
                    .unwrap_or_default();
                Some(RequestView {
                    url: sent.url.clone(),
                    headers: sent.headers.clone(),
                    body,
                })
            }
        };
        Ok(AttemptDetailView {
            attempt: AttemptView::from(&attempt),
            request,
            response: attempt.response.clone(),
        })
    }

    pub async fn delivery(
        &self,
        id: &WebhookId,
        delivery_id: &DeliveryId,
    ) -> ApiResult<DeliveryView> {
        self.webhook(id).await?;
        // A manual delivery has an item from the moment it is made; a fan-out delivery is
        // known by its attempts (it has none before its first).
        let (item, attempts) = futures::try_join!(
            self.store.get_delivery(delivery_id),
            self.store.attempts_of(id, delivery_id)
        )
        .map_err(unavailable)?;
        let delivery = item
            .map(|d| d.delivery())
            .or_else(|| attempts.first().map(|a| a.delivery.clone()))
            .filter(|d| &d.webhook_id == id)
            .ok_or_else(|| {
                Problem::not_found(format!(
                    "webhook {id:?} has no delivery {delivery_id:?} (a delivery made by \
                     fan-out is found from its first attempt on)"
                ))
            })?;
        Ok(DeliveryView::new(&delivery, &attempts))
    }

    /// Sends the attempt's event again — same body bytes, same event id — as a new manual
    /// delivery with the full retry schedule.
    pub async fn redeliver(&self, id: &WebhookId, attempt_id: &str) -> ApiResult<DeliveryId> {
        let webhook = self.webhook(id).await?;
        let attempt = self.attempt_record(id, attempt_id).await?;
        if webhook.status == WebhookStatus::Paused {
            return Err(paused(id));
        }
        self.require_event(&attempt.delivery.event_id).await?;
        let delivery = self.manual_delivery(ids::new_manual_delivery_id(), &attempt);
        self.store
            .put_delivery_if_new(&delivery)
            .await
            .map_err(unavailable)?;
        self.send_or_undo(std::slice::from_ref(&delivery)).await?;
        tracing::info!(webhook_id = %id, delivery_id = %delivery.id, event_id = %delivery.event_id, "redelivery queued");
        Ok(delivery.id)
    }

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
            .map(|position| recovery::encode_cursor(id, &position));
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

    /// Sends the catalogue's example of `call.event_type` to this webhook only: the event is
    /// stored with no webhooks of its own (the stream delivers it nowhere) and one manual
    /// delivery of it is queued, with the full retry schedule (see [`test_event`]).
    pub async fn send_test_event(
        &self,
        id: &WebhookId,
        call: test_event::TestEventCall,
    ) -> ApiResult<test_event::TestEventView> {
        let webhook = self.webhook(id).await?;
        if webhook.status == WebhookStatus::Paused {
            return Err(paused(id));
        }
        let now = SystemTime::now();
        let event_id = test_event::new_test_event_id();
        let (payload, resource_id) =
            test_event::payload(&event_id, call.event_type, &clock::rfc3339_seconds(now))
                .map_err(unavailable)?;
        let event = EventRecord {
            id: event_id.clone(),
            event_type: call.event_type.to_owned(),
            resource_id: resource_id.clone(),
            payload,
            fingerprint: format!("test:{}", call.event_type),
            received_at: Timestamp::from(now),
            webhooks: Some(Vec::new()),
            deliveries: None,
            webhook_pages: 0,
            expires_at: clock::expiry(now, self.retention),
        };
        if self
            .store
            .put_event_if_new(&event)
            .await
            .map_err(unavailable)?
            .is_some()
        {
            // A fresh ULID already taken: nothing is written, and a second call makes another.
            return Err(Problem::conflict(
                "a test event with the same id exists already; send the request again",
            ));
        }
        let delivery = DeliveryRecord::new(
            DeliveryRef {
                delivery_id: ids::new_manual_delivery_id(),
                webhook_id: id.clone(),
                event_id: event_id.clone(),
                event_type: call.event_type.to_owned(),
                resource_id,
                manual: true,
            },
            now,
            self.retention,
        );
        self.store
            .put_delivery_if_new(&delivery)
            .await
            .map_err(unavailable)?;
        self.send_or_undo(std::slice::from_ref(&delivery)).await?;
        tracing::info!(webhook_id = %id, delivery_id = %delivery.id, event_id = %event_id, "test event queued");
        Ok(test_event::TestEventView {
            delivery_id: delivery.id,
            event_id,
            event_type: call.event_type.to_owned(),
        })
    }

    async fn require_event(&self, event_id: &EventId) -> ApiResult<()> {
        match self.store.get_event(event_id).await.map_err(unavailable)? {
            Some(_) => Ok(()),
            None => Err(Problem::not_found(format!(
                "event {event_id:?} is no longer stored (past its retention period)"
            ))),
        }
    }

    fn manual_delivery(&self, delivery_id: DeliveryId, of: &AttemptRecord) -> DeliveryRecord {
        let delivery = DeliveryRef {
            delivery_id,
            manual: true,
            ..of.delivery.clone()
        };
        DeliveryRecord::new(delivery, SystemTime::now(), self.retention)
    }

    /// Queues the deliveries; if SQS refuses, removes them again so a retry of the same
    /// call creates them afresh instead of leaving deliveries that never run.
    async fn send_or_undo(&self, deliveries: &[DeliveryRecord]) -> ApiResult<()> {
        let messages: Vec<DeliveryMessage> = deliveries.iter().map(DeliveryMessage::from).collect();
        if let Err(err) = self.queue.send(&messages).await {
            for delivery in deliveries {
                if let Err(undo) = self.store.delete_delivery(&delivery.id).await {
                    tracing::error!(delivery_id = %delivery.id, error = %undo, "could not undo a delivery that was not queued");
                }
            }
            return Err(unavailable(err));
        }
        Ok(())
    }
}
