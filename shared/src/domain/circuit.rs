//! One endpoint's circuit breaker, as pure rules. An endpoint that stops answering (timeouts,
//! refused connections, DNS or TLS failures) would otherwise hold a delivery invocation for
//! the whole request timeout on every attempt, and many such attempts take the concurrency
//! that other endpoints' deliveries need.
//!
//! - **Closed** (the normal state): every due attempt is sent. Each attempt that gets no
//!   answer counts one more failure in a row; any answer at all resets the count.
//! - **Open**, after [`OPEN_AFTER`] failures in a row: a due attempt is not sent. It is
//!   logged as a failed attempt that says it was not sent and why, and the delivery waits
//!   for its next attempt as the retry schedule says, so the guide's promise holds (at most
//!   6 attempts over about 30 minutes, then `permanently_failed` and the alert).
//! - **Probe**: once the probe time has come, the first due attempt that claims it (a
//!   conditional write, so one across all invocations) is sent for real; the claim moves the
//!   probe time one interval on. A 2xx answer closes the circuit; anything else keeps it
//!   open until the next probe.
//!
//! - **At most [`MAX_IN_FLIGHT`] attempts in flight** while the endpoint is not answering:
//!   from the moment an attempt has waited [`AWAITING_AFTER`] for an answer (or one got none),
//!   until an answer comes, each attempt first takes one of that many slots (a conditional
//!   write, released when it ends, expiring on its own after the timeout if a crash kept it).
//!   An attempt that finds none free is not sent, logged as above: a silent endpoint cannot
//!   hold more than that many of the function's invocations, however fast its events come.
//!
//! The state lives on the webhook's item, which every delivery batch reads anyway: a healthy
//! endpoint's circuit and slots cost no read and no write.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::domain::clock::Timestamp;
use crate::domain::model::WebhookRecord;
use crate::domain::retry::AttemptResult;

/// Attempts in a row that got no answer before the circuit opens.
pub const OPEN_AFTER: u32 = 5;
/// Attempts in flight at most to an endpoint that is not answering.
pub const MAX_IN_FLIGHT: usize = 20;
/// How long an attempt waits for an answer before its endpoint counts as not answering (half
/// the 10 s timeout: an endpoint that answers in 2 s is slow, not silent).
pub const AWAITING_AFTER: Duration = Duration::from_secs(5);
/// A mark of an attempt still waiting counts this long (a crash may leave one behind).
const AWAITING_COUNTS_FOR: Duration = Duration::from_secs(30);
/// A slot is held at most this long: the 10 s timeout, the log line, and a margin.
pub const SLOT_HELD_FOR: Duration = Duration::from_secs(30);

/// What to do with a due attempt, given the endpoint's circuit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Closed: send it.
    Send,
    /// Closed, but the endpoint is not answering: send it if a slot can be taken.
    SendInSlot,
    /// Open and a probe is due: send it if the probe taken at `seen` can be claimed first.
    Probe { seen: Timestamp },
    /// Open: do not send; log the attempt as not sent, for this reason.
    Hold(String),
}

/// How the endpoint's circuit changes after an attempt's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write.
    Keep,
    /// One more attempt without an answer (the store opens the circuit at [`OPEN_AFTER`]).
    CountFailure,
    /// The endpoint answered: close the circuit and clear the count.
    Close,
}

/// Whether an endpoint's due attempts are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    Closed,
    Open,
}

/// The endpoint's circuit breaker. After 5 attempts in a row that got no answer (timeouts,
/// refused connections, DNS or TLS failures) it opens: due attempts are then logged as failed
/// and not sent (their `error` says so and why), and one test request goes per interval; a
/// 2xx answer closes it. Any answer while closed ends a run of failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Circuit))]
#[serde(deny_unknown_fields)]
pub struct CircuitView {
    pub state: CircuitState,
    /// Attempts in a row that got no answer.
    pub failures_in_row: u32,
    /// Since when it is open; null while closed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub opened_at: Option<Timestamp>,
    /// When the next test request may go, while open; null while closed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime, required = true))]
    pub next_probe_at: Option<Timestamp>,
    /// The error of the last attempt that counted.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_error: Option<String>,
}

