//! The retry policy of SPEC §5: which answers are retried, and when the next attempt runs.
//! It takes what an attempt got ([`AttemptResult`]) and says the delivery's
//! [`NextStep`] (the vocabulary is in [`crate::domain::lifecycle`]).

use std::time::{Duration, SystemTime};

use rand::Rng;

use crate::domain::lifecycle::NextStep;

/// Waits between attempts when `WEBHOOKS_RETRY_DELAYS` is not set: 6 attempts over ~30 minutes.
pub const DEFAULT_DELAYS_SECS: [u64; 5] = [60, 120, 240, 480, 900];
/// A receiver's `Retry-After` never pushes an attempt further out than this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);
/// SQS refuses visibility timeouts above 12 hours.
const MAX_DELAY: Duration = Duration::from_secs(43_200);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule {
            delays: DEFAULT_DELAYS_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
        }
    }
}

impl RetrySchedule {
    /// Parses comma-separated seconds, e.g. `"60,120,240,480,900"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let delays = text
            .split(',')
            .map(|part| {
                part.trim()
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs)
                    .filter(|d| *d <= MAX_DELAY)
                    .ok_or_else(|| {
                        format!("{part:?} is not a number of seconds between 0 and 43200")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.len() > 20 {
            return Err("at most 20 retry delays are allowed".into());
        }
        Ok(RetrySchedule { delays })
    }

    /// The first attempt plus one per configured wait.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32 + 1
    }

    /// The nominal wait after attempt `attempt` (1-based) failed, or `None` when it was the last.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }
}

/// What one attempt's request got, as far as the retry policy cares: the input of
/// [`RetrySchedule::next_step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered with this status code.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: timeout, connection, DNS or TLS error.
    TransportError,
    /// The target is not allowed (e.g. it resolves to a private address); retrying won't help.
    Refused,
}

/// The step `result` takes straight to an end: a success (2xx), or an answer not retried
/// (anything but 408, 429 and 5xx; a refused target). `None` when it is retried: 408, 429,
/// 5xx and no answer.
fn final_step(result: &AttemptResult) -> Option<NextStep> {
    match result {
        AttemptResult::Status { status, .. } => match status {
            200..=299 => Some(NextStep::Succeeded),
            408 | 429 | 500..=599 => None,
            _ => Some(NextStep::PermanentlyFailed),
        },
        AttemptResult::TransportError => None,
        AttemptResult::Refused => Some(NextStep::PermanentlyFailed),
    }
}

impl RetrySchedule {
    /// The step attempt number `attempt` leads to, having ended with `result`: the retry
    /// policy. `jitter` is a factor in [0.9, 1.1] applied to the nominal wait.
    pub fn next_step(&self, attempt: u32, result: &AttemptResult, jitter: f64) -> NextStep {
        if let Some(step) = final_step(result) {
            return step;
        }
        let Some(nominal) = self.delay_after(attempt) else {
            return NextStep::PermanentlyFailed;
        };
        let mut wait = nominal.mul_f64(jitter.clamp(0.9, 1.1));
        if let AttemptResult::Status {
            status: 429 | 503,
            retry_after: Some(asked),
        } = result
        {
            // Honoured only when longer than our own wait, and capped.
            wait = wait.max((*asked).min(MAX_RETRY_AFTER));
        }
        NextStep::RetryIn(wait.min(MAX_DELAY))
    }
}

/// A random jitter factor in [0.9, 1.1] (±10 %).
pub fn random_jitter() -> f64 {
    rand::thread_rng().gen_range(0.9..=1.1)
}

/// Parses a `Retry-After` value: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> AttemptResult {
        AttemptResult::Status {
            status,
            retry_after: None,
        }
    }

    #[test]
    fn what_is_retried_follows_the_guide() {
        for s in [200, 201, 204, 299] {
            assert_eq!(final_step(&status(s)), Some(NextStep::Succeeded), "{s}");
        }
        for s in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(final_step(&status(s)), None, "{s}");
        }
        for s in [300, 301, 302, 304, 400, 401, 403, 404, 410, 422] {
            assert_eq!(
                final_step(&status(s)),
                Some(NextStep::PermanentlyFailed),
                "{s}"
            );
        }
        assert_eq!(final_step(&AttemptResult::TransportError), None);
        assert_eq!(
            final_step(&AttemptResult::Refused),
            Some(NextStep::PermanentlyFailed)
        );
    }

    #[test]
    fn default_schedule_is_six_attempts_over_about_thirty_minutes() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.max_attempts(), 6);
        let total: u64 = (1..6)
            .map(|a| schedule.delay_after(a).unwrap().as_secs())
            .sum();
        assert_eq!(total, 1800);
        assert_eq!(schedule.delay_after(6), None);
    }

    #[test]
    fn waits_grow_then_run_out() {
        let schedule = RetrySchedule::default();
        let mut waits = vec![];
        for attempt in 1..=6 {
            match schedule.next_step(attempt, &status(500), 1.0) {
                NextStep::RetryIn(d) => waits.push(d.as_secs()),
                NextStep::PermanentlyFailed => assert_eq!(attempt, 6),
                other => panic!("500 is retried: {other:?}"),
            }
        }
        assert_eq!(waits, vec![60, 120, 240, 480, 900]);
        assert_eq!(
            schedule.next_step(1, &status(400), 1.0),
            NextStep::PermanentlyFailed
        );
        assert_eq!(
            schedule.next_step(6, &status(200), 1.0),
            NextStep::Succeeded
        );
    }

    #[test]
    fn jitter_is_bounded_to_ten_percent() {
        let schedule = RetrySchedule::default();
        for _ in 0..1000 {
            let j = random_jitter();
            assert!((0.9..=1.1).contains(&j));
            match schedule.next_step(1, &status(503), j) {
                NextStep::RetryIn(d) => assert!((54.0..=66.0).contains(&d.as_secs_f64())),
                other => panic!("unexpected {other:?}"),
            }
        }
        // Out-of-range factors are clamped, not trusted.
        assert_eq!(
            schedule.next_step(1, &status(503), 5.0),
            NextStep::RetryIn(Duration::from_secs(66))
        );
    }

    #[test]
    fn retry_after_is_honoured_when_longer_and_capped() {
        let schedule = RetrySchedule::default();
        let with = |s, secs| AttemptResult::Status {
            status: s,
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(
            schedule.next_step(1, &with(429, 300), 1.0),
            NextStep::RetryIn(Duration::from_secs(300))
        );
        assert_eq!(
            schedule.next_step(1, &with(503, 10), 1.0),
            NextStep::RetryIn(Duration::from_secs(60))
        );
        assert_eq!(
            schedule.next_step(1, &with(503, 99_999), 1.0),
            NextStep::RetryIn(MAX_RETRY_AFTER)
        );
        // Only 429 and 503 carry a meaningful Retry-After.
        assert_eq!(
            schedule.next_step(1, &with(500, 300), 1.0),
            NextStep::RetryIn(Duration::from_secs(60))
        );
    }

    #[test]
    fn parses_delays_and_retry_after() {
        let s = RetrySchedule::parse("1, 2,3").unwrap();
        assert_eq!(s.max_attempts(), 4);
        assert_eq!(s.delay_after(2), Some(Duration::from_secs(2)));
        assert!(RetrySchedule::parse("1,,2").is_err());
        assert!(RetrySchedule::parse("-1").is_err());
        assert!(RetrySchedule::parse("99999").is_err());

        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:37 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
