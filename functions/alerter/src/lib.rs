//! `alerter`: makes sure a human hears of every delivery that ends `permanently_failed`.
//!
//! Fed by two queues: the alerts queue (failure notices from `deliver`, and the alerter's own
//! digest flushes) and the deliveries dead-letter queue (deliveries that kept crashing
//! `deliver`: they are marked `permanently_failed` with reason `internal_error` here).
//! Storm control: failures are collected per webhook in a window kept in DynamoDB, and one
//! email per window lists them (the first 50) and counts them all.

pub mod batch;
pub mod digest;
pub mod mailer;
pub mod window;

use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use thiserror::Error;

use crate::digest::{compose_digest, WebhookSummary, LISTED_MAX};
use crate::mailer::{Email, MailError, Mailer};
use crate::window::{flush_delay, on_failure, on_flush, OnFailure, OnFlush, Timing};
use webhooks_shared::adapters::backoff::Backoff;
use webhooks_shared::adapters::queue::{Queue, QueueError, Settle};
use webhooks_shared::adapters::store::{RecordedFailure, Store, StoreError};
use webhooks_shared::adapters::{Adapters, SdkConfig};
use webhooks_shared::config::AlertSettings;
use webhooks_shared::domain::alerts::{
    listed_of, AlertMessage, AlertWindow, DigestEpochs, FailureNotice, FailureReason, WindowState,
};
use webhooks_shared::domain::clock;
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::lifecycle::{self, Progress};
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryState};
use webhooks_shared::Config;

#[derive(Debug, Error)]
enum AlertError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What a flush found its window in.
enum FlushClaim {
    /// This flush sends the window's digest.
    Claimed(AlertWindow),
    /// Nothing to send now: the flush is settled so.
    Settled(Settle),
}

/// A digest ready to send, and what its log line says of it.
struct Digest {
    email: Email,
    epochs: DigestEpochs,
    total: u64,
    listed: usize,
}

pub struct Alerter {
    store: Store,
    alerts: Queue,
    mailer: Mailer,
    settings: AlertSettings,
    /// How long a failed step waits before SQS hands its message back.
    retry_wait: Duration,
    retention: Duration,
    /// The console's base URL (`WEBHOOKS_CONSOLE_URL`), for the link to the webhook's page.
    console_url: Option<String>,
}

fn now_secs() -> i64 {
    clock::unix_seconds(SystemTime::now())
}

/// Builds the alerter on `sdk`'s clients (SES for the mailer) with `config`, one way: for the
/// Lambda's `main`, the local gateway and the tests.
pub fn wire(sdk: &SdkConfig, config: &Config) -> Alerter {
    let mailer = Mailer::new(aws_sdk_ses::Client::new(sdk));
    Alerter::new(Adapters::new(sdk, config), mailer, config)
}

