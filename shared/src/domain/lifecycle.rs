//! The life of a delivery (SPEC §5) as pure rules: its state from its log, whose turn it is,
//! what an attempt's answer makes of it, and the signed request it sends. No I/O and no clock
//! reads: callers pass the time in. `deliver`, the alerter and the admin API all go by these.

use std::time::{Duration, SystemTime};

use crate::domain::alerts::FailureReason;
use crate::domain::clock::Timestamp;
use crate::domain::model::{
    AttemptOutcome, AttemptRecord, DeliveryRef, DeliveryState, RecordedRequest, WebhookRecord,
    WebhookStatus,
};
use crate::domain::retry::{AttemptResult, NextStep, RetrySchedule};
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

/// What an attempt's answer makes of its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterAttempt {
    pub outcome: AttemptOutcome,
    pub state: DeliveryState,
    /// When the next attempt is due; only while retrying.
    pub next_attempt_at: Option<SystemTime>,
}

impl AfterAttempt {
    /// Attempt `number` ended with `result`, known at `answered_at`. The retry policy is
    /// `schedule.next_step` (Retry-After included); `jitter` as it takes it.
    pub fn decide(
        schedule: &RetrySchedule,
        number: u32,
        result: &AttemptResult,
        jitter: f64,
        answered_at: SystemTime,
    ) -> Self {
        let step = schedule.next_step(number, result, jitter);
        let outcome = if step == NextStep::Succeeded {
            AttemptOutcome::Succeeded
        } else {
            AttemptOutcome::Failed
        };
        let (state, next_attempt_at) = match step {
            NextStep::Succeeded => (DeliveryState::Succeeded, None),
            NextStep::PermanentlyFailed => (DeliveryState::PermanentlyFailed, None),
            NextStep::RetryIn(wait) => (DeliveryState::Retrying, Some(answered_at + wait)),
        };
        AfterAttempt {
            outcome,
            state,
            next_attempt_at,
        }
    }

    /// Writes the decision into the attempt's log line.
    pub fn record(&self, line: &mut AttemptRecord) {
        line.outcome = self.outcome;
        line.delivery_state = self.state;
        line.next_attempt_at = self.next_attempt_at.map(Timestamp::from);
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
    line.delivery_state = DeliveryState::Cancelled;
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
    AfterAttempt::decide(
        schedule,
        number,
        &AttemptResult::TransportError,
        jitter,
        now,
    )
    .record(&mut line);
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
    line.delivery_state = DeliveryState::PermanentlyFailed;
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
        WebhookRecord {
            id: "wh_1".into(),
            name: "CRM".into(),
            url: "https://crm.example.com/hook".into(),
            events: vec!["order.completed".into()],
            status,
            secret_ciphertext: String::new(),
            secret_hint: String::new(),
            created_at: Timestamp::from(at(0)),
            updated_at: Timestamp::from(at(0)),
            revision: 0,
            failures_in_row: 0,
            circuit_opened_at: None,
            probe_at: None,
            last_failure: None,
            awaiting_answer_since: None,
        }
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

    #[test]
    fn a_success_ends_the_delivery() {
        let after =
            AfterAttempt::decide(&RetrySchedule::default(), 3, &status(204, None), 1.0, at(0));
        assert_eq!(
            after,
            AfterAttempt {
                outcome: AttemptOutcome::Succeeded,
                state: DeliveryState::Succeeded,
                next_attempt_at: None,
            }
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
                let after = AfterAttempt::decide(&schedule, number, &result, 1.0, at(10));
                assert_eq!(after.outcome, AttemptOutcome::Failed);
                assert_eq!(after.state, DeliveryState::Retrying);
                assert_eq!(
                    after.next_attempt_at,
                    Some(at(10 + wait)),
                    "{number} {result:?}"
                );
            }
        }
    }

    #[test]
    fn the_last_attempt_of_the_schedule_fails_for_good() {
        let schedule = RetrySchedule::default();
        let after = AfterAttempt::decide(&schedule, 6, &status(503, Some(10)), 1.0, at(0));
        assert_eq!(after.outcome, AttemptOutcome::Failed);
        assert_eq!(after.state, DeliveryState::PermanentlyFailed);
        assert_eq!(after.next_attempt_at, None);
        let mut last = line(6, DeliveryState::PermanentlyFailed, None);
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
            let after = AfterAttempt::decide(&schedule, 1, &result, 1.0, at(0));
            assert_eq!(after.state, DeliveryState::PermanentlyFailed, "{result:?}");
            assert_eq!(after.next_attempt_at, None);
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
        let later = AfterAttempt::decide(&schedule, 1, &status(429, Some(300)), 1.0, at(0));
        assert_eq!(later.next_attempt_at, Some(at(300)));
        // Shorter than our own wait: ours stands.
        let sooner = AfterAttempt::decide(&schedule, 1, &status(503, Some(10)), 1.0, at(0));
        assert_eq!(sooner.next_attempt_at, Some(at(60)));
        // Jitter applies to our wait.
        let jittered = AfterAttempt::decide(&schedule, 1, &status(500, None), 1.1, at(0));
        assert_eq!(jittered.next_attempt_at, Some(at(66)));
    }

    #[test]
    fn the_decision_is_written_into_the_line() {
        let mut line = line(1, DeliveryState::Pending, None);
        AfterAttempt::decide(&RetrySchedule::default(), 1, &status(500, None), 1.0, at(0))
            .record(&mut line);
        assert_eq!(line.outcome, AttemptOutcome::Failed);
        assert_eq!(line.delivery_state, DeliveryState::Retrying);
        assert_eq!(
            line.next_attempt_at.map(|t| t.to_string()).as_deref(),
            Some("2026-11-27T03:01:00.000Z")
        );
        AfterAttempt::decide(&RetrySchedule::default(), 2, &status(200, None), 1.0, at(0))
            .record(&mut line);
        assert_eq!(line.outcome, AttemptOutcome::Succeeded);
        assert_eq!(line.delivery_state, DeliveryState::Succeeded);
        assert_eq!(line.next_attempt_at, None);
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
