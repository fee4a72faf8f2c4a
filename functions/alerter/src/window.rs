//! The digest window of a webhook (SPEC §5) as pure transitions: `open` (collecting, a flush
//! is scheduled for `due_at`) → `sending` (claimed by the flush) → `closed` (the email went
//! out at `last_email_at`). A send that fails leaves the window `sending`; its flush message
//! comes back and sends again. Times are Unix seconds, passed in by the caller.

use std::time::Duration;

use webhooks_shared::domain::alerts::{AlertWindow, WindowState};

use crate::digest::digest_due;

/// A window whose digest is this late has lost its flush message: schedule another.
pub const FLUSH_OVERDUE_SECS: i64 = 60;
/// A window `sending` for this long has lost its flush message: a flush that SES kept
/// refusing lives at most 20 receives (the alerts queue's maxReceiveCount), at most 180 s
/// apart, before it is dead-lettered. Then the next failure takes the window over.
pub const SENDING_OVERDUE_SECS: i64 = 3_600;

/// How long a window gathers failures, and the least time between two emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub gather_secs: i64,
    pub window_secs: i64,
}

/// What a new failure does to its webhook's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure<'a> {
    /// An open or sending window will pick it up.
    Join,
    /// This open window's flush is overdue (its message was lost): schedule another.
    Reschedule(&'a AlertWindow),
    /// This window has been `sending` for too long (its flush was dead-lettered): take it
    /// over and send it again, so this failure and those before it reach someone.
    TakeOver(&'a AlertWindow),
    /// No window is open: open one, due at `due_at`.
    Open {
        due_at: i64,
        last_email_at: Option<i64>,
    },
}

pub fn on_failure(current: Option<&AlertWindow>, now: i64, timing: Timing) -> OnFailure<'_> {
    match current {
        Some(w) if w.state == WindowState::Open => {
            if now > w.due_at + FLUSH_OVERDUE_SECS {
                OnFailure::Reschedule(w)
            } else {
                OnFailure::Join
            }
        }
        Some(w) if w.state == WindowState::Sending => {
            if now > w.due_at + SENDING_OVERDUE_SECS {
                OnFailure::TakeOver(w)
            } else {
                // Its flush is running and looks for failures that arrive meanwhile.
                OnFailure::Join
            }
        }
        _ => {
            let last_email_at = current.and_then(|w| w.last_email_at);
            OnFailure::Open {
                due_at: digest_due(now, timing.gather_secs, timing.window_secs, last_email_at),
                last_email_at,
            }
        }
    }
}

/// What a flush message for window `window_id` does, given the webhook's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFlush {
    /// A stale or repeated flush: nothing to send.
    Drop,
    /// Surfaced before the window is due: come back in this long.
    NotYet(Duration),
    /// Due: claim the window (`open` → `sending`), then send.
    Claim,
    /// Already `sending`, claimed by this flush: an earlier send failed; send again.
    Resend,
}

/// `flush_id` is the flush message's SQS message id: the same on each receive of that
/// message, another for a copy of it.
pub fn on_flush(
    window: Option<&AlertWindow>,
    window_id: &str,
    flush_id: &str,
    now: i64,
) -> OnFlush {
    let Some(window) = window.filter(|w| w.window_id == window_id) else {
        return OnFlush::Drop;
    };
    match window.state {
        WindowState::Closed => OnFlush::Drop,
        // Windows claimed before claims were recorded have no `claimed_by`.
        WindowState::Sending if window.claimed_by.as_deref().is_none_or(|c| c == flush_id) => {
            OnFlush::Resend
        }
        // Another flush message (a copy of this one) is sending it.
        WindowState::Sending => OnFlush::Drop,
        WindowState::Open if now < window.due_at => {
            OnFlush::NotYet(Duration::from_secs((window.due_at - now) as u64))
        }
        WindowState::Open => OnFlush::Claim,
    }
}

