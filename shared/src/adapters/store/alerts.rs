//! Alerts: each webhook's failures, recorded into epochs, and its digest window.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_sdk_dynamodb::types::{Put, ReturnValue, Select, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{
    from_item, from_items, key, n, output_unless_condition_failed, s, to_item,
    unless_condition_failed,
};
use super::{Item, Store, StoreError};
use crate::adapters::aws_error::AwsError;
use crate::adapters::backoff::Backoff;
use crate::domain::alerts::{AlertWindow, FailureNotice, WindowState};
use crate::domain::ids::WebhookId;

/// Alerts table, per webhook: one `window` item (the window, its epoch and how many failures
/// were recorded into it), `failure#<delivery id>` (the epoch a delivery's failure went into:
/// a repeated notice is recognised) and `listed#<epoch>#<failed at>#<delivery id>` (the
/// failure itself, in the order a digest lists its epoch's failures).
const WINDOW_SK: &str = "window";
const FAILURE_PREFIX: &str = "failure#";
const LISTED_PREFIX: &str = "listed#";

/// The sort key prefix of an epoch's failures (zero-padded, so epochs never share a prefix).
fn listed_prefix(epoch: u64) -> String {
    format!("{LISTED_PREFIX}{epoch:020}#")
}

/// Which epoch a delivery's failure went into.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FailureEpochItem {
    webhook_id: WebhookId,
    sk: String,
    /// Absent on items written before epochs (their digest went out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    epoch: Option<u64>,
    expires_at: i64,
}

/// A failure, listed under its epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ListedFailureItem {
    webhook_id: WebhookId,
    sk: String,
    notice: FailureNotice,
    expires_at: i64,
}

/// What recording a failure found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedFailure {
    /// A new failure, recorded into this epoch.
    New(u64),
    /// This delivery's failure was recorded before, into this epoch (none: before epochs,
    /// so its digest went out).
    Known(Option<u64>),
}

/// Why a recording transaction was cancelled.
enum Cancelled {
    /// The delivery's failure is recorded already.
    Known,
    /// The epoch moved on (a digest claimed it) or another transaction held the window item:
    /// read the window again and retry.
    Retry,
}

impl Store {
    // ---- alerts: each webhook's failures, recorded into epochs, and its digest window ----

    /// Records a failure for the digests, in one transaction: the failure (listed under the
    /// webhook's current epoch), its delivery's marker (so a repeated notice is recognised
    /// and never counted twice), and one more on the epoch's count, provided the epoch is
    /// still the one read. Retried a few times when the epoch moves on or another recording
    /// holds the window item.
    pub async fn record_alert_failure(
        &self,
        notice: &FailureNotice,
        expires_at: i64,
    ) -> Result<RecordedFailure, StoreError> {
        let backoff = Backoff::default();
        let mut wait = backoff.first_wait;
        let mut try_number = 1;
        loop {
            if let Some(known) = self.failure_epoch(notice).await? {
                return Ok(RecordedFailure::Known(known.epoch));
            }
            let epoch = self
                .get_alert_window(&notice.webhook_id)
                .await?
                .map_or(0, |w| w.epoch);
            let sent = self
                .ddb
                .transact_write_items()
                .set_transact_items(Some(self.recording(notice, epoch, expires_at)?))
                .send()
                .await;
            let err = match sent {
                Ok(_) => return Ok(RecordedFailure::New(epoch)),
                Err(err) => err,
            };
            match cancelled(&err) {
                Some(Cancelled::Known) => {
                    let known = self.failure_epoch(notice).await?;
                    return Ok(RecordedFailure::Known(known.and_then(|k| k.epoch)));
                }
                Some(Cancelled::Retry) if try_number < backoff.tries => {
                    tokio::time::sleep(wait + jitter(wait)).await;
                    wait *= 2;
                    try_number += 1;
                }
                _ => return Err(err.into()),
            }
        }
    }

    /// The writes that record `notice` into `epoch` (see `record_alert_failure`).
    fn recording(
        &self,
        notice: &FailureNotice,
        epoch: u64,
        expires_at: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let table = &self.tables.alerts_table;
        // Before the first digest the window item may not exist: its epoch is 0 then.
        let same_epoch = if epoch == 0 {
            "attribute_not_exists(epoch) OR epoch = :e"
        } else {
            "epoch = :e"
        };
        let count = Update::builder()
            .table_name(table)
            .set_key(Some(window_key(&notice.webhook_id)))
            .condition_expression(same_epoch)
            .update_expression("SET epoch = :e ADD recorded :one")
            .expression_attribute_values(":e", n(epoch))
            .expression_attribute_values(":one", n(1))
            .build()?;
        let marker = FailureEpochItem {
            webhook_id: notice.webhook_id.clone(),
            sk: failure_sk(notice),
            epoch: Some(epoch),
            expires_at,
        };
        let marker = Put::builder()
            .table_name(table)
            .set_item(Some(to_item(&marker)?))
            .condition_expression("attribute_not_exists(sk)")
            .build()?;
        let listed = ListedFailureItem {
            webhook_id: notice.webhook_id.clone(),
            sk: format!(
                "{}{}#{}",
                listed_prefix(epoch),
                notice.failed_at,
                notice.delivery_id
            ),
            notice: notice.clone(),
            expires_at,
        };
        let listed = Put::builder()
            .table_name(table)
            .set_item(Some(to_item(&listed)?))
            .build()?;
        Ok(vec![
            TransactWriteItem::builder().update(count).build(),
            TransactWriteItem::builder().put(marker).build(),
            TransactWriteItem::builder().put(listed).build(),
        ])
    }

