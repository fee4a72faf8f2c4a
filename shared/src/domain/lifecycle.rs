//! The life of a delivery (SPEC §5) as pure rules: its state from its log, whose turn it is,
//! what an attempt's answer makes of it, and the signed request it sends. No I/O and no clock
//! reads: callers pass the time in. `deliver`, the alerter and the admin API all go by these.
//!
//! # Glossary
//!
//! - **Delivery**: one event to one webhook (`DeliveryRef`, id `dlv_…`). It travels as one
//!   message of the deliveries queue, from its first attempt to its last.
//! - **Attempt**: one try at a delivery, numbered from 1 (`AttemptId`: `dlv_….3`). Most
//!   send a request; some end without one (not sent, cancelled, internal error).
//! - **Line**: an attempt's entry in the delivery log (`AttemptRecord`), written once. The
//!   delivery's state is its latest line's ([`Progress`]); nothing else stores it.
//! - **Turn** ([`Turn`]): what a delivery's message that surfaces is for, asked before any
//!   attempt: the delivery is over (a final line), the message is early (hidden again), or
//!   attempt *n* is due.
//! - **Attempt result** (`retry::AttemptResult`): what the request got: a status (with its
//!   `Retry-After`), no answer, or a target refused. The input of the retry policy.
//! - **Next step** ([`NextStep`]): the one outcome type. What an attempt makes of its
//!   delivery: succeeded, permanently failed, cancelled, or retry in a wait. The retry
//!   policy returns it, the attempt's line records it ([`NextStep::record`]), and it goes
//!   with the delivery's message to its settlement (`deliver::batch`).
//! - **Settle**: what the queue does with a handled message (`adapters::queue::Settle`):
//!   delete it once its delivery has ended, or hide it until its next attempt is due. In
//!   deliver, an error of ours (not the receiver's) is `RetryIn` the [`internal_error_wait`],
//!   logged as an error; after ten receives the message is a dead letter. The alerter settles
//!   its own messages (alerts and dead letters, not attempts) with `Settle` directly.
//! - **Not sent**: a due attempt that the endpoint's circuit holds back, logged as failed
//!   without a request and counted as one that got no answer ([`not_sent_line`]).
//! - **Cancelled**: the webhook was paused or deleted at the delivery's turn: a final line
//!   without a request ([`Target::Cancel`]); it can be redelivered.
//! - **Circuit**: an endpoint's breaker, owned by `domain::circuit`: **open** after attempts
//!   in a row that got no answer (due attempts are not sent), **probe** (one attempt at a
//!   time tests the endpoint), **slot** (one of the few attempts in flight while the endpoint
//!   is not answering).
//! - **Redeliver** / **recover**: a new, manual delivery of the same event: one attempt's
//!   (redeliver), or every delivery that ended `permanently_failed` or `cancelled` in a time
//!   window, once each (recover; its ids are `ids::recovery_delivery_id`).
//!
//! # Which module owns which rule
//!
//! - Which answers are retried, and after how long (schedule, jitter, `Retry-After`):
//!   `retry.rs` ([`RetrySchedule::next_step`]).
//! - What a line records, a delivery's state, whose turn it is, who is cancelled, what a
//!   step does to the delivery: this module.
//! - When an endpoint is not asked (open circuit, probe, slots), and what an answer does to
//!   its webhook: `circuit.rs` (`circuit::gate`, `circuit::change`). A rule such as "410
//!   pauses the webhook" belongs there, as one more `Change` that deliver's `update_circuit`
//!   writes; the delivery itself ends as `retry.rs` says (410 is not retried).
//! - Which failures are alerted and how often: `alerts.rs` and the alerter.
//! - What the queue does with a message: deliver's `batch::settle` maps a [`NextStep`] to a
//!   `Settle`, the one place that does.

use std::time::{Duration, SystemTime};

