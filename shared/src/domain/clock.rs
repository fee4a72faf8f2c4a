//! Timestamps in the one format the API and payloads use: RFC 3339, UTC.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// An instant of the records (`at`, `created_at`, `next_attempt_at` …), to the millisecond.
/// Stored and sent as [`rfc3339_millis`] text: fixed width, so the text sorts as the instant
/// does (the sort keys of ended log lines rely on it). Read from any RFC 3339 text.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(SystemTime);

impl Timestamp {
    pub fn now() -> Self {
        Timestamp::from(SystemTime::now())
    }

    /// Any RFC 3339 text within the years 0000-9999 in UTC, to the millisecond.
    pub fn parse(text: &str) -> Option<Self> {
        parse_rfc3339(text).ok().map(Timestamp::from)
    }

    pub fn system_time(self) -> SystemTime {
        self.0
    }
}

impl From<SystemTime> for Timestamp {
    /// Drops what is finer than a millisecond, so a timestamp reads back equal to itself.
    fn from(at: SystemTime) -> Self {
        let truncate = |d: Duration| Duration::from_millis(d.as_millis() as u64);
        Timestamp(match at.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => SystemTime::UNIX_EPOCH + truncate(after),
            Err(e) => {
                let before = e.duration();
                let millis = truncate(before);
                let rounded = if millis < before {
                    millis + Duration::from_millis(1)
                } else {
                    millis
                };
                SystemTime::UNIX_EPOCH - rounded
            }
        })
    }
}

impl From<Timestamp> for SystemTime {
    fn from(at: Timestamp) -> Self {
        at.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&rfc3339_millis(self.0))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!("{text:?} is not an RFC 3339 timestamp"))
        })
    }
}

/// For an optional timestamp that must not make its whole record unreadable: text that is
/// not RFC 3339 reads as none (`#[serde(default, deserialize_with = "clock::lenient")]`).
pub fn lenient<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Timestamp>, D::Error> {
    let text = Option::<std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(text.as_deref().and_then(Timestamp::parse))
}

/// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-27T03:00:00.123Z`.
/// Fixed width, so these strings sort in time order.
pub fn rfc3339_millis(at: SystemTime) -> String {
    let at = utc(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// RFC 3339 in UTC with whole seconds, e.g. `2026-11-27T03:00:00Z` (payload `created_at`).
pub fn rfc3339_seconds(at: SystemTime) -> String {
    let mut text = rfc3339_millis(at);
    text.replace_range(19..23, "");
    text
}

/// Why a timestamp's text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    #[error("is not an RFC 3339 timestamp (e.g. 2026-11-27T03:00:00Z)")]
    NotRfc3339,
    /// Valid text whose instant, in UTC, falls outside what RFC 3339 can write (e.g.
    /// `9999-12-31T23:59:59-23:59` is in the year 10000).
    #[error("is outside the years 0000 to 9999 once taken to UTC")]
    OutOfRange,
}

/// Parses any RFC 3339 timestamp whose instant can be written back in UTC.
pub fn parse_rfc3339(text: &str) -> Result<SystemTime, TimestampError> {
    let at = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| TimestampError::NotRfc3339)?;
    at.checked_to_offset(UtcOffset::UTC)
        .filter(|utc| (0..=9999).contains(&utc.year()))
        .ok_or(TimestampError::OutOfRange)?;
    Ok(SystemTime::from(at))
}

/// `at` in UTC. No instant outside the years 0000-9999 is parsed, but one could be computed:
/// it is held at the nearest end of that range rather than panic (as `time`'s own
/// conversion does).
fn utc(at: SystemTime) -> OffsetDateTime {
    let (offset, later) = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => (time::Duration::try_from(after).ok(), true),
        Err(before) => (
            time::Duration::try_from(before.duration()).ok().map(|d| -d),
            false,
        ),
    };
    let first = Date::from_calendar_date(0, Month::January, 1).unwrap_or(Date::MIN);
    offset
        .and_then(|d| OffsetDateTime::UNIX_EPOCH.checked_add(d))
        .filter(|utc| (0..=9999).contains(&utc.year()))
        .unwrap_or_else(|| match later {
            true => PrimitiveDateTime::new(Date::MAX, Time::MAX).assume_utc(),
            false => PrimitiveDateTime::new(first, Time::MIDNIGHT).assume_utc(),
        })
}

