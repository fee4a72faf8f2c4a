//! Alerts (SPEC §5): what `deliver` tells the alerter about a permanent failure, and the
//! alerter's digest window as stored. The digest itself is composed by the alerter.

use serde::{Deserialize, Serialize};

use crate::domain::clock::Timestamp;
use crate::domain::ids::{DeliveryId, EventId, WebhookId};

/// Characters of the payload shown per failure.
pub const EXCERPT_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Every attempt of the schedule failed.
    RetriesExhausted,
    /// The receiver's answer is not retried (e.g. a 4xx), or the target is refused.
    NotRetryable,
    /// The delivery kept crashing `deliver` and reached the dead-letter queue.
    InternalError,
}

impl FailureReason {
    pub fn describe(self) -> &'static str {
        match self {
            FailureReason::RetriesExhausted => "all attempts failed",
            FailureReason::NotRetryable => "answer not retried",
            FailureReason::InternalError => "internal error (dead-letter queue)",
        }
    }
}

/// One delivery that ended `permanently_failed`: what `deliver` (or the dead-letter safety
/// net) tells the alerter. Sent and stored with the [`DeliveryRef`] fields side by side
/// (no `manual`, `resource_id` always present): made with [`FailureNotice::new`].
///
/// [`DeliveryRef`]: crate::domain::model::DeliveryRef
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureNotice {
    pub webhook_id: WebhookId,
    pub delivery_id: DeliveryId,
    pub event_id: EventId,
    pub event_type: String,
    #[serde(default)]
    pub resource_id: Option<String>,
    pub attempts: u32,
    #[serde(default)]
    pub response_status: Option<u16>,
    #[serde(default)]
    pub error: Option<String>,
    pub failed_at: Timestamp,
    pub excerpt: String,
    pub reason: FailureReason,
}

impl FailureNotice {
    /// The notice of `delivery`'s failure after `attempts` attempts, the last at `failed_at`.
    pub fn new(
        delivery: &crate::domain::model::DeliveryRef,
        attempts: u32,
        failed_at: Timestamp,
        payload: &str,
        reason: FailureReason,
    ) -> Self {
        FailureNotice {
            webhook_id: delivery.webhook_id.clone(),
            delivery_id: delivery.delivery_id.clone(),
            event_id: delivery.event_id.clone(),
            event_type: delivery.event_type.clone(),
            resource_id: delivery.resource_id.clone(),
            attempts,
            response_status: None,
            error: None,
            failed_at,
            excerpt: excerpt(payload),
            reason,
        }
    }

    /// The notice for a log line that ended its delivery `permanently_failed`.
    pub fn from_line(
        line: &crate::domain::model::AttemptRecord,
        payload: &str,
        reason: FailureReason,
    ) -> Self {
        FailureNotice {
            response_status: line.response_status,
            error: line.error.clone(),
            ..FailureNotice::new(&line.delivery, line.attempt, line.at, payload, reason)
        }
    }
}

/// Messages on the alerts queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertMessage {
    Failure(FailureNotice),
    /// Time to send the digest of window `window_id` of a webhook.
    Flush {
        webhook_id: WebhookId,
        window_id: String,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    /// Collecting failures; a flush is due at `due_at`.
    Open,
    /// The digest is being sent.
    Sending,
    /// No window open; the last digest went out at `last_email_at`. Also what a webhook's
    /// window item is before its first window opens (it holds only the counters then).
    #[default]
    Closed,
}

/// The digest window of one webhook, kept in DynamoDB so it holds across containers.
///
/// Failures are recorded into the webhook's current `epoch` (one transaction stores each
/// one, provided the epoch is still that one, and counts it in `recorded`). Claiming a
/// window for its digest closes the epoch (the digest covers `digest_from..=digest_to`) and
/// opens the next, so a digest can count its failures without loading them and list only
/// the first few; failures recorded after the claim are the next digest's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertWindow {
    pub webhook_id: WebhookId,
    #[serde(default)]
    pub window_id: String,
    #[serde(default)]
    pub state: WindowState,
    /// Unix seconds when the digest is due.
    #[serde(default)]
    pub due_at: i64,
    #[serde(default)]
    pub last_email_at: Option<i64>,
    /// The flush message (its SQS message id) that claimed the window: only it sends the
    /// digest, so a copy of the flush message (an SDK retry of a send that went through, or
    /// SQS's at-least-once) cannot send it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// The epoch failures are recorded into now.
    #[serde(default)]
    pub epoch: u64,
    /// How many failures were recorded into `epoch`.
    #[serde(default)]
    pub recorded: u64,
    /// Once claimed, until its email is out: the epochs the digest covers (more than one
    /// when a window stuck `sending` was taken over and claimed again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_from: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest_to: Option<u64>,
}

