//! Identifiers. Generated ids are a prefix plus a ULID, so they sort by creation time.

use sha2::{Digest, Sha256};

pub fn new_webhook_id() -> String {
    format!("wh_{}", ulid::Ulid::new().to_string().to_lowercase())
}

pub fn new_event_id() -> String {
    format!("evt_{}", ulid::Ulid::new())
}

/// The id of the delivery of `event_id` to `webhook_id`: deterministic, so a retried fan-out
/// writes the same delivery again instead of a second one.
pub fn delivery_id(event_id: &str, webhook_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(event_id.as_bytes());
    hash.update([0]);
    hash.update(webhook_id.as_bytes());
    format!("dlv_{}", &hex::encode(hash.finalize())[..32])
}

/// A manual delivery (redelivery) is new each time it is asked for.
pub fn new_manual_delivery_id() -> String {
    format!("dlv_m{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// The delivery that `recover` makes for `delivery_id`: deterministic, so recovering the same
/// window twice sends each failed delivery once.
pub fn recovery_delivery_id(delivery_id: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"recover\0");
    hash.update(delivery_id.as_bytes());
    format!("dlv_r{}", &hex::encode(hash.finalize())[..31])
}

/// Attempt ids name the delivery and the attempt number: `dlv_….3`.
pub fn attempt_id(delivery_id: &str, attempt: u32) -> String {
    format!("{delivery_id}.{attempt}")
}

pub fn parse_attempt_id(id: &str) -> Option<(&str, u32)> {
    let (delivery, number) = id.rsplit_once('.')?;
    if !delivery.starts_with("dlv_") {
        return None;
    }
    let number = number.parse().ok().filter(|n| *n >= 1)?;
    Some((delivery, number))
}

/// Event ids the platform may choose: 1-128 characters of `[A-Za-z0-9_.:-]`.
pub fn is_valid_event_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids_are_deterministic_and_distinct() {
        let a = delivery_id("evt_1", "wh_1");
        assert_eq!(a, delivery_id("evt_1", "wh_1"));
        assert_ne!(a, delivery_id("evt_1", "wh_2"));
        assert_ne!(a, delivery_id("evt_1wh_", "1"));
        assert_eq!(a.len(), 36);
        let r = recovery_delivery_id(&a);
        assert_eq!(r, recovery_delivery_id(&a));
        assert_ne!(r, recovery_delivery_id(&recovery_delivery_id(&a)));
        assert_eq!(r.len(), 36);
    }

    #[test]
    fn attempt_ids_round_trip() {
        let id = attempt_id("dlv_abc", 3);
        assert_eq!(parse_attempt_id(&id), Some(("dlv_abc", 3)));
        assert_eq!(parse_attempt_id("dlv_abc.0"), None);
        assert_eq!(parse_attempt_id("dlv_abc"), None);
        assert_eq!(parse_attempt_id("x.1"), None);
        assert_eq!(parse_attempt_id("dlv_a.b"), None);
    }

    #[test]
    fn event_id_rules() {
        assert!(is_valid_event_id("order-123:paid_v1.2"));
        assert!(is_valid_event_id(&"a".repeat(128)));
        assert!(!is_valid_event_id(&"a".repeat(129)));
        assert!(!is_valid_event_id(""));
        assert!(!is_valid_event_id("has space"));
        assert!(!is_valid_event_id("slash/"));
        assert!(new_event_id().starts_with("evt_"));
        assert!(is_valid_event_id(&new_event_id()));
    }
}