impl Alerter {
    fn new(adapters: Adapters, mailer: Mailer, config: &Config) -> Self {
        Alerter {
            store: adapters.store,
            alerts: adapters.alerts,
            mailer,
            settings: config.alerts.clone(),
            retry_wait: lifecycle::internal_error_wait(&config.retry_schedule),
            retention: config.retention,
            console_url: config.console.url.clone(),
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let settles = join_all(event.records.iter().map(|m| self.handle_message(m))).await;
        let settlement = batch::settlement(&event.records, &settles);
        self.alerts.settle(settlement).await
    }

    /// Handles one message of the alerts queue or of the dead-letter queue, and says how it
    /// is settled.
    async fn handle_message(&self, message: &SqsMessage) -> Settle {
        let body = message.body.as_deref().unwrap_or_default();
        let (result, from_alerts_queue) = if let Ok(alert) =
            serde_json::from_str::<AlertMessage>(body)
        {
            let result = match alert {
                AlertMessage::Failure(notice) => self.failure(&notice).await,
                AlertMessage::Flush {
                    webhook_id,
                    window_id,
                } => {
                    let flush_id = message.message_id.as_deref().unwrap_or_default();
                    self.flush(&webhook_id, &window_id, flush_id).await
                }
            };
            (result, true)
        } else if let Ok(delivery) = serde_json::from_str::<DeliveryMessage>(body) {
            (self.dead_letter(&delivery).await, false)
        } else {
            // Nothing in it names a delivery: there is nothing to mark or to tell.
            tracing::error!(message_id = ?message.message_id, "unreadable message dropped by the alerter");
            return Settle::Delete;
        };
        match result {
            Ok(settle) => settle,
            Err(err) => {
                tracing::error!(error = %err, message_id = ?message.message_id, "alert step failed; will retry");
                batch::again_after(self.retry_wait, from_alerts_queue)
            }
        }
    }

    /// Records the failure for its webhook's digest and makes sure a digest is coming.
    async fn failure(&self, notice: &FailureNotice) -> Result<Settle, AlertError> {
        let expires_at = clock::expiry(SystemTime::now(), self.retention);
        let repeated = match self.store.record_alert_failure(notice, expires_at).await? {
            RecordedFailure::New(epoch) => {
                tracing::info!(webhook_id = %notice.webhook_id, delivery_id = %notice.delivery_id, event_id = %notice.event_id, epoch, "permanent failure recorded for the digest");
                false
            }
            // Recorded before epochs existed: its digest went out then.
            RecordedFailure::Known(None) => return Ok(Settle::Delete),
            RecordedFailure::Known(Some(epoch)) => {
                let window = self.store.get_alert_window(&notice.webhook_id).await?;
                if !window.is_some_and(|w| w.awaits_digest(epoch)) {
                    return Ok(Settle::Delete); // a repeated notice of a failure already emailed
                }
                true
            }
        };
        // A new failure, or a repeated one still waiting: make sure its digest is coming.
        self.ensure_window(&notice.webhook_id, repeated).await?;
        Ok(Settle::Delete)
    }

    /// Opens a digest window for the webhook unless one is open, and schedules its flush.
    /// A `repeated` notice may be the retry of one that opened the window and then failed
    /// before its flush was sent (or was told it failed when it had not): it schedules a
    /// flush for the open window again. A flush too many is harmless: only one claims the
    /// window.
    async fn ensure_window(
        &self,
        webhook_id: &WebhookId,
        repeated: bool,
    ) -> Result<(), AlertError> {
        let now = now_secs();
        let current = self.store.get_alert_window(webhook_id).await?;
        let timing = Timing {
            gather_secs: self.settings.gather.as_secs() as i64,
            window_secs: self.settings.window.as_secs() as i64,
        };
        let (due_at, last_email_at) = match on_failure(current.as_ref(), now, timing) {
            OnFailure::Join => {
                return match current.filter(|w| repeated && w.state == WindowState::Open) {
                    Some(open) => self.schedule_flush(&open, now).await,
                    None => Ok(()),
                };
            }
            OnFailure::Reschedule(open) => return self.schedule_flush(open, now).await,
            OnFailure::TakeOver(stuck) => {
                // One taker wins the conditional write and schedules the one flush.
                let token = ulid::Ulid::new().to_string();
                if self
                    .store
                    .take_over_alert_window(stuck, now, &token)
                    .await?
                {
                    tracing::warn!(webhook_id = %stuck.webhook_id, window_id = %stuck.window_id, "took over a digest window stuck sending");
                    let taken = AlertWindow {
                        state: WindowState::Open,
                        due_at: now,
                        claimed_by: None,
                        ..stuck.clone()
                    };
                    self.schedule_flush(&taken, now).await?;
                }
                return Ok(());
            }
            OnFailure::Open {
                due_at,
                last_email_at,
            } => (due_at, last_email_at),
        };
        let window = AlertWindow {
            webhook_id: webhook_id.clone(),
            window_id: ulid::Ulid::new().to_string(),
            state: WindowState::Open,
            due_at,
            last_email_at,
            // The counters stay as stored; opening a window does not write them.
            ..AlertWindow::default()
        };
        if !self.store.open_alert_window(&window).await? {
            return Ok(()); // another container opened it
        }
        if let Err(err) = self.schedule_flush(&window, now).await {
            // Undo, so the retried notice opens the window again and schedules its flush.
            self.store
                .close_alert_window(webhook_id, &window.window_id)
                .await?;
            return Err(err);
        }
        Ok(())
    }

    async fn schedule_flush(&self, window: &AlertWindow, now: i64) -> Result<(), AlertError> {
        let flush = AlertMessage::Flush {
            webhook_id: window.webhook_id.clone(),
            window_id: window.window_id.clone(),
        };
        self.alerts
            .send_delayed(&flush, flush_delay(window, now))
            .await?;
        Ok(())
    }

    /// Sends the digest of a window: one email that counts every failure recorded since the
    /// last digest until the window was claimed, and lists the first [`LISTED_MAX`] of them
    /// (the only ones loaded).
    async fn flush(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        flush_id: &str,
    ) -> Result<Settle, AlertError> {
        let claimed = match self
            .claim_for_flush(webhook_id, window_id, flush_id)
            .await?
        {
            FlushClaim::Claimed(window) => window,
            FlushClaim::Settled(settle) => return Ok(settle),
        };
        let Some((epochs, total)) = self.failures_to_report(webhook_id, &claimed).await? else {
            // Nothing to report: the window closes without an email.
            let closed = self
                .store
                .finish_alert_digest(webhook_id, window_id, None)
                .await?;
            return self.after_digest(webhook_id, closed).await;
        };
        let digest = self.compose(webhook_id, epochs, total).await?;
        if let Err(err) = self.send_digest(webhook_id, &digest).await {
            // The window stays `sending`; this flush comes back and tries again.
            tracing::error!(webhook_id = %webhook_id, error = %err, "alert digest not sent; will retry");
            return Ok(Settle::HideFor(self.retry_wait));
        }
        self.close_sent_digest(webhook_id, window_id).await
    }

    /// Whether this flush sends its window's digest: it claims the window once due, or sends
    /// again the digest of a window it claimed before; otherwise how the flush is settled.
    async fn claim_for_flush(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        flush_id: &str,
    ) -> Result<FlushClaim, AlertError> {
        let Some(window) = self.store.get_alert_window(webhook_id).await? else {
            return Ok(FlushClaim::Settled(Settle::Delete));
        };
        let settle = match on_flush(Some(&window), window_id, flush_id, now_secs()) {
            OnFlush::Claim => {
                let claimed = self
                    .store
                    .claim_alert_window(webhook_id, window_id, flush_id)
                    .await?;
                return Ok(match claimed {
                    Some(claimed) => FlushClaim::Claimed(claimed),
                    // Another flush of this window claimed it.
                    None => FlushClaim::Settled(Settle::Delete),
                });
            }
            OnFlush::Resend => return Ok(FlushClaim::Claimed(window)),
            OnFlush::Drop
                if window.window_id == window_id && window.state == WindowState::Closed =>
            {
                self.after_digest(webhook_id, Some(window)).await?
            }
            OnFlush::Drop => Settle::Delete,
            OnFlush::NotYet(wait) => Settle::HideFor(wait),
        };
        Ok(FlushClaim::Settled(settle))
    }

    /// The epochs a claimed window's digest covers and how many failures they hold; none
    /// when there is nothing to report: the window was claimed before epochs existed
    /// (nothing this code can list), or nothing was recorded.
    async fn failures_to_report(
        &self,
        webhook_id: &WebhookId,
        claimed: &AlertWindow,
    ) -> Result<Option<(DigestEpochs, u64)>, AlertError> {
        let Some(epochs) = claimed.digest() else {
            return Ok(None);
        };
        let total = self
            .store
            .count_alert_failures(webhook_id, epochs.from, epochs.to)
            .await?;
        Ok((total > 0).then_some((epochs, total)))
    }

    /// The digest of the `total` failures recorded in `epochs`: only the first
    /// [`LISTED_MAX`] are loaded, to be listed.
    async fn compose(
        &self,
        webhook_id: &WebhookId,
        epochs: DigestEpochs,
        total: u64,
    ) -> Result<Digest, AlertError> {
        let listed = self
            .store
            .listed_alert_failures(
                webhook_id,
                epochs.from,
                epochs.to,
                listed_of(total, LISTED_MAX as u64),
            )
            .await?;
        let webhook = self.webhook_summary(webhook_id).await?;
        Ok(Digest {
            email: compose_digest(&webhook, total, &listed, self.console_url.as_deref()),
            epochs,
            total,
            listed: listed.len(),
        })
    }

    /// The webhook as a digest names it; one deleted since, by its id alone.
    async fn webhook_summary(&self, webhook_id: &WebhookId) -> Result<WebhookSummary, AlertError> {
        Ok(match self.store.get_webhook(webhook_id).await? {
            Some(w) => WebhookSummary {
                id: w.id,
                name: w.name,
                url: w.url,
            },
            None => WebhookSummary {
                id: webhook_id.clone(),
                name: "(deleted webhook)".into(),
                url: "-".into(),
            },
        })
    }

    /// Emails the digest to the admins. With no recipients configured there is no one to
    /// send it to, now or on a retry: that is logged as an error and the window moves on.
    async fn send_digest(&self, webhook_id: &WebhookId, digest: &Digest) -> Result<(), MailError> {
        if self.settings.recipients.is_empty() {
            tracing::error!(
                webhook_id = %webhook_id,
                failures = digest.total,
                "no alert recipients configured (WEBHOOKS_ALERT_EMAILS); digest not sent"
            );
            return Ok(());
        }
        let message_id = self
            .mailer
            .send(
                self.settings.from.as_deref(),
                &self.settings.recipients,
                &digest.email,
            )
            .await?;
        tracing::info!(webhook_id = %webhook_id, failures = digest.total, listed = digest.listed, from_epoch = digest.epochs.from, to_epoch = digest.epochs.to, ses_message_id = %message_id, "alert digest sent");
        Ok(())
    }

    /// Closes the window whose digest went out, retrying a passing fault here: the email is
    /// out, and the flush's retry must not send it again.
    async fn close_sent_digest(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
    ) -> Result<Settle, AlertError> {
        let sent_at = now_secs();
        let closed = Backoff::RECORDING
            .retry(
                || {
                    self.store
                        .finish_alert_digest(webhook_id, window_id, Some(sent_at))
                },
                StoreError::is_retryable,
            )
            .await?;
        self.after_digest(webhook_id, closed).await
    }

    /// Failures recorded after the window was claimed go in the next digest. Also run for a
    /// flush that finds its window closed already: it may be the retry of a flush that closed
    /// the window and then failed before opening the next.
    async fn after_digest(
        &self,
        webhook_id: &WebhookId,
        closed: Option<AlertWindow>,
    ) -> Result<Settle, AlertError> {
        if closed.is_some_and(|w| w.has_unsent()) {
            self.ensure_window(webhook_id, true).await?;
        }
        Ok(Settle::Delete)
    }

    /// The safety net: a delivery that kept crashing `deliver` ends `permanently_failed`
    /// (reason `internal_error`) and is alerted like any other failure.
    async fn dead_letter(&self, message: &DeliveryMessage) -> Result<Settle, AlertError> {
        let delivery = &message.delivery;
        let attempts = self
            .store
            .attempts_of(&delivery.webhook_id, &delivery.delivery_id)
            .await?;
        let progress = Progress::of(&attempts);
        let line = match progress.final_line() {
            Some(last) if last.delivery_state == DeliveryState::PermanentlyFailed => last.clone(),
            Some(last) if last.delivery_state == DeliveryState::Cancelled => {
                // deliver ended it and may have failed to file it for `recover`.
                self.store.put_ended(last).await?;
                return Ok(Settle::Delete);
            }
            Some(_) => return Ok(Settle::Delete),
            None => {
                let line = lifecycle::internal_error_line(
                    delivery,
                    progress.next_attempt_number(),
                    SystemTime::now(),
                    self.retention,
                );
                if !self.store.put_attempt_if_new(&line).await? {
                    // Raced with deliver: look again, after the dead letter's visibility timeout.
                    return Ok(Settle::Release);
                }
                tracing::error!(delivery_id = %delivery.delivery_id, event_id = %delivery.event_id, webhook_id = %delivery.webhook_id, "dead-lettered delivery marked permanently_failed");
                line
            }
        };
        self.store.put_ended(&line).await?;
        let payload = self
            .store
            .get_event(&delivery.event_id)
            .await?
            .map_or_else(|| "(event not stored)".to_owned(), |e| e.payload);
        let notice = FailureNotice::from_line(&line, &payload, FailureReason::InternalError);
        self.failure(&notice).await
    }
}
