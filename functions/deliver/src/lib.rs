//! `deliver`: consumes the deliveries queue. For each message: sign the stored body, POST it,
//! log the attempt, and either finish the delivery or hide the message until its next attempt
//! is due (ChangeMessageVisibility), reporting it as a partial batch failure so SQS keeps it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::Bytes;
use futures::future::join_all;
use thiserror::Error;
use tracing::Instrument;

use webhooks_shared::alerts::{AlertMessage, FailureNotice, FailureReason};
use webhooks_shared::aws::Adapters;
use webhooks_shared::http_client::{ClientError, DeliveryClient, HttpAttempt};
use webhooks_shared::metrics::{self, Metric};
use webhooks_shared::model::{
    AttemptOutcome, AttemptRecord, DeliveryMessage, DeliveryState, RecordedRequest, WebhookRecord,
    WebhookStatus,
};
use webhooks_shared::queue::{Keep, Queue};
use webhooks_shared::retry::{random_jitter, NextStep, RetrySchedule};
use webhooks_shared::secret_box::{SecretBox, SecretBoxError, SecretCache};
use webhooks_shared::store::{Store, StoreError};
use webhooks_shared::{clock, Config};

/// Event bodies cached per container (events never change); cleared when this full.
const EVENT_CACHE_BYTES: usize = 16 * 1024 * 1024;
/// A message that surfaces more than this before its attempt is due is hidden again.
const EARLY_TOLERANCE: Duration = Duration::from_millis(250);

#[derive(Debug, Error)]
enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretBoxError),
    #[error("event {0} is not stored")]
    MissingEvent(String),
}

/// What becomes of one SQS message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageFate {
    /// The delivery reached a final state: let SQS delete the message.
    Done,
    /// Keep the message, hidden until the next attempt is due.
    RetryIn(Duration),
    /// Something broke on our side: keep the message and try again after the schedule's
    /// first wait; after too many receives SQS moves it to the dead-letter queue.
    Failed,
}

/// A message's fate, and the alert owed if its delivery failed for good.
struct Handled {
    fate: MessageFate,
    notice: Option<FailureNotice>,
}

impl From<MessageFate> for Handled {
    fn from(fate: MessageFate) -> Self {
        Handled { fate, notice: None }
    }
}

pub struct Deliverer {
    store: Store,
    queue: Queue,
    alerts: Queue,
    secrets: SecretBox,
    secret_cache: SecretCache,
    client: DeliveryClient,
    schedule: RetrySchedule,
    retention: Duration,
    events: Mutex<(HashMap<String, Arc<str>>, usize)>,
}

impl Deliverer {
    pub fn new(adapters: Adapters, config: &Config) -> Result<Self, ClientError> {
        Ok(Deliverer {
            store: adapters.store,
            queue: adapters.queue,
            alerts: adapters.alerts,
            secrets: adapters.secrets,
            secret_cache: SecretCache::default(),
            client: DeliveryClient::new(
                config.allow_private_targets,
                config.extra_ca_file.as_deref(),
            )?,
            schedule: config.retry_schedule.clone(),
            retention: config.retention,
            events: Mutex::new((HashMap::new(), 0)),
        })
    }

    /// How long an internal failure waits before the message is tried again.
    fn internal_retry_wait(&self) -> Duration {
        self.schedule
            .delay_after(1)
            .unwrap_or(Duration::from_secs(60))
    }

    /// Handles one SQS batch; its messages are delivered concurrently.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut handled = join_all(event.records.iter().map(|m| self.handle_message(m))).await;

        // Every permanent failure goes to the alerter, in one batched send. If that fails,
        // the messages are kept: their next receive sends the notices again.
        let notices: Vec<AlertMessage> = handled
            .iter()
            .filter_map(|h| h.notice.clone().map(AlertMessage::Failure))
            .collect();
        if !notices.is_empty() {
            if let Err(err) = self.alerts.send(&notices).await {
                tracing::error!(error = %err, "failure notices not queued; the messages will be retried");
                for h in handled.iter_mut().filter(|h| h.notice.is_some()) {
                    h.fate = MessageFate::Failed;
                }
            }
        }

