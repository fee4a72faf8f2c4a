//! Property tests of admin input, across the features that take a body (webhooks, recovery):
//! whatever an admin sends, the answer is a validated value
//! or a 4xx problem naming the field at fault — never a panic — and a URL that passes is
//! what the API stores and requests.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use url::Url;

use crate::recovery::RecoveryCall;
use crate::webhooks::{
    validate_url, CreateWebhookRequest, Targets, UpdateWebhookRequest, MAX_URL_LEN,
};
use webhooks_shared::domain::ids::WebhookId;
use webhooks_shared::domain::targets;

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u32..2000).prop_map(|n| Value::from(f64::from(n) / 2.0)),
        ".{0,30}".prop_map(Value::from),
        prop::sample::select(vec!["order.completed", "user.registered", "nope"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// URLs from plausible pieces (schemes, user-info, hosts of every kind, ports, paths, odd
/// characters), and from any text at all.
fn any_url() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        "[a-z0-9-]{1,12}(\\.[a-z]{2,6}){0,2}",
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<u128>().prop_map(|n| format!("[{}]", std::net::Ipv6Addr::from(n))),
        any::<u32>().prop_map(|n| n.to_string()),
        any::<u32>().prop_map(|n| format!("0x{n:x}")),
        Just("localhost".to_owned()),
        Just("[::ffff:169.254.169.254]".to_owned()),
        "[a-z]{1,8}\\.(localhost|internal|local)\\.?",
    ];
    let structured = (
        prop::sample::select(vec![
            "https://", "http://", "HTTPS://", "ftp://", "https:", "",
        ]),
        prop::option::of("[a-z]{1,5}(:[a-z]{0,5})?@"),
        host,
        prop::option::of(0u32..70_000),
        "(/[a-zA-Z0-9 %._~\t\n#?@-]{0,12}){0,3}",
    )
        .prop_map(|(scheme, user, host, port, path)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}{}{host}{port}{path}", user.unwrap_or_default())
        });
    prop_oneof![4 => structured, 1 => ".{0,60}"]
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_748_400)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn a_url_that_passes_is_https_public_normalized_and_stable(text in any_url()) {
        match validate_url(&text, Targets::PublicOnly) {
            Ok(stored) => {
                let url = Url::parse(&stored).expect("a stored URL parses");
                prop_assert_eq!(url.scheme(), "https");
                prop_assert!(stored.len() <= MAX_URL_LEN);
                prop_assert!(url.username().is_empty() && url.password().is_none());
                prop_assert!(url.fragment().is_none());
                let host = url.host().expect("a host");
                prop_assert!(targets::refusal(&host).is_none(), "{stored} is not public");
                // Validating what is stored changes nothing.
                prop_assert_eq!(validate_url(&stored, Targets::PublicOnly).ok(), Some(stored));
            }
            Err(p) => {
                prop_assert_eq!(p.status, 422);
                prop_assert_eq!(p.field.as_deref(), Some("url"));
                prop_assert!(p.detail.starts_with("url "), "{}", p.detail);
            }
        }
    }

    #[test]
    fn any_bytes_are_a_request_or_a_4xx(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let webhook = WebhookId::from("wh_01jdq8z3x4y5w6v7u8t9s0r1q2".to_owned());
        let statuses = [
            CreateWebhookRequest::parse(&body, Targets::PublicOnly).err().map(|p| p.status),
            UpdateWebhookRequest::parse(&body, Targets::PublicOnly).err().map(|p| p.status),
            RecoveryCall::parse(&body, &webhook, now()).err().map(|p| p.status),
        ];
        for status in statuses.into_iter().flatten() {
            prop_assert!((400..500).contains(&status), "{status}");
        }
    }

    #[test]
    fn a_webhook_body_is_accepted_or_refused_naming_its_field(
        name in prop::option::of(prop_oneof![".{0,120}".prop_map(Value::from), any_json()]),
        url in prop::option::of(prop_oneof![any_url().prop_map(Value::from), any_json()]),
        events in prop::option::of(prop_oneof![
            prop::collection::vec(
                prop::sample::select(webhooks_shared::domain::catalogue::names().collect::<Vec<_>>())
                    .prop_map(Value::from),
                0..4,
            ).prop_map(Value::from),
            any_json(),
        ]),
        active in prop::option::of(any_json()),
    ) {
        let mut body = Map::new();
        for (key, value) in [("name", name), ("url", url), ("events", events), ("active", active)] {
            if let Some(value) = value {
                body.insert(key.to_owned(), value);
            }
        }
        let known = ["name", "url", "events", "active"];
        let text = Value::Object(body.clone()).to_string();
        if let Err(p) = CreateWebhookRequest::parse(text.as_bytes(), Targets::PublicOnly) {
            prop_assert!((400..500).contains(&p.status), "{p:?}");
            let field = p.field.clone().unwrap_or_default();
            let head = field.split(['[', '.']).next().unwrap_or("");
            prop_assert!(known.contains(&head), "{text} -> {p:?}");
        }
        if let Err(p) = UpdateWebhookRequest::parse(text.as_bytes(), Targets::PublicOnly) {
            prop_assert!((400..500).contains(&p.status), "{p:?}");
            // The one refusal without a field: nothing to change.
            if !body.is_empty() {
                let field = p.field.clone().unwrap_or_default();
                let head = field.split(['[', '.']).next().unwrap_or("");
                prop_assert!(known.contains(&head), "{text} -> {p:?}");
            }
        }
    }

    #[test]
    fn a_recover_body_is_accepted_or_refused_naming_its_field(
        since in prop::option::of(any_json()),
        until in prop::option::of(any_json()),
        limit in prop::option::of(any_json()),
        cursor in prop::option::of(any_json()),
    ) {
        let webhook = WebhookId::from("wh_01jdq8z3x4y5w6v7u8t9s0r1q2".to_owned());
        let mut body = Map::new();
        for (key, value) in [("since", since), ("until", until), ("limit", limit), ("cursor", cursor)] {
            if let Some(value) = value {
                body.insert(key.to_owned(), value);
            }
        }
        let text = json!(body).to_string();
        if let Err(p) = RecoveryCall::parse(text.as_bytes(), &webhook, now()) {
            prop_assert!((400..500).contains(&p.status), "{p:?}");
            let field = p.field.clone().unwrap_or_default();
            prop_assert!(
                ["since", "until", "limit", "cursor"].contains(&field.as_str()),
                "{text} -> {p:?}"
            );
        }
    }
}