/// The delay of a flush message sent at `now`, so it surfaces when the window is due.
pub fn flush_delay(window: &AlertWindow, now: i64) -> Duration {
    Duration::from_secs((window.due_at - now).max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        gather_secs: 10,
        window_secs: 900,
    };

    fn window(state: WindowState, due_at: i64, last_email_at: Option<i64>) -> AlertWindow {
        AlertWindow {
            webhook_id: "wh_1".into(),
            window_id: "w1".into(),
            state,
            due_at,
            last_email_at,
            ..AlertWindow::default()
        }
    }

    #[test]
    fn a_first_failure_opens_a_window_due_after_the_gathering_delay() {
        assert_eq!(
            on_failure(None, 1000, TIMING),
            OnFailure::Open {
                due_at: 1010,
                last_email_at: None
            }
        );
    }

    #[test]
    fn after_an_email_the_next_window_waits_a_full_window() {
        let closed = window(WindowState::Closed, 1010, Some(1012));
        assert_eq!(
            on_failure(Some(&closed), 1100, TIMING),
            OnFailure::Open {
                due_at: 1912,
                last_email_at: Some(1012)
            }
        );
        // Long after the last email, only the gathering delay applies.
        assert_eq!(
            on_failure(Some(&closed), 5000, TIMING),
            OnFailure::Open {
                due_at: 5010,
                last_email_at: Some(1012)
            }
        );
    }

    #[test]
    fn failures_join_an_open_or_sending_window() {
        let open = window(WindowState::Open, 1010, None);
        assert_eq!(on_failure(Some(&open), 1005, TIMING), OnFailure::Join);
        assert_eq!(
            on_failure(Some(&open), 1010 + FLUSH_OVERDUE_SECS, TIMING),
            OnFailure::Join
        );
        let sending = window(WindowState::Sending, 1010, None);
        assert_eq!(on_failure(Some(&sending), 2_000, TIMING), OnFailure::Join);
    }

    #[test]
    fn an_overdue_open_window_gets_another_flush() {
        let open = window(WindowState::Open, 1010, None);
        assert_eq!(
            on_failure(Some(&open), 1011 + FLUSH_OVERDUE_SECS, TIMING),
            OnFailure::Reschedule(&open)
        );
    }

    #[test]
    fn a_window_stuck_sending_is_taken_over_by_the_next_failure() {
        let stuck = window(WindowState::Sending, 1010, None);
        assert_eq!(
            on_failure(Some(&stuck), 1010 + SENDING_OVERDUE_SECS, TIMING),
            OnFailure::Join,
            "still within the flush's life"
        );
        assert_eq!(
            on_failure(Some(&stuck), 1011 + SENDING_OVERDUE_SECS, TIMING),
            OnFailure::TakeOver(&stuck)
        );
        // The taker opens it again (claimed by nobody), due at once: its flush claims it.
        let taken = AlertWindow {
            state: WindowState::Open,
            due_at: 5000,
            ..stuck.clone()
        };
        assert_eq!(on_flush(Some(&taken), "w1", "m2", 5000), OnFlush::Claim);
    }

    #[test]
    fn open_then_sending_then_closed() {
        let open = window(WindowState::Open, 1010, None);
        assert_eq!(flush_delay(&open, 1000), Duration::from_secs(10));
        // A flush that surfaces early waits for the rest; a due one claims the window.
        assert_eq!(
            on_flush(Some(&open), "w1", "m1", 1004),
            OnFlush::NotYet(Duration::from_secs(6))
        );
        assert_eq!(on_flush(Some(&open), "w1", "m1", 1010), OnFlush::Claim);
        assert_eq!(on_flush(Some(&open), "w1", "m1", 2000), OnFlush::Claim);
        // Once closed, a repeated flush sends nothing.
        let closed = window(WindowState::Closed, 1010, Some(1011));
        assert_eq!(on_flush(Some(&closed), "w1", "m1", 1011), OnFlush::Drop);
    }

    #[test]
    fn a_failure_during_sending_sends_again() {
        // The email failed: the window stays `sending` and the flush comes back.
        let sending = window(WindowState::Sending, 1010, None);
        assert_eq!(on_flush(Some(&sending), "w1", "m1", 1070), OnFlush::Resend);
        // Before its due time too: it was claimed already.
        assert_eq!(on_flush(Some(&sending), "w1", "m1", 0), OnFlush::Resend);
    }

    #[test]
    fn only_the_flush_that_claimed_a_window_sends_it() {
        let claimed = AlertWindow {
            claimed_by: Some("m1".into()),
            ..window(WindowState::Sending, 1010, None)
        };
        assert_eq!(on_flush(Some(&claimed), "w1", "m1", 1070), OnFlush::Resend);
        assert_eq!(
            on_flush(Some(&claimed), "w1", "m2", 1070),
            OnFlush::Drop,
            "a copy of the flush message"
        );
    }

    #[test]
    fn stale_flushes_are_dropped() {
        let open = window(WindowState::Open, 1010, None);
        assert_eq!(on_flush(Some(&open), "w0", "m1", 2000), OnFlush::Drop);
        assert_eq!(on_flush(None, "w1", "m1", 2000), OnFlush::Drop);
    }

    #[test]
    fn a_late_flush_is_sent_at_once() {
        let open = window(WindowState::Open, 1010, None);
        assert_eq!(flush_delay(&open, 1010), Duration::ZERO);
        assert_eq!(flush_delay(&open, 5000), Duration::ZERO);
    }
}
