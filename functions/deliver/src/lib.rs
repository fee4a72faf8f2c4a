//! `deliver`: makes each delivery's attempts. First attempts come straight from the events
//! table's stream ([`stream`]); later ones, and redeliveries, from the deliveries queue. For
//! each: sign the stored body, POST it, log the attempt, and either finish the delivery or
//! keep its message hidden until the next attempt is due (ChangeMessageVisibility), reported
//! as a partial batch failure so SQS keeps it.

pub mod batch;
pub mod http_client;
pub mod metrics;
pub mod stream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::dynamodb;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use bytes::Bytes;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::batch::Handled;
pub use crate::batch::MessageFate;
use crate::http_client::{ClientError, DeliveryClient, HttpAttempt};
use crate::metrics::Metric;
use webhooks_shared::adapters::backoff::Backoff;
use webhooks_shared::adapters::queue::Queue;
use webhooks_shared::adapters::secret_box::{SecretBox, SecretBoxError, SecretCache};
use webhooks_shared::adapters::store::{Store, StoreError};
use webhooks_shared::adapters::Adapters;
use webhooks_shared::domain::alerts::FailureNotice;
use webhooks_shared::domain::clock;
use webhooks_shared::domain::ids::{EventId, WebhookId};
use webhooks_shared::domain::lifecycle::{self, AfterAttempt, Progress, Target, Turn};
use webhooks_shared::domain::model::{
    AttemptOutcome, AttemptRecord, DeliveryMessage, DeliveryState, WebhookRecord,
};
use webhooks_shared::domain::retry::{random_jitter, RetrySchedule};
use webhooks_shared::Config;

/// Event bodies cached per container (events never change); cleared when this full.
const EVENT_CACHE_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Error)]
enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretBoxError),
    #[error("event {0} is not stored")]
    MissingEvent(String),
}

/// What Lambda invokes deliver with: a batch of the events table's stream, or of the
/// deliveries queue (one function, two event sources).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DeliverEvent {
    // First: an SQS batch has no `dynamodb` member, so it never reads as a stream batch;
    // the other way round would (every SQS field is optional).
    Stream(dynamodb::Event),
    Queue(SqsEvent),
}

/// The partial batch response of either source (both are `{"batchItemFailures": [...]}`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum DeliverResponse {
    Stream(DynamoDbEventResponse),
    Queue(SqsBatchResponse),
}