    async fn failure_epoch(
        &self,
        notice: &FailureNotice,
    ) -> Result<Option<FailureEpochItem>, StoreError> {
        self.get(
            &self.tables.alerts_table,
            key([
                ("webhook_id", s(&notice.webhook_id)),
                ("sk", s(failure_sk(notice))),
            ]),
        )
        .await
    }

    /// The first `limit` failures of epochs `from..=to` (oldest epoch first, then by failure
    /// time): all a digest loads.
    pub async fn listed_alert_failures(
        &self,
        webhook_id: &WebhookId,
        from: u64,
        to: u64,
        limit: u64,
    ) -> Result<Vec<FailureNotice>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let out = self
            .epochs_query(webhook_id, from, to)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(AwsError::from)?;
        Ok(
            from_items::<ListedFailureItem>(out.items.unwrap_or_default())?
                .into_iter()
                .map(|item| item.notice)
                .collect(),
        )
    }

    /// A query of the failures of epochs `from..=to`, strongly consistent.
    fn epochs_query(&self, webhook_id: &WebhookId, from: u64, to: u64) -> QueryFluentBuilder {
        // No key equals the next epoch's prefix itself, and its failures sort after it.
        self.ddb
            .query()
            .table_name(&self.tables.alerts_table)
            .key_condition_expression("webhook_id = :w AND sk BETWEEN :from AND :after")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":from", s(listed_prefix(from)))
            .expression_attribute_values(":after", s(listed_prefix(to + 1)))
            .consistent_read(true)
    }

    /// How many failures epochs `from..=to` hold: counted by DynamoDB (`Select=COUNT`, page
    /// by page), none of them loaded.
    pub async fn count_alert_failures(
        &self,
        webhook_id: &WebhookId,
        from: u64,
        to: u64,
    ) -> Result<u64, StoreError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .epochs_query(webhook_id, from, to)
                .select(Select::Count)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(AwsError::from)?;
            count += u64::try_from(out.count).unwrap_or(0);
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }

    /// The webhook's window and failure counters (None before its first failure).
    pub async fn get_alert_window(
        &self,
        webhook_id: &WebhookId,
    ) -> Result<Option<AlertWindow>, StoreError> {
        self.get(&self.tables.alerts_table, window_key(webhook_id))
            .await
    }

    /// Opens a digest window unless one is open or being sent (returns false then); the
    /// epoch and its count are left as they are. `window.window_id` is new for each call: if
    /// the SDK sends the update again because an answer was lost after the window was
    /// written, the window found is this one, and the call still answers true (else no flush
    /// would ever be scheduled for it).
    pub async fn open_alert_window(&self, window: &AlertWindow) -> Result<bool, StoreError> {
        let mut update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .set_key(Some(window_key(&window.webhook_id)))
            .condition_expression(
                "attribute_not_exists(#state) OR #state = :closed OR window_id = :w",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s("closed"))
            .expression_attribute_values(":w", s(&window.window_id))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":due", n(window.due_at))
            .expression_attribute_values(":zero", n(0));
        let set = "SET window_id = :w, #state = :open, due_at = :due, \
                   epoch = if_not_exists(epoch, :zero)";
        update = match window.last_email_at {
            Some(at) => update
                .update_expression(format!("{set}, last_email_at = :at"))
                .expression_attribute_values(":at", n(at)),
            None => update.update_expression(set),
        };
        unless_condition_failed(update.send().await)
    }

    /// Moves window `window_id` from open to sending, claimed by the flush message
    /// `flush_id`, and closes its epoch: the digest covers that epoch's failures (and those
    /// of a digest claimed before and never sent, if the window was taken over), and later
    /// ones go into the next epoch. Returns the window as claimed; None if it is no longer
    /// that window or another flush claimed it. Claiming again by the same flush (its retry,
    /// or the SDK's) finds it claimed and answers it as it is: the epoch moves on only once.
    pub async fn claim_alert_window(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        flush_id: &str,
    ) -> Result<Option<AlertWindow>, StoreError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .set_key(Some(window_key(webhook_id)))
            .condition_expression("window_id = :w AND #state = :open")
            .update_expression(
                "SET #state = :sending, claimed_by = :me, \
                 digest_from = if_not_exists(digest_from, epoch), digest_to = epoch, \
                 epoch = epoch + :one, recorded = :zero",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(window_id))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":me", s(flush_id))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew);
        if let Some(claimed) = window_after(update.send().await)? {
            return Ok(Some(claimed));
        }
        Ok(self.get_alert_window(webhook_id).await?.filter(|w| {
            w.window_id == window_id
                && w.state == WindowState::Sending
                && w.claimed_by.as_deref() == Some(flush_id)
        }))
    }

    /// Takes over a window stuck `sending` (its flush message is gone): opens it again, due
    /// `now` and claimed by nobody, unless someone else did first (returns false then), so one
    /// taker alone schedules the next flush. Its digest, never sent, stays: the next claim
    /// adds to it. The taker's `token` (new for each call) makes the SDK's retry of a write
    /// that went through answer true too.
    pub async fn take_over_alert_window(
        &self,
        window: &AlertWindow,
        now: i64,
        token: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .set_key(Some(window_key(&window.webhook_id)))
            .condition_expression(
                "window_id = :w AND ((#state = :sending AND due_at = :seen) OR taken_by = :token)",
            )
            .update_expression(
                "SET #state = :open, due_at = :now, taken_by = :token REMOVE claimed_by",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(&window.window_id))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":seen", n(window.due_at))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":token", s(token));
        unless_condition_failed(update.send().await)
    }

    /// Closes window `window_id` without a digest (its flush could not be scheduled).
    pub async fn close_alert_window(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
    ) -> Result<bool, StoreError> {
        let update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .set_key(Some(window_key(webhook_id)))
            .condition_expression("window_id = :w")
            .update_expression("SET #state = :closed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(window_id))
            .expression_attribute_values(":closed", s("closed"));
        unless_condition_failed(update.send().await)
    }

    /// Closes window `window_id` once its digest is done (`sent_at`: when its email went
    /// out, if one did). Returns the window as closed (also when this call's first try
    /// closed it and the SDK sent it again), or None if it is no longer that window.
    pub async fn finish_alert_digest(
        &self,
        webhook_id: &WebhookId,
        window_id: &str,
        sent_at: Option<i64>,
    ) -> Result<Option<AlertWindow>, StoreError> {
        let mut update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .set_key(Some(window_key(webhook_id)))
            .condition_expression("window_id = :w AND #state = :sending")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(window_id))
            .expression_attribute_values(":sending", s("sending"))
            .expression_attribute_values(":closed", s("closed"))
            .return_values(ReturnValue::AllNew);
        let set = "SET #state = :closed";
        let remove = "REMOVE claimed_by, digest_from, digest_to";
        update = match sent_at {
            Some(at) => update
                .update_expression(format!("{set}, last_email_at = :at {remove}"))
                .expression_attribute_values(":at", n(at)),
            None => update.update_expression(format!("{set} {remove}")),
        };
        if let Some(closed) = window_after(update.send().await)? {
            return Ok(Some(closed));
        }
        Ok(self
            .get_alert_window(webhook_id)
            .await?
            .filter(|w| w.window_id == window_id && w.state == WindowState::Closed))
    }
}