use crate::domain::alerts::FailureReason;
use crate::domain::clock::Timestamp;
use crate::domain::model::{
    AttemptOutcome, AttemptRecord, DeliveryRef, DeliveryState, RecordedRequest, WebhookRecord,
    WebhookStatus,
};
use crate::domain::retry::{AttemptResult, RetrySchedule};
use crate::domain::signing::SigningSecret;

/// A message that surfaces more than this before its attempt is due is hidden again; within
/// it, the attempt is made rather than hiding the message for a moment.
pub const EARLY_TOLERANCE: Duration = Duration::from_millis(250);
/// The `User-Agent` of every delivery request; the log records it with the other headers.
pub const USER_AGENT: &str = concat!("comps-webhooks/", env!("CARGO_PKG_VERSION"));
/// The wait after an internal error if the schedule had no waits at all.
const FALLBACK_INTERNAL_WAIT: Duration = Duration::from_secs(60);
/// The error of the line that ends a delivery from the dead-letter queue.
pub const INTERNAL_ERROR: &str =
    "internal_error: the delivery could not be processed and reached the dead-letter queue";

/// A delivery as its log tells it. The state is not stored with the delivery: it is the one
/// its latest attempt recorded, `pending` before any.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    latest: Option<&'a AttemptRecord>,
}

/// Whose turn it is, for a delivery's message that has just surfaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn<'a> {
    /// The delivery has its final answer, in this line: no further request.
    Over(&'a AttemptRecord),
    /// The next attempt is due in this long: the message surfaced early.
    Early(Duration),
    /// Attempt number `n` is due now.
    Due(u32),
}

impl<'a> Progress<'a> {
    pub fn of(attempts: &'a [AttemptRecord]) -> Self {
        Progress {
            latest: attempts.iter().max_by_key(|a| a.attempt),
        }
    }

    /// The attempt with the highest number, whatever the order of `attempts`.
    pub fn latest(self) -> Option<&'a AttemptRecord> {
        self.latest
    }

    pub fn state(self) -> DeliveryState {
        self.latest
            .map_or(DeliveryState::Pending, |a| a.delivery_state)
    }

    /// The latest line, if it ended the delivery.
    pub fn final_line(self) -> Option<&'a AttemptRecord> {
        self.latest.filter(|a| a.delivery_state.is_final())
    }

    /// Attempts are numbered from 1, one more than the latest.
    pub fn next_attempt_number(self) -> u32 {
        self.latest.map_or(1, |a| a.attempt + 1)
    }

    /// When the next attempt is due, while the delivery is retrying.
    pub fn next_attempt_at(self) -> Option<Timestamp> {
        self.latest
            .filter(|a| a.delivery_state == DeliveryState::Retrying)
            .and_then(|a| a.next_attempt_at)
    }

    /// What a message of this delivery that surfaces at `now` is for.
    pub fn turn(self, now: SystemTime) -> Turn<'a> {
        if let Some(last) = self.latest {
            if last.delivery_state.is_final() {
                return Turn::Over(last);
            }
            if let Some(wait) = wait_until_due(last, now) {
                return Turn::Early(wait);
            }
        }
        Turn::Due(self.next_attempt_number())
    }
}

/// How long until the attempt after `line` is due, if that is more than [`EARLY_TOLERANCE`]
/// away from `now`.
pub fn wait_until_due(line: &AttemptRecord, now: SystemTime) -> Option<Duration> {
    let due = line.next_attempt_at?.system_time();
    let wait = due.duration_since(now).ok()?;
    (wait > EARLY_TOLERANCE).then_some(wait)
}

/// How long a message waits after something broke on our side (not the receiver) before it
/// is tried again: the schedule's first wait.
pub fn internal_error_wait(schedule: &RetrySchedule) -> Duration {
    schedule.delay_after(1).unwrap_or(FALLBACK_INTERNAL_WAIT)
}

