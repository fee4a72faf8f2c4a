//! `recover`'s pure parts: which log lines of a window owe a recovery delivery, gathered in
//! chunks of one queue batch, and the cursor a call answers when the window holds more than
//! it read.

use std::collections::HashSet;
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use webhooks_shared::adapters::store::LogPosition;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{self, DeliveryId, WebhookId};
use webhooks_shared::domain::model::{AttemptRecord, DeliveryRef, DeliveryState};
use webhooks_shared::domain::problem::Problem;

/// Deliveries are written, then queued, this many at a time (one SendMessageBatch): a call
/// cut short leaves at most one chunk written and not queued, which the next call queues.
pub const RECOVERY_CHUNK: usize = 10;
/// The part of a webhook's log a recovery reads: lines that ended a delivery from `since`
/// to `until`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryWindow {
    pub since: SystemTime,
    pub until: SystemTime,
}

/// Gathers, from log lines in order, the deliveries a recovery owes — each delivery whose line
/// ended it `permanently_failed` or `cancelled`, once — as recovery deliveries, handed over
/// in chunks of [`RECOVERY_CHUNK`].
#[derive(Debug, Default)]
pub struct Sweep {
    seen: HashSet<DeliveryId>,
    chunk: Vec<DeliveryRef>,
}

impl Sweep {
    /// Takes one line; returns a full chunk when this line completes one.
    pub fn take(&mut self, line: &AttemptRecord) -> Option<Vec<DeliveryRef>> {
        let ended_unsent = matches!(
            line.delivery_state,
            DeliveryState::PermanentlyFailed | DeliveryState::Cancelled
        );
        if !ended_unsent || !self.seen.insert(line.delivery.delivery_id.clone()) {
            return None;
        }
        self.chunk.push(DeliveryRef {
            delivery_id: ids::recovery_delivery_id(&line.delivery.delivery_id, line.at.into()),
            manual: true,
            ..line.delivery.clone()
        });
        (self.chunk.len() >= RECOVERY_CHUNK).then(|| std::mem::take(&mut self.chunk))
    }

    /// The deliveries gathered and not handed over yet (fewer than a chunk).
    pub fn rest(&mut self) -> Vec<DeliveryRef> {
        std::mem::take(&mut self.chunk)
    }

    /// Distinct deliveries found so far.
    pub fn found(&self) -> u32 {
        self.seen.len() as u32
    }
}

/// The cursor after `position` in `webhook`'s log: opaque to callers (base64url of the
/// webhook id and the line's sort key), so its form may change.
pub fn encode_cursor(webhook: &WebhookId, position: &LogPosition) -> String {
    URL_SAFE_NO_PAD.encode(format!("{webhook} {}", position.key()))
}