/// Where a delivery came from: the deliveries queue, or the events table's stream (first
/// attempts of a fan-out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Queue,
    Stream,
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
    events: Mutex<(HashMap<EventId, Arc<str>>, usize)>,
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

    pub async fn handle(&self, event: DeliverEvent) -> DeliverResponse {
        match event {
            DeliverEvent::Stream(event) => DeliverResponse::Stream(self.handle_stream(event).await),
            DeliverEvent::Queue(event) => DeliverResponse::Queue(self.handle_batch(event).await),
        }
    }

    /// Handles one SQS batch; its messages are delivered concurrently.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let repeats = batch::repeats(&event.records);
        let webhooks = WebhookReads::default();
        let handled = join_all(event.records.iter().zip(repeats).map(|(m, repeat)| {
            let webhooks = &webhooks;
            async move {
                if repeat {
                    tracing::info!(message_id = ?m.message_id, "a copy of a delivery already in this batch; deleted");
                    return MessageFate::Done.into();
                }
                self.handle_message(m, webhooks).await
            }
        }))
        .await;

        // Every permanent failure goes to the alerter, in one batched send.
        let notices = batch::notices(&handled);
        let notices_queued = notices.is_empty()
            || match self.alerts.send(&notices).await {
                Ok(()) => true,
                Err(err) => {
                    tracing::error!(error = %err, "failure notices not queued; the messages will be retried");
                    false
                }
            };
        let settlement = batch::settlement(
            &event.records,
            &handled,
            notices_queued,
            lifecycle::internal_error_wait(&self.schedule),
        );
        self.queue.settle(settlement).await
    }

    async fn handle_message(&self, message: &SqsMessage, webhooks: &WebhookReads) -> Handled {
        let Some(delivery) = batch::read_message(message) else {
            tracing::error!(message_id = ?message.message_id, "unreadable delivery message");
            return MessageFate::Failed.into();
        };
        self.handle_delivery(&delivery, webhooks, Source::Queue, None)
            .await
    }

    /// Handles one delivery in a span naming it; an error is logged and fails it. `lines`:
    /// its attempts, if read already (else they are read here).
    async fn handle_delivery(
        &self,
        message: &DeliveryMessage,
        webhooks: &WebhookReads,
        source: Source,
        lines: Option<Vec<AttemptRecord>>,
    ) -> Handled {
        let span = tracing::info_span!(
            "delivery",
            event_id = %message.delivery.event_id,
            delivery_id = %message.delivery.delivery_id,
            webhook_id = %message.delivery.webhook_id
        );
        async {
            match self.deliver(message, webhooks, source, lines).await {
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

    async fn deliver(
        &self,
        message: &DeliveryMessage,
        webhooks: &WebhookReads,
        source: Source,
        lines: Option<Vec<AttemptRecord>>,
    ) -> Result<Handled, DeliverError> {
        let delivery = &message.delivery;
        let attempts = match lines {
            Some(lines) => lines,
            None => {
                self.store
                    .attempts_of(&delivery.webhook_id, &delivery.delivery_id)
                    .await?
            }
        };
        let now = SystemTime::now();
        let number = match Progress::of(&attempts).turn(now) {
            Turn::Over(last) => {
                // SQS handed back a message whose delivery already has a final answer: no
                // second request. Its alert is owed again in case the first was not queued
                // (the alerter counts each failure once).
                tracing::info!(state = ?last.delivery_state, "delivery already final; not sending again");
                return self.concluded(message, last).await;
            }
            Turn::Early(wait) => return Ok(MessageFate::RetryIn(wait).into()),
            // The stream makes first attempts only; once a line exists the delivery is the
            // queue's, whose FIFO group keeps two attempts from running at once.
            Turn::Due(number) if number > 1 && source == Source::Stream => {
                return Ok(MessageFate::RetryIn(Duration::ZERO).into())
            }
            Turn::Due(number) => number,
        };
        let webhook = webhooks.cell(&delivery.webhook_id);
        let webhook = webhook
            .get_or_try_init(|| self.store.get_webhook(&delivery.webhook_id))
            .await?;
        let record = match lifecycle::target(webhook.as_ref()) {
            Target::Cancel(reason) => {
                lifecycle::cancelled_line(delivery, number, now, self.retention, reason)
            }
            Target::Send(webhook) => self.attempt(message, webhook, number, now).await?,
        };
        // The request may have been sent: losing its log line would send it again, so the
        // write is retried well beyond the SDK's own tries.
        let recorded = Backoff::RECORDING
            .retry(
                || self.store.put_attempt_if_new(&record),
                StoreError::is_retryable,
            )
            .await?;
        let record = if recorded {
            record_metrics(message, &record, now);
            record
        } else {
            // Another copy of this message got there first; follow what it recorded.
            match self
                .store
                .get_attempt(
                    &record.delivery.webhook_id,
                    &record.delivery.delivery_id,
                    record.attempt,
                )
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
                lifecycle::wait_until_due(&record, SystemTime::now()).unwrap_or_default(),
            )
            .into()),
            _ => self.concluded(message, &record).await,
        }
    }

    /// The end of a delivery: done; filed for `recover` if it ended unsent, with an alert if
    /// it failed for good. Run again when a copy of the message finds the delivery final, so
    /// what a fault interrupted here is completed.
    async fn concluded(
        &self,
        message: &DeliveryMessage,
        last: &AttemptRecord,
    ) -> Result<Handled, DeliverError> {
        if matches!(
            last.delivery_state,
            DeliveryState::PermanentlyFailed | DeliveryState::Cancelled
        ) {
            Backoff::RECORDING
                .retry(|| self.store.put_ended(last), StoreError::is_retryable)
                .await?;
        }
        if last.delivery_state != DeliveryState::PermanentlyFailed {
            return Ok(MessageFate::Done.into());
        }
        let payload = self.event_body(message).await?;
        let reason = lifecycle::failure_reason(last, &self.schedule);
        Ok(Handled {
            fate: MessageFate::Done,
            notice: Some(FailureNotice::from_line(last, &payload, reason)),
        })
    }

    /// Signs and sends attempt `number`, and says what it led to.
    async fn attempt(
        &self,
        message: &DeliveryMessage,
        webhook: &WebhookRecord,
        number: u32,
        now: SystemTime,
    ) -> Result<AttemptRecord, DeliverError> {
        let delivery = &message.delivery;
        let body = self.event_body(message).await?;
        let secret = self
            .secret_cache
            .get_or_open(&self.secrets, &webhook.id, &webhook.secret_ciphertext)
            .await?;
        let headers = lifecycle::wire_headers(
            &secret,
            delivery,
            number,
            clock::unix_seconds(now),
            body.as_bytes(),
        );
        let sent = self
            .client
            .post(
                &webhook.url,
                &headers,
                Bytes::copy_from_slice(body.as_bytes()),
            )
            .await;
        // The next attempt is timed from the answer, not from the start of this one.
        let after = AfterAttempt::decide(
            &self.schedule,
            number,
            &sent.result,
            random_jitter(),
            SystemTime::now(),
        );
        let mut record = AttemptRecord::line(delivery, number, now, self.retention);
        let HttpAttempt {
            response,
            error,
            duration,
            ..
        } = sent;
        record.response_status = response.as_ref().map(|r| r.status);
        record.error = error;
        record.duration_ms = duration.as_millis() as u64;
        record.request = Some(lifecycle::recorded_request(&webhook.url, &headers));
        record.response = response;
        after.record(&mut record);
        Ok(record)
    }

    /// The body the message carries, else the stored event's (cached: events never change).
    async fn event_body(&self, message: &DeliveryMessage) -> Result<Arc<str>, DeliverError> {
        if let Some(body) = &message.body {
            return Ok(Arc::from(body.as_str()));
        }
        let event_id = &message.delivery.event_id;
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
            .ok_or_else(|| DeliverError::MissingEvent(event_id.to_string()))?;
        let body: Arc<str> = Arc::from(event.payload);
        if let Ok(mut cache) = self.events.lock() {
            let (entries, bytes) = &mut *cache;
            if *bytes + body.len() > EVENT_CACHE_BYTES {
                entries.clear();
                *bytes = 0;
            }
            *bytes += body.len();
            entries.insert(event_id.clone(), body.clone());
        }
        Ok(body)
    }
}

