//! Identifiers. Generated ids are a prefix plus a ULID, so they sort by creation time; each
//! id type names its prefix (`WebhookId::PREFIX`), which makers and checkers use.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest webhook, delivery or attempt id a path may carry (the ids made here are about
/// 30 characters); a longer one cannot be ours.
pub const MAX_ID_CHARS: usize = 64;

/// A string id with a type of its own: stored and sent as the plain string.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        /// As the string: `{:?}` in messages and logs shows `"wh_…"`, as it did.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl $name {
            /// What the ids made here start with.
            pub const PREFIX: &'static str = $prefix;

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id! {
    /// A webhook's id: `wh_` and a lowercase ULID.
    WebhookId, "wh_"
}

string_id! {
    /// An event's id: chosen by the platform, or `evt_` and a ULID.
    EventId, "evt_"
}

string_id! {
    /// A delivery's id: `dlv_` and a lowercase ULID (older ones a hash).
    DeliveryId, "dlv_"
}

/// The ids as the API document shows them (`components.schemas`): a string of the id's form,
/// at most as long as a path id may be (`admin-api`'s `path_ids` refuses longer ones with a
/// 404 before any lookup).
#[cfg(feature = "openapi")]
mod schemas {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    use utoipa::openapi::RefOr;
    use utoipa::{PartialSchema, ToSchema};

    use super::{AttemptId, DeliveryId, EventId, WebhookId, MAX_ID_CHARS};

    macro_rules! id_schema {
        ($name:ident, $pattern:expr, $min:expr, $max:expr, $example:literal, $description:literal) => {
            impl PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some($min))
                        .max_length(Some($max))
                        .pattern(Some($pattern))
                        .description(Some($description))
                        .examples([$example])
                        .into()
                }
            }

            impl ToSchema for $name {
                fn name() -> Cow<'static, str> {
                    Cow::Borrowed(stringify!($name))
                }
            }
        };
    }

    id_schema!(
        WebhookId,
        "^wh_[0-9a-z]+$",
        4,
        MAX_ID_CHARS,
        "wh_01jd8x9k4m2n3p4q5r6s7t8v9w",
        "A webhook's id: `wh_` and a lowercase ULID."
    );
    id_schema!(
        DeliveryId,
        "^dlv_[0-9a-z]+$",
        5,
        MAX_ID_CHARS,
        "dlv_01jd8x9k4m2n3p4q5r6s7t8v9w",
        "A delivery's id: `dlv_` and a lowercase ULID."
    );
    id_schema!(
        AttemptId,
        "^dlv_[0-9a-z]+\\.[1-9][0-9]{0,9}$",
        7,
        MAX_ID_CHARS,
        "dlv_01jd8x9k4m2n3p4q5r6s7t8v9w.2",
        "An attempt's id: its delivery's id, `.` and its number from 1."
    );
    id_schema!(
        EventId,
        "^([A-Za-z0-9_.:-]{1,128}|test~[0-9A-Z]{26})$",
        1,
        128,
        "evt_01JD8X9K4M2N3P4Q5R6S7T8V9W",
        "An event's id: the platform's, or `evt_` and a ULID when it gave none; a test event's (`POST …/test-event`) is `test~` and a ULID, which no posted event can have."
    );
}

pub fn new_webhook_id() -> WebhookId {
    WebhookId(format!(
        "{}{}",
        WebhookId::PREFIX,
        ulid::Ulid::new().to_string().to_lowercase()
    ))
}

pub fn new_event_id() -> EventId {
    EventId(format!("{}{}", EventId::PREFIX, ulid::Ulid::new()))
}