/// The position a cursor from [`encode_cursor`] names, if it belongs to this webhook and
/// window (DynamoDB refuses to resume outside the key condition, and resuming another
/// webhook's position would skip lines).
pub fn decode_cursor(
    text: &str,
    webhook: &WebhookId,
    window: &RecoveryWindow,
) -> Result<LogPosition, Problem> {
    let unreadable = || {
        Problem::bad_request(
            "cursor is not one this API answered: pass next_cursor from the previous answer \
             unchanged, or leave cursor out to start at since",
        )
    };
    let text = URL_SAFE_NO_PAD.decode(text).map_err(|_| unreadable())?;
    let text = String::from_utf8(text).map_err(|_| unreadable())?;
    let (cursor_webhook, key) = text.split_once(' ').ok_or_else(unreadable)?;
    let position = LogPosition::from_key(key).ok_or_else(unreadable)?;
    if cursor_webhook != webhook.as_str() {
        return Err(Problem::bad_request(format!(
            "cursor belongs to the recovery of another webhook, not {webhook:?}; \
             leave cursor out to start this webhook's window at since"
        )));
    }
    let (since, until) = (Timestamp::from(window.since), Timestamp::from(window.until));
    if position.at() < since || position.at() > until {
        return Err(Problem::bad_request(format!(
            "cursor points at {}, outside the window from since ({since}) to until ({until}); \
             pass the same since and until as the call that answered this cursor",
            position.at()
        )));
    }
    Ok(position)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn line(delivery: &str, state: DeliveryState, at: &str) -> AttemptRecord {
        let mut line = AttemptRecord::line(
            &DeliveryRef {
                delivery_id: delivery.into(),
                webhook_id: "wh_1".into(),
                event_id: format!("evt_{delivery}").into(),
                event_type: "order.completed".into(),
                resource_id: None,
                manual: false,
            },
            1,
            Timestamp::parse(at).expect("time").system_time(),
            Duration::from_secs(60),
        );
        line.delivery_state = state;
        line
    }

    fn window(since: &str, until: &str) -> RecoveryWindow {
        let at = |t| Timestamp::parse(t).expect("time").system_time();
        RecoveryWindow {
            since: at(since),
            until: at(until),
        }
    }

    const AT: &str = "2026-11-27T03:00:00.123Z";

    fn at(text: &str) -> SystemTime {
        Timestamp::parse(text).expect("time").system_time()
    }

    #[test]
    fn failed_and_cancelled_deliveries_are_gathered_once_in_chunks_of_a_batch() {
        let mut sweep = Sweep::default();
        let mut chunks = Vec::new();
        for n in 0..23 {
            let state = match n % 4 {
                0 => DeliveryState::Succeeded,
                1 => DeliveryState::Retrying,
                2 => DeliveryState::PermanentlyFailed,
                _ => DeliveryState::Cancelled,
            };
            chunks.extend(sweep.take(&line(&format!("dlv_{n}"), state, AT)));
            // The same delivery again (a second final line) is not gathered twice.
            chunks.extend(sweep.take(&line(&format!("dlv_{n}"), state, AT)));
        }
        assert_eq!(sweep.found(), 11, "2, 3, 6, 7, …, 22");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), RECOVERY_CHUNK);
        let rest = sweep.rest();
        assert_eq!(rest.len(), 1);
        assert!(sweep.rest().is_empty(), "handed over once");

        let first = &chunks[0][0];
        assert_eq!(
            first.delivery_id,
            ids::recovery_delivery_id(&DeliveryId::from("dlv_2"), at(AT))
        );
        assert!(first.manual);
        assert_eq!(first.event_id, "evt_dlv_2");
        assert_eq!(first.webhook_id, "wh_1");
        assert_eq!(
            rest[0].delivery_id,
            ids::recovery_delivery_id(&DeliveryId::from("dlv_22"), at(AT))
        );
    }

    #[test]
    fn a_cursor_reads_back_as_the_position_it_was_made_from() {
        let webhook = WebhookId::from("wh_1");
        let position = LogPosition::of(&line("dlv_7", DeliveryState::PermanentlyFailed, AT));
        let cursor = encode_cursor(&webhook, &position);
        assert!(cursor
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let around = window("2026-11-27T03:00:00Z", "2026-11-27T04:00:00Z");
        assert_eq!(decode_cursor(&cursor, &webhook, &around), Ok(position));
        // The window's ends count, to the millisecond.
        let exact = window(AT, AT);
        assert!(decode_cursor(&cursor, &webhook, &exact).is_ok());
    }

    #[test]
    fn a_bad_cursor_is_a_400_saying_what_to_do() {
        let webhook = WebhookId::from("wh_1");
        let around = window("2026-11-27T03:00:00Z", "2026-11-27T04:00:00Z");
        let not_ours = [
            String::new(),
            "not base64!".into(),
            URL_SAFE_NO_PAD.encode("wh_1"),
            URL_SAFE_NO_PAD.encode(format!("wh_1 {AT}")),
            URL_SAFE_NO_PAD.encode("wh_1 ended#2026-11-27T03:00:00Z#dlv_1.1"),
            URL_SAFE_NO_PAD.encode(format!("wh_1 {AT}#dlv_1.1")),
            URL_SAFE_NO_PAD.encode("wh_1 dlv_1#0001"),
            URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
        ];
        for cursor in not_ours {
            let p = decode_cursor(&cursor, &webhook, &around).unwrap_err();
            assert_eq!(p.status, 400, "{cursor}");
            assert!(p.detail.contains("next_cursor"), "{}", p.detail);
        }
        let position = LogPosition::of(&line("dlv_7", DeliveryState::Cancelled, AT));
        let cursor = encode_cursor(&webhook, &position);
        let other = decode_cursor(&cursor, &WebhookId::from("wh_2"), &around).unwrap_err();
        assert_eq!(other.status, 400);
        assert!(other.detail.contains("another webhook"), "{}", other.detail);
        for outside in [
            window("2026-11-27T03:00:00.124Z", "2026-11-27T04:00:00Z"),
            window("2026-11-27T02:00:00Z", "2026-11-27T03:00:00.122Z"),
        ] {
            let p = decode_cursor(&cursor, &webhook, &outside).unwrap_err();
            assert_eq!(p.status, 400);
            assert!(p.detail.contains("same since and until"), "{}", p.detail);
        }
    }
}