/// The webhooks of one batch, each read once, by the first of its messages that needs it
/// (a batch often holds several deliveries to one webhook). A failed read is not kept: the
/// next message reads again.
#[derive(Default)]
struct WebhookReads(Mutex<HashMap<WebhookId, Arc<OnceCell<Option<WebhookRecord>>>>>);

impl WebhookReads {
    fn cell(&self, id: &WebhookId) -> Arc<OnceCell<Option<WebhookRecord>>> {
        // The map is never left half-changed, so a poisoned lock is still good to use.
        let mut cells = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(cells.entry(id.clone()).or_default())
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
    let created = delivery.created_at.map(SystemTime::from);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_event_source_reads_as_its_own_kind_and_answers_alike() {
        let queue: DeliverEvent = serde_json::from_value(json!({"Records": [{
            "messageId": "m1", "receiptHandle": "r", "body": "{}", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries.fifo",
            "awsRegion": "us-east-1", "attributes": {}, "messageAttributes": {}
        }]}))
        .unwrap();
        assert!(matches!(queue, DeliverEvent::Queue(e) if e.records.len() == 1));
        let stream: DeliverEvent = serde_json::from_value(json!({"Records": [{
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1_795_000_000, "Keys": {"id": {"S": "e"}},
                "NewImage": {"id": {"S": "e"}}, "SequenceNumber": "5", "SizeBytes": 9,
                "StreamViewType": "NEW_IMAGE"}
        }]}))
        .unwrap();
        assert!(matches!(stream, DeliverEvent::Stream(e) if e.records.len() == 1));

        let mut failure = aws_lambda_events::event::sqs::BatchItemFailure::default();
        failure.item_identifier = "m1".into();
        let mut answer = SqsBatchResponse::default();
        answer.batch_item_failures.push(failure);
        assert_eq!(
            serde_json::to_value(DeliverResponse::Queue(answer)).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
        );
    }
}