pub fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Unix seconds `retention` from `at`: the value of a DynamoDB TTL attribute.
pub fn expiry(at: SystemTime, retention: Duration) -> i64 {
    unix_seconds(at + retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_748_400_123);
        assert_eq!(rfc3339_millis(at), "2026-11-27T03:00:00.123Z");
        assert_eq!(rfc3339_seconds(at), "2026-11-27T03:00:00Z");
        assert_eq!(parse_rfc3339("2026-11-27T03:00:00.123Z"), Ok(at));
        assert_eq!(
            parse_rfc3339("2026-11-27T04:00:00.123+01:00"),
            Ok(at),
            "offsets are understood"
        );
        assert_eq!(parse_rfc3339("yesterday"), Err(TimestampError::NotRfc3339));
        assert_eq!(unix_seconds(at), 1_795_748_400);
        assert_eq!(expiry(at, Duration::from_secs(60)), 1_795_748_460);
    }

    #[test]
    fn instants_rfc_3339_cannot_write_are_refused_and_never_panic() {
        for beyond in ["9999-12-31T23:59:59-23:59", "0000-01-01T00:00:00+00:01"] {
            assert_eq!(
                parse_rfc3339(beyond),
                Err(TimestampError::OutOfRange),
                "{beyond}"
            );
            assert_eq!(Timestamp::parse(beyond), None);
        }
        for edge in ["9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z"] {
            let at = parse_rfc3339(edge).unwrap();
            assert_eq!(rfc3339_millis(at).replace(".000Z", "Z"), edge);
        }
        // Computed instants past either end are written at that end.
        let far = Duration::from_secs(400_000 * 365 * 86_400);
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH + far),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339_millis(SystemTime::UNIX_EPOCH - far),
            "0000-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn timestamps_are_fixed_width_text() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_795_748_400_123_456);
        let stamp = Timestamp::from(at);
        assert_eq!(stamp.to_string(), "2026-11-27T03:00:00.123Z");
        assert_eq!(format!("{stamp:?}"), r#""2026-11-27T03:00:00.123Z""#);
        let json = r#""2026-11-27T03:00:00.123Z""#;
        assert_eq!(serde_json::to_string(&stamp).unwrap(), json);
        let back: Timestamp = serde_json::from_str(json).unwrap();
        assert_eq!(back, stamp);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
        assert_eq!(
            SystemTime::from(stamp),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_748_400_123)
        );
        let whole = Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_748_400));
        assert_eq!(whole.to_string(), "2026-11-27T03:00:00.000Z");
        assert_eq!(whole.to_string().len(), stamp.to_string().len());
        assert_eq!(
            Timestamp::parse("2026-11-27T04:00:00.123+01:00"),
            Some(stamp),
            "other offsets are read"
        );
        assert!(serde_json::from_str::<Timestamp>(r#""tomorrow""#).is_err());
        let item =
            serde_dynamo::to_attribute_value::<_, aws_sdk_dynamodb::types::AttributeValue>(stamp)
                .unwrap();
        assert_eq!(
            item,
            aws_sdk_dynamodb::types::AttributeValue::S("2026-11-27T03:00:00.123Z".into())
        );
        let back: Timestamp = serde_dynamo::from_attribute_value(item).unwrap();
        assert_eq!(back, stamp);
    }

    #[test]
    fn timestamps_order_as_their_text() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_748_400);
        let stamps: Vec<Timestamp> = [0, 1, 999, 1_000, 59_999, 86_400_000, 31_536_000_000]
            .into_iter()
            .map(|ms| Timestamp::from(base + Duration::from_millis(ms)))
            .collect();
        for pair in stamps.windows(2) {
            assert!(pair[0] < pair[1]);
            assert!(pair[0].to_string() < pair[1].to_string());
        }
        let early = Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_secs(86_400));
        assert!(early < stamps[0]);
        assert!(early.to_string() < stamps[0].to_string());
    }
}