/// The window an update left, or None if its condition failed.
fn window_after<E>(
    result: Result<UpdateItemOutput, SdkError<E, HttpResponse>>,
) -> Result<Option<AlertWindow>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    output_unless_condition_failed(result)?
        .map(|out| from_item(out.attributes.unwrap_or_default()))
        .transpose()
}

/// Why a recording transaction was cancelled, if it was (by the window's condition or a
/// concurrent transaction: retry; by the marker's: recorded already).
fn cancelled<R>(err: &SdkError<TransactWriteItemsError, R>) -> Option<Cancelled> {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) =
        err.as_service_error()?
    else {
        return None;
    };
    let code = |i: usize| {
        cancelled
            .cancellation_reasons()
            .get(i)
            .and_then(|r| r.code())
    };
    if code(1) == Some("ConditionalCheckFailed") {
        Some(Cancelled::Known)
    } else {
        Some(Cancelled::Retry)
    }
}

/// Up to `wait` more, so recordings that collided do not collide again.
fn jitter(wait: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    wait.mul_f64(f64::from(nanos) / 1e9)
}

fn failure_sk(notice: &FailureNotice) -> String {
    format!("{FAILURE_PREFIX}{}", notice.delivery_id)
}

fn window_key(webhook_id: &WebhookId) -> Item {
    key([("webhook_id", s(webhook_id)), ("sk", s(WINDOW_SK))])
}