/// `dlv_` and a lowercase ULID whose time is `made_at` and whose random part is drawn from
/// `seed`: the attempts table keys a webhook's log by delivery id, so ids made later sort
/// later and the log reads newest first.
fn time_ordered_delivery_id(made_at: SystemTime, seed: &[&[u8]]) -> DeliveryId {
    let mut hash = Sha256::new();
    for part in seed {
        hash.update(part);
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut random = [0u8; 16];
    random[6..].copy_from_slice(&digest[..10]); // a ULID's random part is 80 bits
    let millis = made_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .min((1 << 48) - 1) as u64; // a ULID's time is 48 bits
    let ulid = ulid::Ulid::from_parts(millis, u128::from_be_bytes(random));
    DeliveryId(format!(
        "{}{}",
        DeliveryId::PREFIX,
        ulid.to_string().to_lowercase()
    ))
}

/// The id of the delivery of `event_id` to `webhook_id`, made when the event was received:
/// deterministic, so a resent event makes the same delivery again instead of a second one.
pub fn delivery_id(
    event_id: &EventId,
    webhook_id: &WebhookId,
    received_at: SystemTime,
) -> DeliveryId {
    time_ordered_delivery_id(
        received_at,
        &[event_id.as_str().as_bytes(), webhook_id.as_str().as_bytes()],
    )
}

/// A manual delivery (redelivery) is new each time it is asked for.
pub fn new_manual_delivery_id() -> DeliveryId {
    DeliveryId(format!(
        "{}{}",
        DeliveryId::PREFIX,
        ulid::Ulid::new().to_string().to_lowercase()
    ))
}

/// The delivery that `recover` makes for `delivery_id`, whose last line was written at
/// `ended_at`: deterministic, so recovering the same window twice sends each failed delivery
/// once; it sorts in the log where the failure is.
pub fn recovery_delivery_id(delivery_id: &DeliveryId, ended_at: SystemTime) -> DeliveryId {
    time_ordered_delivery_id(ended_at, &[b"recover", delivery_id.as_str().as_bytes()])
}

/// An attempt's id: its delivery's id, [`AttemptId::SEPARATOR`] and its number from 1, e.g.
/// `dlv_01jd8x9k4m2n3p4q5r6s7t8v9w.3`. Written and read as that string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AttemptId {
    delivery_id: DeliveryId,
    number: u32,
}

/// Text that is not an attempt id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an attempt id is a delivery id ({prefix}…), {separator:?} and a number from 1", prefix = DeliveryId::PREFIX, separator = AttemptId::SEPARATOR)]
pub struct NotAnAttemptId;

impl AttemptId {
    /// Between the delivery id and the attempt number.
    pub const SEPARATOR: char = '.';

    pub fn new(delivery_id: DeliveryId, number: u32) -> Self {
        AttemptId {
            delivery_id,
            number,
        }
    }

    pub fn delivery_id(&self) -> &DeliveryId {
        &self.delivery_id
    }

    /// The attempt's number, from 1.
    pub fn number(&self) -> u32 {
        self.number
    }

    pub fn into_parts(self) -> (DeliveryId, u32) {
        (self.delivery_id, self.number)
    }
}

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.delivery_id, Self::SEPARATOR, self.number)
    }
}

/// As the string, like the other ids.
impl fmt::Debug for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.to_string(), f)
    }
}

impl FromStr for AttemptId {
    type Err = NotAnAttemptId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (delivery, number) = text.rsplit_once(Self::SEPARATOR).ok_or(NotAnAttemptId)?;
        if !delivery.starts_with(DeliveryId::PREFIX) {
            return Err(NotAnAttemptId);
        }
        let number = number
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or(NotAnAttemptId)?;
        Ok(AttemptId::new(DeliveryId::from(delivery), number))
    }
}