/// The gate for a due attempt to `webhook` at `now`.
pub fn gate(webhook: &WebhookRecord, now: SystemTime) -> Gate {
    let Some(opened_at) = webhook.circuit_opened_at else {
        let awaiting = webhook.awaiting_answer_since.is_some_and(|since| {
            now.duration_since(since.system_time())
                .is_ok_and(|waited| waited < AWAITING_COUNTS_FOR)
        });
        return if awaiting || webhook.failures_in_row > 0 {
            Gate::SendInSlot
        } else {
            Gate::Send
        };
    };
    match webhook.probe_at {
        Some(probe_at) if probe_at.system_time() > now => Gate::Hold(format!(
            "not sent: the endpoint's circuit is open ({} attempts in a row got no answer, \
             the last: {}; open since {}); the next test request goes at {}",
            webhook.failures_in_row,
            webhook.last_failure.as_deref().unwrap_or("no answer"),
            opened_at,
            probe_at,
        )),
        // Due (or never set: a circuit opened without a probe time probes at once).
        Some(seen) => Gate::Probe { seen },
        None => Gate::Probe { seen: opened_at },
    }
}

/// What `result` does to the circuit of an endpoint that looked like `webhook`.
pub fn change(webhook: &WebhookRecord, result: &AttemptResult) -> Change {
    let dirty = webhook.failures_in_row > 0
        || webhook.circuit_opened_at.is_some()
        || webhook.awaiting_answer_since.is_some();
    match result {
        AttemptResult::TransportError => Change::CountFailure,
        AttemptResult::Status { status, .. } => {
            let open = webhook.circuit_opened_at.is_some();
            // While open, only a success closes it; while closed, any answer ends a run of
            // failures.
            if dirty && (!open || (200..300).contains(status)) {
                Change::Close
            } else {
                Change::Keep
            }
        }
        AttemptResult::Refused => Change::Keep,
    }
}

/// Why an attempt that found no free slot was not sent.
pub fn no_slot_reason() -> String {
    format!(
        "not sent: {MAX_IN_FLIGHT} attempts to this endpoint are already waiting for an answer \
         (at most {MAX_IN_FLIGHT} while it is not answering)"
    )
}

/// When the probe after one made at `now` may go: one per `interval` (the retry schedule's
/// first wait, a minute by default).
pub fn next_probe(now: SystemTime, interval: Duration) -> Timestamp {
    Timestamp::from(now + interval)
}

/// Closes `webhook`'s circuit: an admin who points it at another URL gets a new endpoint,
/// tried at once.
pub fn close(webhook: &mut WebhookRecord) {
    webhook.failures_in_row = 0;
    webhook.circuit_opened_at = None;
    webhook.probe_at = None;
    webhook.last_failure = None;
    webhook.awaiting_answer_since = None;
}

