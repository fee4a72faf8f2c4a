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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowState {
    /// Collecting failures; a flush is due at `due_at`.
    Open,
    /// The digest is being sent.
    Sending,
    /// No window open; the last digest went out at `last_email_at`.
    Closed,
}

/// The digest window of one webhook, kept in DynamoDB so it holds across containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertWindow {
    pub webhook_id: WebhookId,
    pub window_id: String,
    pub state: WindowState,
    /// Unix seconds when the digest is due.
    pub due_at: i64,
    #[serde(default)]
    pub last_email_at: Option<i64>,
    /// The flush message (its SQS message id) that claimed the window: only it sends the
    /// digest, so a copy of the flush message (an SDK retry of a send that went through, or
    /// SQS's at-least-once) cannot send it twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
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