/// What an attempt makes of its delivery: the one outcome type, from the retry policy
/// ([`RetrySchedule::next_step`]) to the attempt's line ([`NextStep::record`]) and to the
/// settlement of the delivery's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// The receiver accepted it (2xx): the delivery ends `succeeded`.
    Succeeded,
    /// An answer not retried, or the schedule's last attempt failed: the delivery ends
    /// `permanently_failed`, and its alert is owed.
    PermanentlyFailed,
    /// The webhook is paused or deleted: the delivery ends `cancelled`, with no request.
    Cancelled,
    /// The delivery goes on: its next attempt is due in this long.
    RetryIn(Duration),
}

impl NextStep {
    /// Where `line` leaves its delivery, seen at `now`: ended as its state says, or going on
    /// with its next attempt due in what is left of the wait (none within
    /// [`EARLY_TOLERANCE`], as for a [`Turn`]).
    pub fn of_line(line: &AttemptRecord, now: SystemTime) -> Self {
        match line.delivery_state {
            DeliveryState::Succeeded => NextStep::Succeeded,
            DeliveryState::PermanentlyFailed => NextStep::PermanentlyFailed,
            DeliveryState::Cancelled => NextStep::Cancelled,
            DeliveryState::Retrying | DeliveryState::Pending => {
                NextStep::RetryIn(wait_until_due(line, now).unwrap_or_default())
            }
        }
    }

    /// Whether the delivery has ended: no attempt follows.
    pub fn is_final(self) -> bool {
        !matches!(self, NextStep::RetryIn(_))
    }

    /// The delivery's state after this step.
    pub fn state(self) -> DeliveryState {
        match self {
            NextStep::Succeeded => DeliveryState::Succeeded,
            NextStep::PermanentlyFailed => DeliveryState::PermanentlyFailed,
            NextStep::Cancelled => DeliveryState::Cancelled,
            NextStep::RetryIn(_) => DeliveryState::Retrying,
        }
    }

    /// The attempt's own outcome: it succeeded only if the delivery did.
    pub fn outcome(self) -> AttemptOutcome {
        if self == NextStep::Succeeded {
            AttemptOutcome::Succeeded
        } else {
            AttemptOutcome::Failed
        }
    }

    /// When the next attempt is due, timed from `answered_at`; only while retrying.
    pub fn next_attempt_at(self, answered_at: SystemTime) -> Option<SystemTime> {
        match self {
            NextStep::RetryIn(wait) => Some(answered_at + wait),
            _ => None,
        }
    }

    /// Writes the step into the attempt's line: its outcome, the delivery's state, and when
    /// the next attempt is due (timed from `answered_at`, when the answer came).
    pub fn record(self, line: &mut AttemptRecord, answered_at: SystemTime) {
        line.outcome = self.outcome();
        line.delivery_state = self.state();
        line.next_attempt_at = self.next_attempt_at(answered_at).map(Timestamp::from);
    }
}

/// Why a delivery that ended `permanently_failed` with `last` failed.
pub fn failure_reason(last: &AttemptRecord, schedule: &RetrySchedule) -> FailureReason {
    if last.attempt >= schedule.max_attempts() {
        FailureReason::RetriesExhausted
    } else {
        FailureReason::NotRetryable
    }
}

/// Where a delivery's due attempt goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Send(&'a WebhookRecord),
    /// The webhook was deleted or paused: the delivery ends `cancelled`, for this reason,
    /// without a request (it can be redelivered later).
    Cancel(&'static str),
}

pub fn target(webhook: Option<&WebhookRecord>) -> Target<'_> {
    match webhook {
        None => Target::Cancel("cancelled: webhook deleted"),
        Some(w) if w.status == WebhookStatus::Paused => Target::Cancel("cancelled: webhook paused"),
        Some(w) => Target::Send(w),
    }
}

/// The line of attempt `number` of a delivery cancelled at its turn.
pub fn cancelled_line(
    delivery: &DeliveryRef,
    number: u32,
    now: SystemTime,
    retention: Duration,
    reason: &str,
) -> AttemptRecord {
    let mut line = AttemptRecord::line(delivery, number, now, retention);
    line.error = Some(reason.to_owned());
    NextStep::Cancelled.record(&mut line, now);
    line
}

