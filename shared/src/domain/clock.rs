//! Timestamps in the one format the API and payloads use: RFC 3339, UTC.

use std::time::{Duration, SystemTime};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-27T03:00:00.123Z`.
/// Fixed width, so these strings sort in time order.
pub fn rfc3339_millis(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
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

/// Parses any RFC 3339 timestamp.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(SystemTime::from)
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
        assert_eq!(parse_rfc3339("2026-11-27T03:00:00.123Z"), Some(at));
        assert_eq!(
            parse_rfc3339("2026-11-27T04:00:00.123+01:00"),
            Some(at),
            "offsets are understood"
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(unix_seconds(at), 1_795_748_400);
        assert_eq!(expiry(at, Duration::from_secs(60)), 1_795_748_460);
    }
}
