//! `deliver`: makes every attempt of every delivery, from the deliveries queue (fanout puts
//! each new delivery there; redeliveries and recoveries go there too). For each message: sign
//! the stored body, POST it, log the attempt, and either finish the delivery or keep its
//! message hidden until the next attempt is due (ChangeMessageVisibility), reported as a
//! partial batch failure so SQS keeps it. An endpoint that stops answering has its circuit
//! opened (`domain::circuit`): its due attempts are logged as not sent instead of holding an
//! invocation for the whole timeout each.

pub mod batch;
pub mod http_client;
pub mod metrics;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use bytes::Bytes;
use futures::future::join_all;
use thiserror::Error;
use tokio::sync::OnceCell;
use tracing::Instrument;

use crate::batch::Handled;
use crate::http_client::{ClientError, DeliveryClient, HttpAttempt};
use crate::metrics::Metric;
use webhooks_shared::adapters::backoff::Backoff;
use webhooks_shared::adapters::queue::Queue;
use webhooks_shared::adapters::secret_box::{SecretBox, SecretBoxError, SecretCache};
use webhooks_shared::adapters::store::{Store, StoreError};
use webhooks_shared::adapters::{Adapters, SdkConfig};
use webhooks_shared::domain::alerts::FailureNotice;
use webhooks_shared::domain::circuit::{self, Change, Gate};
use webhooks_shared::domain::clock::{self, Timestamp};
use webhooks_shared::domain::ids::{EventId, WebhookId};
use webhooks_shared::domain::lifecycle::{self, NextStep, Progress, Target, Turn};
use webhooks_shared::domain::model::{
    AttemptOutcome, AttemptRecord, DeliveryMessage, DeliveryRef, DeliveryState, WebhookRecord,
};
use webhooks_shared::domain::retry::{random_jitter, AttemptResult, RetrySchedule};
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

/// Builds deliver on `sdk`'s clients with `config`, one way: for the Lambda's `main`, the
/// local gateway and the tests. Fails if the delivery client cannot be built (an extra CA
/// file that is unreadable or holds no certificate).
pub fn wire(sdk: &SdkConfig, config: &Config) -> Result<Deliverer, ClientError> {
    Deliverer::new(Adapters::new(sdk, config), config)
}