/// The circuit of `webhook`, for the API.
pub fn view(webhook: &WebhookRecord) -> CircuitView {
    CircuitView {
        state: if webhook.circuit_opened_at.is_some() {
            CircuitState::Open
        } else {
            CircuitState::Closed
        },
        failures_in_row: webhook.failures_in_row,
        opened_at: webhook.circuit_opened_at,
        next_probe_at: webhook.circuit_opened_at.and(webhook.probe_at),
        last_error: webhook.last_failure.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{NewWebhook, StoredSecret};

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000 + seconds)
    }

    fn webhook() -> WebhookRecord {
        let new = NewWebhook {
            name: "n".into(),
            url: "https://example.com/hook".into(),
            events: vec!["order.completed".into()],
            active: true,
        };
        let secret = StoredSecret {
            ciphertext: String::new(),
            hint: String::new(),
        };
        WebhookRecord {
            revision: 1,
            ..WebhookRecord::created("wh_1".into(), new, secret, Timestamp::from(at(0)))
        }
    }

    fn open(probe_at: u64) -> WebhookRecord {
        WebhookRecord {
            failures_in_row: OPEN_AFTER,
            circuit_opened_at: Some(Timestamp::from(at(10))),
            probe_at: Some(Timestamp::from(at(probe_at))),
            last_failure: Some("timeout: no answer within 10 s".into()),
            ..webhook()
        }
    }

    const OK: AttemptResult = AttemptResult::Status {
        status: 200,
        retry_after: None,
    };
    const UNAVAILABLE: AttemptResult = AttemptResult::Status {
        status: 503,
        retry_after: None,
    };

    #[test]
    fn a_closed_circuit_sends_and_costs_nothing_while_the_endpoint_answers() {
        let w = webhook();
        assert_eq!(gate(&w, at(100)), Gate::Send);
        assert_eq!(change(&w, &OK), Change::Keep);
        assert_eq!(change(&w, &UNAVAILABLE), Change::Keep);
        assert_eq!(change(&w, &AttemptResult::Refused), Change::Keep);
        assert_eq!(view(&w).state, CircuitState::Closed);
    }

    #[test]
    fn no_answer_counts_and_any_answer_ends_the_run_while_closed() {
        let w = webhook();
        assert_eq!(
            change(&w, &AttemptResult::TransportError),
            Change::CountFailure
        );
        let counting = WebhookRecord {
            failures_in_row: 3,
            ..webhook()
        };
        // Still sent, but in a slot: the endpoint is not answering.
        assert_eq!(gate(&counting, at(100)), Gate::SendInSlot);
        assert_eq!(change(&counting, &UNAVAILABLE), Change::Close);
        assert_eq!(change(&counting, &OK), Change::Close);
    }

    #[test]
    fn an_open_circuit_holds_attempts_until_the_probe_is_due_and_says_why() {
        let w = open(70);
        let Gate::Hold(reason) = gate(&w, at(69)) else {
            panic!("held")
        };
        assert!(reason.starts_with("not sent: the endpoint's circuit is open"));
        assert!(reason.contains("5 attempts in a row") && reason.contains("timeout"));
        assert!(
            reason.contains(&Timestamp::from(at(70)).to_string()),
            "{reason}"
        );
        assert_eq!(
            gate(&w, at(70)),
            Gate::Probe {
                seen: Timestamp::from(at(70))
            }
        );
        let view = view(&w);
        assert_eq!(view.state, CircuitState::Open);
        assert_eq!(view.next_probe_at, Some(Timestamp::from(at(70))));
    }

    #[test]
    fn only_a_success_closes_an_open_circuit() {
        let w = open(70);
        assert_eq!(change(&w, &OK), Change::Close);
        assert_eq!(change(&w, &UNAVAILABLE), Change::Keep);
        assert_eq!(
            change(&w, &AttemptResult::TransportError),
            Change::CountFailure
        );
    }

    #[test]
    fn attempts_take_a_slot_while_the_endpoint_is_not_answering() {
        let waiting = WebhookRecord {
            awaiting_answer_since: Some(Timestamp::from(at(100))),
            ..webhook()
        };
        assert_eq!(gate(&waiting, at(101)), Gate::SendInSlot);
        // A mark left long ago (a crash before the answer cleared it) no longer counts.
        assert_eq!(gate(&waiting, at(131)), Gate::Send);
        let failing = WebhookRecord {
            failures_in_row: 1,
            ..webhook()
        };
        assert_eq!(gate(&failing, at(0)), Gate::SendInSlot);
        // Any answer clears the mark.
        assert_eq!(change(&waiting, &UNAVAILABLE), Change::Close);
        assert!(no_slot_reason().starts_with("not sent: 20 attempts to this endpoint"));
    }

    #[test]
    fn closing_clears_every_trace_of_the_circuit() {
        let mut w = WebhookRecord {
            awaiting_answer_since: Some(Timestamp::from(at(3))),
            ..open(70)
        };
        close(&mut w);
        assert_eq!(w, webhook());
    }

    #[test]
    fn probes_are_one_interval_apart() {
        assert_eq!(
            next_probe(at(70), Duration::from_secs(60)),
            Timestamp::from(at(130))
        );
    }
}