impl Serialize for AttemptId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AttemptId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
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
    fn a_new_webhook_id_fits_a_dynamodb_idempotency_token() {
        // The store sends it as TransactWriteItems' ClientRequestToken: 1 to 36 characters.
        let id = new_webhook_id().to_string();
        assert!(
            (1..=36).contains(&id.len()),
            "{id} is {} characters",
            id.len()
        );
    }

    #[test]
    fn delivery_ids_are_deterministic_distinct_and_sort_by_time() {
        let at = |ms: u64| SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        let id =
            |e: &str, w: &str, ms: u64| delivery_id(&EventId::from(e), &WebhookId::from(w), at(ms));
        let a = id("evt_1", "wh_1", 1_795_000_000_000);
        assert_eq!(a, id("evt_1", "wh_1", 1_795_000_000_000));
        assert_ne!(a, id("evt_1", "wh_2", 1_795_000_000_000));
        assert_ne!(a, id("evt_1wh_", "1", 1_795_000_000_000));
        assert_eq!(a.as_str().len(), 30);
        assert!(a.as_str().starts_with("dlv_"));
        // Made a millisecond later sorts later, whatever the hash.
        assert!(id("evt_0", "wh_0", 1_795_000_000_001) > a);
        assert!(new_manual_delivery_id() > a);
        let r = recovery_delivery_id(&a, at(1_795_000_000_500));
        assert_eq!(r, recovery_delivery_id(&a, at(1_795_000_000_500)));
        assert_ne!(r, recovery_delivery_id(&r, at(1_795_000_000_500)));
        assert!(r > a && r.as_str().len() == 30);
        // Times beyond a ULID's 48 bits (or before 1970) still make an id.
        assert!(id("e", "w", u64::MAX / 2)
            .as_str()
            .starts_with("dlv_7zzzzzzzzz"));
    }

    #[test]
    fn attempt_ids_round_trip() {
        let id = AttemptId::new(DeliveryId::from("dlv_abc"), 3);
        assert_eq!(id.to_string(), "dlv_abc.3");
        assert_eq!(format!("{id:?}"), r#""dlv_abc.3""#);
        assert_eq!("dlv_abc.3".parse(), Ok(id.clone()));
        assert_eq!(id.delivery_id(), "dlv_abc");
        assert_eq!(id.number(), 3);
        // The delivery id is all before the last dot.
        let dotted: AttemptId = "dlv_a.b.2".parse().expect("an attempt id");
        assert_eq!(dotted.into_parts(), (DeliveryId::from("dlv_a.b"), 2));
        for not_one in ["dlv_abc.0", "dlv_abc", "x.1", "dlv_a.b", "dlv_a.", ""] {
            assert_eq!(
                not_one.parse::<AttemptId>(),
                Err(NotAnAttemptId),
                "{not_one}"
            );
        }
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""dlv_abc.3""#);
        assert_eq!(
            serde_json::from_str::<AttemptId>(r#""dlv_abc.3""#).unwrap(),
            id
        );
        assert!(serde_json::from_str::<AttemptId>(r#""dlv_abc.0""#).is_err());
        assert!(serde_json::from_str::<AttemptId>("3").is_err());
    }

    #[test]
    fn ids_are_made_with_their_prefix() {
        assert_eq!(
            (WebhookId::PREFIX, EventId::PREFIX, DeliveryId::PREFIX),
            ("wh_", "evt_", "dlv_")
        );
        assert!(new_webhook_id().as_str().starts_with("wh_"));
        assert!(new_event_id().as_str().starts_with("evt_"));
        assert!(new_manual_delivery_id().as_str().starts_with("dlv_"));
    }

    #[test]
    fn event_id_rules() {
        assert!(is_valid_event_id("order-123:paid_v1.2"));
        assert!(is_valid_event_id(&"a".repeat(128)));
        assert!(!is_valid_event_id(&"a".repeat(129)));
        assert!(!is_valid_event_id(""));
        assert!(!is_valid_event_id("has space"));
        assert!(!is_valid_event_id("slash/"));
        assert!(new_event_id().as_str().starts_with("evt_"));
        assert!(is_valid_event_id(new_event_id().as_str()));
        assert!(new_webhook_id().as_str().starts_with("wh_"));
    }

    #[test]
    fn typed_ids_are_plain_strings_on_the_wire() {
        let id = WebhookId::from("wh_01abc");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#""wh_01abc""#);
        assert_eq!(
            serde_json::from_str::<WebhookId>(r#""wh_01abc""#).unwrap(),
            id
        );
        assert_eq!(id.to_string(), "wh_01abc");
        assert_eq!(format!("{id:?}"), r#""wh_01abc""#);
        assert_eq!(id.as_ref(), "wh_01abc");
        assert_eq!(id, "wh_01abc");
        assert_eq!(String::from(id.clone()), "wh_01abc");
        let item = serde_dynamo::to_attribute_value::<_, aws_sdk_dynamodb::types::AttributeValue>(
            DeliveryId::from("dlv_1"),
        )
        .unwrap();
        assert_eq!(
            item,
            aws_sdk_dynamodb::types::AttributeValue::S("dlv_1".into())
        );
        let event: EventId = serde_json::from_str(r#""order-123:paid""#).unwrap();
        assert_eq!(event.into_string(), "order-123:paid");
    }
}