/// The line of attempt `number` not sent because the endpoint's circuit is open (`reason`
/// says so): a failed attempt without a request, whose delivery goes on as the schedule
/// says for an attempt that got no answer, so it still ends after the schedule's attempts.
pub fn not_sent_line(
    delivery: &DeliveryRef,
    number: u32,
    now: SystemTime,
    retention: Duration,
    reason: String,
    schedule: &RetrySchedule,
    jitter: f64,
) -> AttemptRecord {
    let mut line = AttemptRecord::line(delivery, number, now, retention);
    line.error = Some(reason);
    schedule
        .next_step(number, &AttemptResult::TransportError, jitter)
        .record(&mut line, now);
    line
}

/// The line that ends, as attempt `number`, a delivery that kept crashing `deliver` and
/// reached the dead-letter queue.
pub fn internal_error_line(
    delivery: &DeliveryRef,
    number: u32,
    now: SystemTime,
    retention: Duration,
) -> AttemptRecord {
    let mut line = AttemptRecord::line(delivery, number, now, retention);
    line.error = Some(INTERNAL_ERROR.into());
    NextStep::PermanentlyFailed.record(&mut line, now);
    line
}

/// The headers of attempt `attempt` of `delivery`, sent at `timestamp` (Unix seconds), both
/// signatures over the exact `body` bytes (SPEC §4). `webhook-id` is the event id, so a
/// receiver can drop redeliveries of an event it already has.
pub fn wire_headers(
    secret: &SigningSecret,
    delivery: &DeliveryRef,
    attempt: u32,
    timestamp: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("x-comps-signature".into(), secret.comps_signature(body)),
        ("x-comps-timestamp".into(), timestamp.to_string()),
        (
            "webhook-signature".into(),
            secret.standard_signature(delivery.event_id.as_str(), timestamp, body),
        ),
    ];
    headers.extend(derived_headers(delivery, attempt, &timestamp.to_string()));
    headers
}

/// The headers of an attempt that follow from its delivery, number and `x-comps-timestamp`
/// (all it sends but the signatures and the timestamp itself; the client adds
/// `User-Agent`): the log need not store them.
pub fn derived_headers(
    delivery: &DeliveryRef,
    attempt: u32,
    timestamp: &str,
) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-comps-event".into(), delivery.event_type.clone()),
        ("x-comps-event-id".into(), delivery.event_id.to_string()),
        ("x-comps-delivery".into(), delivery.delivery_id.to_string()),
        ("x-comps-attempt".into(), attempt.to_string()),
        ("webhook-id".into(), delivery.event_id.to_string()),
        ("webhook-timestamp".into(), timestamp.to_owned()),
    ]
}