/// What a claimed window's digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestEpochs {
    pub from: u64,
    pub to: u64,
}

/// How many failures a digest of `count` lists (and loads): the first `listed_max`.
pub fn listed_of(count: u64, listed_max: u64) -> u64 {
    count.min(listed_max)
}

impl AlertWindow {
    /// The epochs the digest of this window covers; None before the claim.
    pub fn digest(&self) -> Option<DigestEpochs> {
        let from = self.digest_from?;
        Some(DigestEpochs {
            from,
            to: self.digest_to.unwrap_or(from),
        })
    }

    /// Whether a failure recorded into `epoch` still waits for its digest to go out: it is
    /// in a digest not yet sent, or in the epoch being collected.
    pub fn awaits_digest(&self, epoch: u64) -> bool {
        epoch >= self.digest_from.unwrap_or(self.epoch)
    }

    /// Whether failures were recorded that no digest has claimed yet.
    pub fn has_unsent(&self) -> bool {
        self.recorded > 0
    }
}

/// The start of a payload, for the email.
pub fn excerpt(payload: &str) -> String {
    let mut chars = payload.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "é".repeat(300);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
        assert!(excerpt(&long).ends_with('…'));
    }

    /// A window claimed for the digest of epoch 3 (120 failures); 5 more came since.
    fn claimed() -> AlertWindow {
        AlertWindow {
            webhook_id: "wh_1".into(),
            window_id: "w1".into(),
            state: WindowState::Sending,
            epoch: 4,
            recorded: 5,
            digest_from: Some(3),
            digest_to: Some(3),
            ..AlertWindow::default()
        }
    }

    #[test]
    fn a_digest_counts_its_epochs_and_lists_the_first_fifty() {
        let window = claimed();
        assert_eq!(window.digest(), Some(DigestEpochs { from: 3, to: 3 }));
        // 120 failures: 50 listed (and loaded), the rest counted.
        assert_eq!((listed_of(120, 50), listed_of(3, 50)), (50, 3));
        // Taken over and claimed again: the digest covers both epochs.
        let reclaimed = AlertWindow {
            digest_to: Some(4),
            ..claimed()
        };
        assert_eq!(reclaimed.digest(), Some(DigestEpochs { from: 3, to: 4 }));
        // The failures of the epoch being sent and of the next one wait; older ones went out.
        assert!(window.awaits_digest(3) && window.awaits_digest(4));
        assert!(!window.awaits_digest(2));
        assert!(window.has_unsent());
        // Once its email went out, epoch 3 is done.
        let closed = AlertWindow {
            state: WindowState::Closed,
            digest_from: None,
            digest_to: None,
            ..claimed()
        };
        assert_eq!(closed.digest(), None);
        assert!(!closed.awaits_digest(3) && closed.awaits_digest(4));
        let quiet = AlertWindow {
            recorded: 0,
            ..closed
        };
        assert!(!quiet.has_unsent());
    }

    #[test]
    fn a_window_item_with_only_counters_reads_as_closed() {
        let item = serde_json::json!({"webhook_id": "wh_1", "recorded": 4});
        let w: AlertWindow = serde_json::from_value(item).unwrap();
        assert_eq!((w.state, w.epoch, w.recorded), (WindowState::Closed, 0, 4));
        assert!(w.awaits_digest(0) && w.has_unsent());
    }

    #[test]
    fn messages_round_trip() {
        let notice = serde_json::json!({"kind": "failure", "webhook_id": "wh_1",
            "delivery_id": "dlv_3", "event_id": "evt_3", "event_type": "order.completed",
            "resource_id": "ord_3", "attempts": 6, "response_status": null,
            "error": "timeout: no answer within 10s", "failed_at": "2026-11-27T03:00:00.000Z",
            "excerpt": "{}", "reason": "retries_exhausted"});
        let m: AlertMessage = serde_json::from_value(notice.clone()).unwrap();
        assert!(matches!(&m, AlertMessage::Failure(f) if f.delivery_id == "dlv_3"));
        assert_eq!(serde_json::to_value(&m).unwrap(), notice);
        let flush: AlertMessage =
            serde_json::from_str(r#"{"kind":"flush","webhook_id":"wh","window_id":"w1"}"#).unwrap();
        assert!(matches!(flush, AlertMessage::Flush { .. }));
    }
}