impl Deliverer {
    fn new(adapters: Adapters, config: &Config) -> Result<Self, ClientError> {
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

    /// Handles one SQS batch; its messages are delivered concurrently.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let repeats = batch::repeats(&event.records);
        let webhooks = WebhookReads::default();
        let handled = join_all(event.records.iter().zip(repeats).map(|(m, repeat)| {
            let webhooks = &webhooks;
            async move {
                if repeat {
                    tracing::info!(message_id = ?m.message_id, "a copy of a delivery already in this batch; deleted");
                    return Handled::Copy;
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
            return self.after_internal_error();
        };
        let first_receive = batch::receive_count(message) == Some(1);
        self.handle_delivery(&delivery, webhooks, first_receive)
            .await
    }

    /// Handles one delivery in a span naming it; an error is logged and fails it.
    async fn handle_delivery(
        &self,
        message: &DeliveryMessage,
        webhooks: &WebhookReads,
        first_receive: bool,
    ) -> Handled {
        let span = tracing::info_span!(
            "delivery",
            event_id = %message.delivery.event_id,
            delivery_id = %message.delivery.delivery_id,
            webhook_id = %message.delivery.webhook_id
        );
        async {
            match self.deliver(message, webhooks, first_receive).await {
                Ok(handled) => handled,
                Err(err) => {
                    tracing::error!(error = %err, "delivery could not be processed");
                    self.after_internal_error()
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
        first_receive: bool,
    ) -> Result<Handled, DeliverError> {
        let delivery = &message.delivery;
        // A fresh fan-out message on its first receive is the only one of its delivery
        // there has been: no line yet, nothing to read (a read unit per delivery saved).
        let attempts = if message.fresh && first_receive {
            Vec::new()
        } else {
            self.store
                .attempts_of(&delivery.webhook_id, &delivery.delivery_id)
                .await?
        };
        let now = SystemTime::now();
        let number = match Progress::of(&attempts).turn(now) {
            Turn::Over(last) => {
                // SQS handed back a message whose delivery already has a final answer: no
                // second request. Its alert is owed again in case the first was not queued
                // (the alerter counts each failure once).
                tracing::info!(state = ?last.delivery_state, "delivery already final; not sending again");
                return self
                    .concluded(message, last, NextStep::of_line(last, now))
                    .await;
            }
            Turn::Early(wait) => return Ok(NextStep::RetryIn(wait).into()),
            Turn::Due(number) => number,
        };
        let webhook = webhooks.cell(&delivery.webhook_id);
        let webhook = webhook
            .get_or_try_init(|| self.store.get_webhook(&delivery.webhook_id))
            .await?;
        let (record, sent) = self
            .take_turn(message, webhook.as_ref(), number, now)
            .await?;
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
            if let Some((webhook, result)) = sent {
                self.update_circuit(webhook, &result, &record).await;
            }
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
                None => {
                    tracing::error!(
                        attempt = record.attempt,
                        "attempt recorded by another copy of the message but not found"
                    );
                    return Ok(self.after_internal_error());
                }
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
        match NextStep::of_line(&record, SystemTime::now()) {
            step @ NextStep::RetryIn(_) => Ok(step.into()),
            ended => self.concluded(message, &record, ended).await,
        }
    }

    /// Attempt `number`'s line: cancelled (the webhook is paused or gone), not sent (its
    /// endpoint's circuit, or no free slot), or sent, with what the endpoint answered.
    async fn take_turn<'w>(
        &self,
        message: &DeliveryMessage,
        webhook: Option<&'w WebhookRecord>,
        number: u32,
        now: SystemTime,
    ) -> Result<(AttemptRecord, Option<(&'w WebhookRecord, AttemptResult)>), DeliverError> {
        let delivery = &message.delivery;
        let webhook = match lifecycle::target(webhook) {
            Target::Cancel(reason) => {
                let line = lifecycle::cancelled_line(delivery, number, now, self.retention, reason);
                return Ok((line, None));
            }
            Target::Send(webhook) => webhook,
        };
        match self.admit(webhook, now).await? {
            Admission::NotSent(reason) => Ok((self.not_sent(delivery, number, now, reason), None)),
            Admission::Send(slot) => {
                let attempted = self.attempt(message, webhook, number, now).await;
                if let Some(slot) = slot {
                    self.release(webhook, slot).await;
                }
                let (line, result) = attempted?;
                Ok((line, Some((webhook, result))))
            }
        }
    }

    /// The end of a delivery, whose `last` line took the final `step`: filed for `recover`
    /// if it ended unsent, with an alert if it failed for good. Run again when a copy of the
    /// message finds the delivery final, so what a fault interrupted here is completed.
    async fn concluded(
        &self,
        message: &DeliveryMessage,
        last: &AttemptRecord,
        step: NextStep,
    ) -> Result<Handled, DeliverError> {
        if matches!(step, NextStep::PermanentlyFailed | NextStep::Cancelled) {
            Backoff::RECORDING
                .retry(|| self.store.put_ended(last), StoreError::is_retryable)
                .await?;
        }
        if step != NextStep::PermanentlyFailed {
            return Ok(step.into());
        }
        let payload = self.event_body(message).await?;
        let reason = lifecycle::failure_reason(last, &self.schedule);
        Ok(Handled::Step {
            step,
            notice: Some(Box::new(FailureNotice::from_line(last, &payload, reason))),
        })
    }

    /// What becomes of a message after an error of ours (not the receiver's), logged where
    /// it happened: it comes back after the schedule's first wait; after too many receives
    /// SQS moves it to the dead-letter queue.
    fn after_internal_error(&self) -> Handled {
        NextStep::RetryIn(lifecycle::internal_error_wait(&self.schedule)).into()
    }

    /// Whether a due attempt to `webhook` may be sent, or why not: its endpoint's circuit is
    /// open (of the attempts due once a probe is, the one that claims it is sent), or it is
    /// not answering and every slot is taken.
    async fn admit(
        &self,
        webhook: &WebhookRecord,
        now: SystemTime,
    ) -> Result<Admission, DeliverError> {
        match circuit::gate(webhook, now) {
            Gate::Send => Ok(Admission::Send(None)),
            Gate::SendInSlot => Ok(match self.take_slot(webhook, now).await? {
                Some(slot) => Admission::Send(Some(slot)),
                None => Admission::NotSent(circuit::no_slot_reason()),
            }),
            Gate::Hold(reason) => Ok(Admission::NotSent(reason)),
            Gate::Probe { seen } => {
                let next = circuit::next_probe(now, self.probe_interval());
                if self.store.claim_probe(&webhook.id, seen, next).await? {
                    tracing::info!(webhook_id = %webhook.id, "circuit open: this attempt tests the endpoint");
                    Ok(Admission::Send(None))
                } else {
                    Ok(Admission::NotSent(format!(
                        "not sent: the endpoint's circuit is open ({} attempts in a row got no \
                         answer) and another attempt is testing it now",
                        webhook.failures_in_row
                    )))
                }
            }
        }
    }

    /// One of the endpoint's in-flight slots, held until the time given; none if the few
    /// tried were all taken (a few tries from a random one: an approximate cap, but never
    /// above [`circuit::MAX_IN_FLIGHT`]).
    async fn take_slot(
        &self,
        webhook: &WebhookRecord,
        now: SystemTime,
    ) -> Result<Option<(usize, Timestamp)>, StoreError> {
        const TRIES: usize = 3;
        let until = Timestamp::from(now + circuit::SLOT_HELD_FOR);
        let first = rand::Rng::gen_range(&mut rand::thread_rng(), 0..circuit::MAX_IN_FLIGHT);
        for slot in (first..first + TRIES).map(|i| i % circuit::MAX_IN_FLIGHT) {
            if self
                .store
                .take_slot(&webhook.id, slot, until, Timestamp::from(now))
                .await?
            {
                return Ok(Some((slot, until)));
            }
        }
        Ok(None)
    }

    /// Gives a slot back (best effort: one not given back frees itself when its time is up).
    async fn release(&self, webhook: &WebhookRecord, (slot, until): (usize, Timestamp)) {
        if let Err(err) = self.store.release_slot(&webhook.id, slot, until).await {
            tracing::warn!(error = %err, webhook_id = %webhook.id, slot, "in-flight slot not given back; it frees itself");
        }
    }

    /// One test request per this long while an endpoint's circuit is open: the schedule's
    /// first wait (a minute by default).
    fn probe_interval(&self) -> Duration {
        lifecycle::internal_error_wait(&self.schedule)
    }

    /// The line of attempt `number`, not sent for `reason`.
    fn not_sent(
        &self,
        delivery: &DeliveryRef,
        number: u32,
        now: SystemTime,
        reason: String,
    ) -> AttemptRecord {
        lifecycle::not_sent_line(
            delivery,
            number,
            now,
            self.retention,
            reason,
            &self.schedule,
            random_jitter(),
        )
    }

    /// Brings the endpoint's circuit up to date with an attempt's result. Best effort: a
    /// failed write leaves the circuit as it was (the next attempt counts again).
    async fn update_circuit(
        &self,
        webhook: &WebhookRecord,
        result: &AttemptResult,
        line: &AttemptRecord,
    ) {
        let written = match circuit::change(webhook, result) {
            Change::Keep => return,
            Change::Close => self.store.close_circuit(&webhook.id).await,
            Change::CountFailure => {
                let now = SystemTime::now();
                let error = line.error.as_deref().unwrap_or("no answer");
                self.store
                    .count_endpoint_failure(
                        &webhook.id,
                        error,
                        Timestamp::from(now),
                        circuit::next_probe(now, self.probe_interval()),
                    )
                    .await
            }
        };
        if let Err(err) = written {
            tracing::warn!(error = %err, webhook_id = %webhook.id, "circuit not updated");
        }
    }

    /// Signs and sends attempt `number`, and says what it led to.
    async fn attempt(
        &self,
        message: &DeliveryMessage,
        webhook: &WebhookRecord,
        number: u32,
        now: SystemTime,
    ) -> Result<(AttemptRecord, AttemptResult), DeliverError> {
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
        let post = self.client.post(
            &webhook.url,
            &headers,
            Bytes::copy_from_slice(body.as_bytes()),
        );
        tokio::pin!(post);
        // Waiting long for an answer marks the endpoint as not answering, so the attempts
        // after this one take slots (at most a few in flight) until an answer clears it.
        let sent = tokio::select! {
            sent = &mut post => sent,
            () = tokio::time::sleep(circuit::AWAITING_AFTER) => {
                if let Err(err) = self.store.mark_awaiting_answer(&webhook.id, Timestamp::now()).await {
                    tracing::warn!(error = %err, webhook_id = %webhook.id, "not marked as awaiting an answer");
                }
                post.await
            }
        };
        let answered_at = SystemTime::now();
        let step = self
            .schedule
            .next_step(number, &sent.result, random_jitter());
        let mut record = AttemptRecord::line(delivery, number, now, self.retention);
        let HttpAttempt {
            result,
            response,
            error,
            duration,
        } = sent;
        record.response_status = response.as_ref().map(|r| r.status);
        record.error = error;
        record.duration_ms = duration.as_millis() as u64;
        record.request = Some(lifecycle::recorded_request(&webhook.url, &headers));
        record.response = response;
        // The next attempt is timed from the answer, not from the start of this one.
        step.record(&mut record, answered_at);
        Ok((record, result))
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

/// Whether a due attempt is sent, and in which in-flight slot.
enum Admission {
    Send(Option<(usize, Timestamp)>),
    NotSent(String),
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
    let outcome = match record.outcome {
        AttemptOutcome::Succeeded => "succeeded",
        AttemptOutcome::Failed => "failed",
    };
    if record.request.is_some() {
        metrics::emit(
            &[("Outcome", outcome)],
            &[
                Metric::count("Attempts"),
                Metric::millis("ReceiverDuration", record.duration_ms),
            ],
        );
    } else if record.delivery_state != DeliveryState::Cancelled {
        metrics::emit(&[], &[Metric::count("AttemptsNotSent")]);
    }
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
