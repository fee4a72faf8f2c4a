//! The event catalogue of SPEC §2: every type a webhook can subscribe to.

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    pub name: &'static str,
    pub description: &'static str,
}

pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "order.completed",
        description: "Order paid and tickets issued",
    },
    EventType {
        name: "order.refunded",
        description: "Refund processed",
    },
    EventType {
        name: "winner.drawn",
        description: "Competition draw completed (fires per winner)",
    },
    EventType {
        name: "winner.prize_choice_made",
        description: "Winner selected a prize alternative",
    },
    EventType {
        name: "withdrawal.requested",
        description: "Cash wallet withdrawal requested",
    },
    EventType {
        name: "withdrawal.paid",
        description: "Cash wallet withdrawal paid out",
    },
    EventType {
        name: "competition.created",
        description: "Competition created",
    },
    EventType {
        name: "competition.ended",
        description: "Competition ended",
    },
    EventType {
        name: "user.registered",
        description: "New user registered",
    },
];

pub fn find(name: &str) -> Option<&'static EventType> {
    EVENT_TYPES.iter().find(|t| t.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    EVENT_TYPES.iter().map(|t| t.name)
}

/// An example `data` object for each type, shown by `GET /api/v1/event-types`.
pub fn example(name: &str) -> Value {
    match name {
        "order.completed" => {
            json!({"id": "ord_1042", "user_id": "usr_77", "competition_id": "cmp_12", "tickets": [101, 102, 103], "total": {"amount": 597, "currency": "GBP"}})
        }
        "order.refunded" => {
            json!({"id": "ord_1042", "refund_id": "rfd_9", "amount": {"amount": 597, "currency": "GBP"}, "reason": "customer_request"})
        }
        "winner.drawn" => {
            json!({"id": "win_301", "competition_id": "cmp_12", "user_id": "usr_77", "ticket_number": 102, "prize": "Range Rover Sport"})
        }
        "winner.prize_choice_made" => {
            json!({"id": "win_301", "competition_id": "cmp_12", "choice": "cash_alternative", "amount": {"amount": 5000000, "currency": "GBP"}})
        }
        "withdrawal.requested" => {
            json!({"id": "wdr_55", "user_id": "usr_77", "amount": {"amount": 2500, "currency": "GBP"}})
        }
        "withdrawal.paid" => {
            json!({"id": "wdr_55", "user_id": "usr_77", "amount": {"amount": 2500, "currency": "GBP"}, "paid_at": "2026-11-27T03:00:00Z"})
        }
        "competition.created" => {
            json!({"id": "cmp_12", "title": "Win a Range Rover Sport", "ticket_price": {"amount": 199, "currency": "GBP"}, "closes_at": "2026-12-24T20:00:00Z"})
        }
        "competition.ended" => {
            json!({"id": "cmp_12", "tickets_sold": 48211, "ended_at": "2026-12-24T20:00:00Z"})
        }
        "user.registered" => {
            json!({"id": "usr_77", "email": "ada@example.com", "marketing_opt_in": false})
        }
        _ => json!({}),
    }
}

/// An event type's name, one of the catalogue's, as the API document shows it (`EventType`):
/// its enum is the catalogue's names, so a type added here is in the document too.
#[cfg(feature = "openapi")]
pub struct EventTypeName;

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for EventTypeName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names()))
            .description(Some("The event catalogue; unknown types are rejected."))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for EventTypeName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("EventType")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_matches_the_guide() {
        let names: Vec<_> = names().collect();
        assert_eq!(
            names,
            [
                "order.completed",
                "order.refunded",
                "winner.drawn",
                "winner.prize_choice_made",
                "withdrawal.requested",
                "withdrawal.paid",
                "competition.created",
                "competition.ended",
                "user.registered"
            ]
        );
        assert!(find("order.completed").is_some());
        assert!(find("order.deleted").is_none());
        for name in names {
            assert!(example(name).get("id").is_some(), "{name}");
        }
    }
}