        let decisions = handled.iter().map(|h| match h.fate {
            MessageFate::Done => Keep::No,
            MessageFate::RetryIn(delay) => Keep::For(delay),
            MessageFate::Failed => Keep::For(self.internal_retry_wait()),
        });
        self.queue.settle(&event.records, decisions).await
    }

    async fn handle_message(&self, message: &SqsMessage) -> Handled {
        let parsed = message
            .body
            .as_deref()
            .map(serde_json::from_str::<DeliveryMessage>);
        let delivery = match parsed {
            Some(Ok(delivery)) => delivery,
            _ => {
                tracing::error!(message_id = ?message.message_id, "unreadable delivery message");
                return MessageFate::Failed.into();
            }
        };
        let span = tracing::info_span!(
            "delivery",
            event_id = %delivery.event_id,
            delivery_id = %delivery.delivery_id,
            webhook_id = %delivery.webhook_id
        );
        async {
            match self.deliver(&delivery).await {
                Ok(handled) => handled,
                Err(err) => {
                    tracing::error!(error = %err, "delivery could not be processed");
                    MessageFate::Failed.into()
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn deliver(&self, delivery: &DeliveryMessage) -> Result<Handled, DeliverError> {
        let attempts = self.store.attempts_of(&delivery.delivery_id).await?;
        let latest = attempts.iter().max_by_key(|a| a.attempt);
        let now = SystemTime::now();
        if let Some(last) = latest {
            if last.delivery_state.is_final() {
                // SQS handed back a message whose delivery already has a final answer: no
                // second request. Its alert is owed again in case the first was not queued
                // (the alerter counts each failure once).
                tracing::info!(state = ?last.delivery_state, "delivery already final; not sending again");
                return self.concluded(last).await;
            }
            if let Some(wait) = not_due_yet(last, now) {
                return Ok(MessageFate::RetryIn(wait).into());
            }
        }
        let number = latest.map_or(1, |a| a.attempt + 1);
        let record = match self.store.get_webhook(&delivery.webhook_id).await? {
            None => self.cancelled(delivery, number, now, "cancelled: webhook deleted"),
            Some(w) if w.status == WebhookStatus::Paused => {
                self.cancelled(delivery, number, now, "cancelled: webhook paused")
            }
            Some(webhook) => self.attempt(delivery, &webhook, number, now).await?,
        };
        let record = if self.store.put_attempt_if_new(&record).await? {
            record_metrics(delivery, &record, now);
            record
        } else {
            // Another copy of this message got there first; follow what it recorded.
            match self
                .store
                .get_attempt(&record.delivery_id, record.attempt)
                .await?
            {
                Some(existing) => existing,
                None => return Ok(MessageFate::Failed.into()),
            }
        };
        tracing::info!(
            attempt = record.attempt,
            outcome = ?record.outcome,
            response_status = record.response_status,
            error = record.error.as_deref(),
            state = ?record.delivery_state,
            duration_ms = record.duration_ms,
            "attempt recorded"
        );
        match record.delivery_state {
            DeliveryState::Retrying => Ok(MessageFate::RetryIn(
                not_due_yet(&record, SystemTime::now()).unwrap_or_default(),
            )
            .into()),
            _ => self.concluded(&record).await,
        }
    }

    /// The end of a delivery: done, with an alert if it failed for good.
    async fn concluded(&self, last: &AttemptRecord) -> Result<Handled, DeliverError> {
        if last.delivery_state != DeliveryState::PermanentlyFailed {
            return Ok(MessageFate::Done.into());
        }
        let payload = self.event_body(&last.event_id).await?;
        let reason = if last.attempt >= self.schedule.max_attempts() {
            FailureReason::RetriesExhausted
        } else {
            FailureReason::NotRetryable
        };
        Ok(Handled {
            fate: MessageFate::Done,
            notice: Some(FailureNotice::from_line(last, &payload, reason)),
        })
    }

    /// Signs and sends attempt `number`, and says what it led to.
    async fn attempt(
        &self,
        delivery: &DeliveryMessage,
        webhook: &WebhookRecord,
        number: u32,
        now: SystemTime,
    ) -> Result<AttemptRecord, DeliverError> {
        let body = self.event_body(&delivery.event_id).await?;
        let secret = self
            .secret_cache
            .get_or_open(&self.secrets, &webhook.id, &webhook.secret_ciphertext)
            .await?;
        let timestamp = clock::unix_seconds(now);
        let headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/json".into()),
            (
                "x-comps-signature".into(),
                secret.comps_signature(body.as_bytes()),
            ),
            ("x-comps-timestamp".into(), timestamp.to_string()),
            ("x-comps-event".into(), delivery.event_type.clone()),
            ("x-comps-event-id".into(), delivery.event_id.clone()),
            ("x-comps-delivery".into(), delivery.delivery_id.clone()),
            ("x-comps-attempt".into(), number.to_string()),
            ("webhook-id".into(), delivery.event_id.clone()),
            ("webhook-timestamp".into(), timestamp.to_string()),
            (
                "webhook-signature".into(),
                secret.standard_signature(&delivery.event_id, timestamp, body.as_bytes()),
            ),
        ];
        let sent = self
            .client
            .post(
                &webhook.url,
                &headers,
                Bytes::copy_from_slice(body.as_bytes()),
            )
            .await;
        let step = self
            .schedule
            .next_step(number, &sent.result, random_jitter());
        let mut recorded_headers: std::collections::BTreeMap<String, String> =
            headers.into_iter().collect();
        recorded_headers.insert(
            "user-agent".into(),
            concat!("comps-webhooks/", env!("CARGO_PKG_VERSION")).into(),
        );
        let mut record = AttemptRecord::line(delivery, number, now, self.retention);
        let HttpAttempt {
            response,
            error,
            duration,
            ..
        } = sent;
        record.outcome = if step == NextStep::Succeeded {
            AttemptOutcome::Succeeded
        } else {
            AttemptOutcome::Failed
        };
        record.response_status = response.as_ref().map(|r| r.status);
        record.error = error;
        record.duration_ms = duration.as_millis() as u64;
        record.request = Some(RecordedRequest {
            url: webhook.url.clone(),
            headers: recorded_headers,
        });
        record.response = response;
        match step {
            NextStep::Succeeded => record.delivery_state = DeliveryState::Succeeded,
            NextStep::PermanentlyFailed => record.delivery_state = DeliveryState::PermanentlyFailed,
            NextStep::RetryIn(wait) => {
                record.delivery_state = DeliveryState::Retrying;
                record.next_attempt_at = Some(clock::rfc3339_millis(SystemTime::now() + wait));
            }
        }
        Ok(record)
    }

    /// A delivery whose webhook was paused or deleted ends `cancelled` when its turn comes,
    /// as a line of the log (no request is made), so it can be seen and redelivered.
    fn cancelled(
        &self,
        delivery: &DeliveryMessage,
        number: u32,
        now: SystemTime,
        reason: &str,
    ) -> AttemptRecord {
        let mut record = AttemptRecord::line(delivery, number, now, self.retention);
        record.error = Some(reason.to_owned());
        record.delivery_state = DeliveryState::Cancelled;
        record
    }

    async fn event_body(&self, event_id: &str) -> Result<Arc<str>, DeliverError> {
        if let Some(body) = self
            .events
            .lock()
            .ok()
            .and_then(|c| c.0.get(event_id).cloned())
        {
            return Ok(body);
        }
        let event = self
            .store
            .get_event(event_id)
            .await?
            .ok_or_else(|| DeliverError::MissingEvent(event_id.to_owned()))?;
        let body: Arc<str> = Arc::from(event.payload);
        if let Ok(mut cache) = self.events.lock() {
            let (entries, bytes) = &mut *cache;
            if *bytes + body.len() > EVENT_CACHE_BYTES {
                entries.clear();
                *bytes = 0;
            }
            *bytes += body.len();
            entries.insert(event_id.to_owned(), body.clone());
        }
        Ok(body)
    }
}

/// CloudWatch metrics of one recorded attempt (embedded metric format).
fn record_metrics(delivery: &DeliveryMessage, record: &AttemptRecord, started: SystemTime) {
    if record.request.is_none() {
        return; // cancelled: no request was made
    }
    let outcome = match record.outcome {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Failed => "failed",
    };
    metrics::emit(
        &[("Outcome", outcome)],
        &[
            Metric::count("Attempts"),
            Metric::millis("ReceiverDuration", record.duration_ms),
        ],
    );
    let mut totals = Vec::new();
    match record.delivery_state {
        DeliveryState::Succeeded => totals.push(Metric::count("DeliveriesSucceeded")),
        DeliveryState::PermanentlyFailed => {
            totals.push(Metric::count("DeliveriesPermanentlyFailed"))
        }
        _ => {}
    }
    let created = delivery
        .created_at
        .as_deref()
        .and_then(clock::parse_rfc3339);
    if let (1, Some(created)) = (record.attempt, created) {
        let latency = started.duration_since(created).unwrap_or_default();
        totals.push(Metric::millis(
            "DeliveryLatency",
            latency.as_millis() as u64,
        ));
    }
    if !totals.is_empty() {
        metrics::emit(&[], &totals);
    }
}

/// How long until the attempt after `last` is due, if it is not due yet.
fn not_due_yet(last: &AttemptRecord, now: SystemTime) -> Option<Duration> {
    let due = clock::parse_rfc3339(last.next_attempt_at.as_deref()?)?;
    let wait = due.duration_since(now).ok()?;
    (wait > EARLY_TOLERANCE).then_some(wait)
}