/// What the log keeps of a request: its URL and every header sent, the client's
/// `User-Agent` included.
pub fn recorded_request(url: &str, headers: &[(String, String)]) -> RecordedRequest {
    let mut headers: std::collections::BTreeMap<String, String> = headers.iter().cloned().collect();
    headers.insert("user-agent".into(), USER_AGENT.into());
    RecordedRequest {
        url: url.to_owned(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{NewWebhook, StoredSecret};

    const RETENTION: Duration = Duration::from_secs(86_400);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_748_400 + secs)
    }

    fn delivery() -> DeliveryRef {
        DeliveryRef {
            delivery_id: "dlv_1".into(),
            webhook_id: "wh_1".into(),
            event_id: "evt_1".into(),
            event_type: "order.completed".into(),
            resource_id: Some("ord_42".into()),
            manual: false,
        }
    }

    fn line(number: u32, state: DeliveryState, next: Option<SystemTime>) -> AttemptRecord {
        let mut line = AttemptRecord::line(&delivery(), number, at(0), RETENTION);
        line.delivery_state = state;
        line.next_attempt_at = next.map(Timestamp::from);
        line
    }

    fn webhook(status: WebhookStatus) -> WebhookRecord {
        let new = NewWebhook {
            name: "CRM".into(),
            url: "https://crm.example.com/hook".into(),
            events: vec!["order.completed".into()],
            active: status == WebhookStatus::Active,
        };
        let secret = StoredSecret {
            ciphertext: String::new(),
            hint: String::new(),
        };
        WebhookRecord::created("wh_1".into(), new, secret, Timestamp::from(at(0)))
    }

    #[test]
    fn an_attempt_not_sent_counts_as_one_that_got_no_answer() {
        let schedule = RetrySchedule::default();
        let held = not_sent_line(
            &delivery(),
            2,
            at(0),
            RETENTION,
            "not sent: open".into(),
            &schedule,
            1.0,
        );
        assert_eq!(held.attempt, 2);
        assert_eq!(held.outcome, AttemptOutcome::Failed);
        assert_eq!(held.error.as_deref(), Some("not sent: open"));
        assert_eq!(
            (
                held.request.clone(),
                held.response.clone(),
                held.response_status
            ),
            (None, None, None)
        );
        assert_eq!(held.delivery_state, DeliveryState::Retrying);
        assert_eq!(held.next_attempt_at, Some(Timestamp::from(at(120))));
        let last = not_sent_line(
            &delivery(),
            6,
            at(0),
            RETENTION,
            "not sent: open".into(),
            &schedule,
            1.0,
        );
        assert_eq!(last.delivery_state, DeliveryState::PermanentlyFailed);
        assert_eq!(
            failure_reason(&last, &schedule),
            FailureReason::RetriesExhausted
        );
    }

    fn status(status: u16, retry_after: Option<u64>) -> AttemptResult {
        AttemptResult::Status {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn no_attempts_is_pending_and_attempt_one_is_due() {
        let progress = Progress::of(&[]);
        assert_eq!(progress.state(), DeliveryState::Pending);
        assert!(progress.latest().is_none());
        assert!(progress.final_line().is_none());
        assert_eq!(progress.next_attempt_number(), 1);
        assert_eq!(progress.next_attempt_at(), None);
        assert_eq!(progress.turn(at(0)), Turn::Due(1));
    }

    #[test]
    fn the_state_is_the_latest_attempts_whatever_the_order() {
        let attempts = [
            line(2, DeliveryState::Retrying, Some(at(120))),
            line(3, DeliveryState::Succeeded, None),
            line(1, DeliveryState::Retrying, Some(at(60))),
        ];
        let progress = Progress::of(&attempts);
        assert_eq!(progress.latest().map(|a| a.attempt), Some(3));
        assert_eq!(progress.state(), DeliveryState::Succeeded);
        assert_eq!(progress.next_attempt_number(), 4);
        assert_eq!(
            progress.next_attempt_at(),
            None,
            "only a retrying delivery has one"
        );
    }

    #[test]
    fn a_final_state_is_final() {
        for state in [
            DeliveryState::Succeeded,
            DeliveryState::PermanentlyFailed,
            DeliveryState::Cancelled,
        ] {
            // Even a stray next_attempt_at in the future does not bring it back.
            let attempts = [line(2, state, Some(at(600)))];
            let progress = Progress::of(&attempts);
            assert_eq!(
                progress.final_line().map(|a| a.attempt),
                Some(2),
                "{state:?}"
            );
            assert_eq!(progress.turn(at(0)), Turn::Over(&attempts[0]), "{state:?}");
            assert_eq!(progress.next_attempt_at(), None, "{state:?}");
        }
        for state in [DeliveryState::Pending, DeliveryState::Retrying] {
            let attempts = [line(1, state, None)];
            assert!(Progress::of(&attempts).final_line().is_none(), "{state:?}");
        }
    }

    #[test]
    fn an_early_message_waits_for_the_rest() {
        let attempts = [line(1, DeliveryState::Retrying, Some(at(60)))];
        let progress = Progress::of(&attempts);
        assert_eq!(
            progress.next_attempt_at().map(|t| t.to_string()).as_deref(),
            Some("2026-11-27T03:01:00.000Z")
        );
        assert_eq!(progress.turn(at(0)), Turn::Early(Duration::from_secs(60)));
        assert_eq!(progress.turn(at(59)), Turn::Early(Duration::from_secs(1)));
        assert_eq!(progress.turn(at(60)), Turn::Due(2));
        assert_eq!(progress.turn(at(3600)), Turn::Due(2), "late is due");
    }

    #[test]
    fn a_message_within_the_tolerance_is_due() {
        let due = at(60);
        let attempts = [line(1, DeliveryState::Retrying, Some(due))];
        let progress = Progress::of(&attempts);
        assert_eq!(progress.turn(due - EARLY_TOLERANCE), Turn::Due(2));
        let just_over = EARLY_TOLERANCE + Duration::from_millis(1);
        assert_eq!(progress.turn(due - just_over), Turn::Early(just_over));
        assert_eq!(wait_until_due(&attempts[0], due - EARLY_TOLERANCE), None);
    }

    #[test]
    fn an_unreadable_due_time_does_not_hold_a_delivery_back() {
        let retrying = line(1, DeliveryState::Retrying, None);
        assert_eq!(wait_until_due(&retrying, at(0)), None);
        // A stored line whose due time is not a timestamp reads as having none.
        let mut stored =
            serde_json::to_value(line(1, DeliveryState::Retrying, Some(at(60)))).expect("json");
        stored["next_attempt_at"] = "tomorrow".into();
        let unreadable: AttemptRecord = serde_json::from_value(stored).expect("readable line");
        assert_eq!(unreadable.next_attempt_at, None);
        assert_eq!(Progress::of(&[unreadable]).turn(at(0)), Turn::Due(2));
    }

    #[test]
    fn the_internal_error_wait_is_the_schedules_first_wait() {
        assert_eq!(
            internal_error_wait(&RetrySchedule::default()),
            Duration::from_secs(60)
        );
        let custom = RetrySchedule::parse("5,10").unwrap();
        assert_eq!(internal_error_wait(&custom), Duration::from_secs(5));
        let immediate = RetrySchedule::parse("0").unwrap();
        assert_eq!(internal_error_wait(&immediate), Duration::ZERO);
    }

    /// Attempt `number`'s line once its `result`, answered at `answered_at`, is recorded.
    fn recorded(
        schedule: &RetrySchedule,
        number: u32,
        result: &AttemptResult,
        jitter: f64,
        answered_at: SystemTime,
    ) -> AttemptRecord {
        let mut recorded = line(number, DeliveryState::Pending, None);
        schedule
            .next_step(number, result, jitter)
            .record(&mut recorded, answered_at);
        recorded
    }

    fn due(secs: u64) -> Option<Timestamp> {
        Some(Timestamp::from(at(secs)))
    }

    #[test]
    fn a_success_ends_the_delivery() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            schedule.next_step(3, &status(204, None), 1.0),
            NextStep::Succeeded
        );
        let line = recorded(&schedule, 3, &status(204, None), 1.0, at(0));
        assert_eq!(
            (line.outcome, line.delivery_state, line.next_attempt_at),
            (AttemptOutcome::Succeeded, DeliveryState::Succeeded, None)
        );
    }

    #[test]
    fn a_retryable_failure_retries_after_the_schedules_wait() {
        let schedule = RetrySchedule::default();
        for (number, wait) in [(1, 60), (2, 120), (5, 900)] {
            for result in [
                status(500, None),
                status(408, None),
                AttemptResult::TransportError,
            ] {
                let line = recorded(&schedule, number, &result, 1.0, at(10));
                assert_eq!(line.outcome, AttemptOutcome::Failed);
                assert_eq!(line.delivery_state, DeliveryState::Retrying);
                assert_eq!(line.next_attempt_at, due(10 + wait), "{number} {result:?}");
            }
        }
    }

    #[test]
    fn the_last_attempt_of_the_schedule_fails_for_good() {
        let schedule = RetrySchedule::default();
        let line = recorded(&schedule, 6, &status(503, Some(10)), 1.0, at(0));
        assert_eq!(line.outcome, AttemptOutcome::Failed);
        assert_eq!(line.delivery_state, DeliveryState::PermanentlyFailed);
        assert_eq!(line.next_attempt_at, None);
        let mut last = line;
        assert_eq!(
            failure_reason(&last, &schedule),
            FailureReason::RetriesExhausted
        );
        last.attempt = 7; // e.g. the schedule was shortened meanwhile
        assert_eq!(
            failure_reason(&last, &schedule),
            FailureReason::RetriesExhausted
        );
    }

    #[test]
    fn an_answer_not_retried_fails_for_good_at_once() {
        let schedule = RetrySchedule::default();
        for result in [status(404, None), status(301, None), AttemptResult::Refused] {
            let line = recorded(&schedule, 1, &result, 1.0, at(0));
            assert_eq!(
                line.delivery_state,
                DeliveryState::PermanentlyFailed,
                "{result:?}"
            );
            assert_eq!(line.next_attempt_at, None);
        }
        let first = line(1, DeliveryState::PermanentlyFailed, None);
        assert_eq!(
            failure_reason(&first, &schedule),
            FailureReason::NotRetryable
        );
    }

    #[test]
    fn retry_after_of_429_and_503_is_honoured_through_the_schedule() {
        let schedule = RetrySchedule::default();
        let later = recorded(&schedule, 1, &status(429, Some(300)), 1.0, at(0));
        assert_eq!(later.next_attempt_at, due(300));
        // Shorter than our own wait: ours stands.
        let sooner = recorded(&schedule, 1, &status(503, Some(10)), 1.0, at(0));
        assert_eq!(sooner.next_attempt_at, due(60));
        // Jitter applies to our wait.
        let jittered = recorded(&schedule, 1, &status(500, None), 1.1, at(0));
        assert_eq!(jittered.next_attempt_at, due(66));
    }

    #[test]
    fn the_step_is_written_into_the_line() {
        let mut line = line(1, DeliveryState::Pending, None);
        NextStep::RetryIn(Duration::from_secs(60)).record(&mut line, at(0));
        assert_eq!(line.outcome, AttemptOutcome::Failed);
        assert_eq!(line.delivery_state, DeliveryState::Retrying);
        assert_eq!(
            line.next_attempt_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-27T03:01:00.000Z")
        );
        NextStep::Succeeded.record(&mut line, at(0));
        assert_eq!(line.outcome, AttemptOutcome::Succeeded);
        assert_eq!(line.delivery_state, DeliveryState::Succeeded);
        assert_eq!(line.next_attempt_at, None);
        for step in [NextStep::PermanentlyFailed, NextStep::Cancelled] {
            NextStep::RetryIn(Duration::from_secs(60)).record(&mut line, at(0));
            step.record(&mut line, at(0));
            assert_eq!(line.outcome, AttemptOutcome::Failed, "{step:?}");
            assert_eq!(line.delivery_state, step.state());
            assert_eq!(line.next_attempt_at, None, "{step:?}");
        }
    }

    #[test]
    fn a_line_tells_the_step_it_recorded() {
        for step in [
            NextStep::Succeeded,
            NextStep::PermanentlyFailed,
            NextStep::Cancelled,
        ] {
            let mut ended = line(2, DeliveryState::Pending, None);
            step.record(&mut ended, at(0));
            assert!(step.is_final());
            assert_eq!(NextStep::of_line(&ended, at(3600)), step);
        }
        // Retrying: what is left of the wait, none once within the tolerance or late.
        let mut retrying = line(2, DeliveryState::Pending, None);
        NextStep::RetryIn(Duration::from_secs(120)).record(&mut retrying, at(0));
        assert!(!NextStep::RetryIn(Duration::ZERO).is_final());
        assert_eq!(
            NextStep::of_line(&retrying, at(20)),
            NextStep::RetryIn(Duration::from_secs(100))
        );
        assert_eq!(
            NextStep::of_line(&retrying, at(120) - EARLY_TOLERANCE),
            NextStep::RetryIn(Duration::ZERO)
        );
        assert_eq!(
            NextStep::of_line(&retrying, at(500)),
            NextStep::RetryIn(Duration::ZERO)
        );
    }

    #[test]
    fn a_deleted_or_paused_webhook_cancels_the_delivery() {
        assert_eq!(target(None), Target::Cancel("cancelled: webhook deleted"));
        let paused = webhook(WebhookStatus::Paused);
        assert_eq!(
            target(Some(&paused)),
            Target::Cancel("cancelled: webhook paused")
        );
        let active = webhook(WebhookStatus::Active);
        assert_eq!(target(Some(&active)), Target::Send(&active));

        let cancelled = cancelled_line(
            &delivery(),
            2,
            at(0),
            RETENTION,
            "cancelled: webhook paused",
        );
        assert_eq!(cancelled.attempt, 2);
        assert_eq!(cancelled.delivery_state, DeliveryState::Cancelled);
        assert_eq!(cancelled.outcome, AttemptOutcome::Failed);
        assert_eq!(
            cancelled.error.as_deref(),
            Some("cancelled: webhook paused")
        );
        assert!(cancelled.request.is_none(), "no request is made");
        assert!(cancelled.delivery_state.is_final());
    }

    #[test]
    fn a_dead_letter_ends_the_delivery_as_an_internal_error() {
        let attempts = [line(2, DeliveryState::Retrying, Some(at(120)))];
        let number = Progress::of(&attempts).next_attempt_number();
        let line = internal_error_line(&delivery(), number, at(5), RETENTION);
        assert_eq!(line.attempt, 3);
        assert_eq!(line.delivery_state, DeliveryState::PermanentlyFailed);
        assert!(line
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("internal_error:")));
        assert_eq!(line.at.to_string(), "2026-11-27T03:00:05.000Z");
        assert!(line.request.is_none());
    }

    #[test]
    fn wire_headers_match_the_standard_webhooks_vector() {
        // The vector published with the Standard Webhooks reference libraries: the message
        // id is our event id. The X-Comps-Signature was computed with Python's hmac module.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let mut message = delivery();
        message.event_id = "msg_p5jXN8AQM9LWM0D4loKWxJek".into();
        let headers = wire_headers(&secret, &message, 3, 1614265330, br#"{"test": 2432232314}"#);
        let mut expected = [
            ("content-type", "application/json"),
            (
                "x-comps-signature",
                "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c",
            ),
            ("x-comps-timestamp", "1614265330"),
            ("x-comps-event", "order.completed"),
            ("x-comps-event-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("x-comps-delivery", "dlv_1"),
            ("x-comps-attempt", "3"),
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ];
        let mut actual: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        // Every header once, whatever the order they are sent in.
        actual.sort_unstable();
        expected.sort_unstable();
        assert_eq!(actual, expected);
    }

    #[test]
    fn the_recorded_request_adds_the_user_agent() {
        let headers = vec![
            ("x-comps-attempt".to_owned(), "1".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        let recorded = recorded_request("https://crm.example.com/hook", &headers);
        assert_eq!(recorded.url, "https://crm.example.com/hook");
        assert_eq!(recorded.headers.len(), 3);
        assert_eq!(recorded.headers["x-comps-attempt"], "1");
        assert_eq!(recorded.headers["user-agent"], USER_AGENT);
        assert!(USER_AGENT.starts_with("comps-webhooks/"));
    }
}
