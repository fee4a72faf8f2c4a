//! What a webhook may look like (SPEC §6): the create and PATCH bodies, and the rules for a
//! webhook's name, URL and events.

use std::collections::HashSet;

use serde::Deserialize;
use url::{Host, Url};
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, ObjectBuilder, Type};
use utoipa::openapi::{Ref, SchemaFormat};
use utoipa::ToSchema;

use webhooks_shared::domain::catalogue::{self, EventTypeName};
/// A create request that passed validation.
pub use webhooks_shared::domain::model::NewWebhook;
use webhooks_shared::domain::problem::{self, Problem};
use webhooks_shared::domain::targets;

pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_URL_LEN: usize = 2048;

/// Which hosts a webhook URL may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// The public internet only: IP literals of special-purpose ranges (loopback, private,
    /// link-local and metadata, …) and reserved names (`localhost`, …) are refused.
    PublicOnly,
    /// Any host: the local-only switch `WEBHOOKS_ALLOW_PRIVATE_TARGETS=1` (refused in Lambda).
    AnyHost,
}

impl Targets {
    pub fn from_switch(allow_private_targets: bool) -> Self {
        if allow_private_targets {
            Targets::AnyHost
        } else {
            Targets::PublicOnly
        }
    }
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[schema(as = CreateWebhook)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    #[schema(schema_with = name_schema)]
    pub name: String,
    #[schema(schema_with = url_schema)]
    pub url: String,
    #[schema(schema_with = events_schema)]
    pub events: Vec<String>,
    /// false creates the webhook paused.
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub active: bool,
}

impl CreateWebhookRequest {
    pub fn parse(body: &[u8], targets: Targets) -> Result<NewWebhook, Problem> {
        let request: CreateWebhookRequest = problem::parse_object(
            body,
            r#"the body must be a JSON object: {"name": ..., "url": "https://...", "events": [...]}"#,
        )?;
        Ok(NewWebhook {
            name: validate_name(&request.name)?,
            url: validate_url(&request.url, targets)?,
            events: validate_events(&request.events)?,
            active: request.active,
        })
    }
}

/// Any of the fields; only those present change (`null` is refused: leave a field out to keep
/// it). An empty object is a 400.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = UpdateWebhook)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[serde(default, deserialize_with = "problem::present")]
    #[schema(schema_with = name_schema)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "problem::present")]
    #[schema(schema_with = url_schema)]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "problem::present")]
    #[schema(schema_with = events_schema)]
    pub events: Option<Vec<String>>,
    /// false pauses the webhook, true resumes it.
    #[serde(default, deserialize_with = "problem::present")]
    #[schema(nullable = false)]
    pub active: Option<bool>,
}

/// A validated change: `None` keeps the current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookChange {
    pub name: Option<String>,
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub active: Option<bool>,
}

impl UpdateWebhookRequest {
    pub fn parse(body: &[u8], targets: Targets) -> Result<WebhookChange, Problem> {
        let request: UpdateWebhookRequest = problem::parse_object(
            body,
            "the body must be a JSON object of the fields to change (name, url, events, active)",
        )?;
        if request.name.is_none()
            && request.url.is_none()
            && request.events.is_none()
            && request.active.is_none()
        {
            return Err(Problem::bad_request(
                "nothing to change: send at least one of name, url, events, active",
            ));
        }
        Ok(WebhookChange {
            name: request.name.as_deref().map(validate_name).transpose()?,
            url: request
                .url
                .as_deref()
                .map(|url| validate_url(url, targets))
                .transpose()?,
            events: request.events.as_deref().map(validate_events).transpose()?,
            active: request.active,
        })
    }
}

/// `name` in the create and PATCH bodies' schemas: [`validate_name`]'s rule.
fn name_schema() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_NAME_CHARS))
        .pattern(Some(NAME_PATTERN))
        .description(Some(format!(
            "Display name, 1-{MAX_NAME_CHARS} characters, not blank, no control characters, and \
             no invisible or direction-changing ones: bidi controls (U+061C, U+200E, U+200F, \
             U+202A-U+202E, U+2066-U+2069), zero-width characters (U+200B-U+200D, U+2060, \
             U+FEFF), U+2028 and U+2029, and noncharacters (U+FDD0-U+FDEF and the last two \
             code points of every plane; the pattern states those of the first plane only, the \
             API refuses all of them); a 422 names the code point. Stored without leading and \
             trailing white space."
        )))
        .build()
}

/// What every webhook URL looks like (the answers' `url` too): [`validate_url`]'s rule, as
/// far as a schema can state it.
pub(super) fn url_form() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        // `KnownFormat::Uri` would take utoipa's `url` feature for this one word.
        .format(Some(SchemaFormat::Custom("uri".into())))
        .max_length(Some(MAX_URL_LEN))
        .pattern(Some("^https://"))
}

/// `url` in the create and PATCH bodies' schemas.
fn url_schema() -> Object {
    url_form()
        .description(Some(format!(
            "Receiver URL: `https://` only, at most {MAX_URL_LEN} characters, a host is \
             required, no user-info, no `#fragment`. Redirects from it are never followed."
        )))
        .build()
}

/// `events` in the create and PATCH bodies' schemas: [`validate_events`]'s rule (the
/// `EventType` component lists the catalogue; `Routes` registers it, as a `schema_with`
/// field's references are not collected).
fn events_schema() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name(EventTypeName::name()))
        .min_items(Some(1))
        .unique_items(true)
        .description(Some(
            "Event types this webhook subscribes to: non-empty, each in the catalogue, no \
             duplicates.",
        ))
        .build()
}

/// Characters a name may not hold though they are not control characters, with what they
/// are: bidi controls reorder what is shown (a name could read as another, or hide text);
/// zero-width characters, line and paragraph separators and noncharacters are invisible or
/// break the line, in the console, the alert emails and the logs alike.
pub fn invisible_character(c: char) -> Option<&'static str> {
    Some(match c {
        '\u{061C}' => "arabic letter mark",
        '\u{200B}' => "zero width space",
        '\u{200C}' => "zero width non-joiner",
        '\u{200D}' => "zero width joiner",
        '\u{200E}' => "left-to-right mark",
        '\u{200F}' => "right-to-left mark",
        '\u{2028}' => "line separator",
        '\u{2029}' => "paragraph separator",
        '\u{202A}' => "left-to-right embedding",
        '\u{202B}' => "right-to-left embedding",
        '\u{202C}' => "pop directional formatting",
        '\u{202D}' => "left-to-right override",
        '\u{202E}' => "right-to-left override",
        '\u{2060}' => "word joiner",
        '\u{2066}' => "left-to-right isolate",
        '\u{2067}' => "right-to-left isolate",
        '\u{2068}' => "first strong isolate",
        '\u{2069}' => "pop directional isolate",
        '\u{FEFF}' => "zero width no-break space, the byte order mark",
        c if is_noncharacter(c) => "a noncharacter",
        _ => return None,
    })
}

/// Unicode's 66 noncharacters: U+FDD0-U+FDEF and the last two code points of every plane.
fn is_noncharacter(c: char) -> bool {
    let n = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE
}

/// [`validate_name`]'s rule as the API document states it (`name`'s `pattern`), in the regular
/// expression dialect ECMA-262 and Python's `re` share: no control character (C0, DEL, C1), no
/// character [`invisible_character`] names, and at least one that is not white space. Of the
/// noncharacters it names those of the first plane only (the dialects share no spelling for
/// the others); `integration-tests` checks every character against [`validate_name`].
pub const NAME_PATTERN: &str = "^\
    [^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufdd0-\\ufdef\\ufeff\\ufffe\\uffff]*\
    [^\\u0000-\\u0020\\u007f-\\u00a0\\u061c\\u1680\\u2000-\\u200f\\u2028-\\u202f\\u205f\\u2060\\u2066-\\u2069\\u3000\\ufdd0-\\ufdef\\ufeff\\ufffe\\uffff]\
    [^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufdd0-\\ufdef\\ufeff\\ufffe\\uffff]*\
    $";

/// 1-100 characters as posted (the API document's rule, with [`NAME_PATTERN`]), not blank, no
/// control characters, no invisible or direction-changing ones ([`invisible_character`]);
/// stored trimmed.
pub fn validate_name(name: &str) -> Result<String, Problem> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(Problem::invalid_field(
            "name",
            format!("name must be 1-{MAX_NAME_CHARS} characters (got {chars})"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(Problem::invalid_field(
            "name",
            "name must not contain control characters",
        ));
    }
    if let Some((c, what)) = name
        .chars()
        .find_map(|c| invisible_character(c).map(|what| (c, what)))
    {
        return Err(Problem::invalid_field(
            "name",
            format!(
                "name must not contain invisible or direction-changing characters: remove \
                 U+{:04X} ({what})",
                u32::from(c)
            ),
        ));
    }
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Problem::invalid_field("name", "name must not be blank"));
    }
    Ok(trimmed.to_owned())
}

/// `https://` only, at most 2048 characters, a host that can be on the public internet (see
/// [`Targets`]), no user-info, no fragment. Answers the URL as the parser normalizes it (what
/// is stored and requested: tabs and newlines dropped, host lower-cased, IP literals in their
/// canonical form), so what the log shows is what was checked.
pub fn validate_url(text: &str, targets: Targets) -> Result<String, Problem> {
    let invalid = |detail: String| Problem::invalid_field("url", detail);
    let too_long = |len: usize| {
        invalid(format!(
            "url must be at most {MAX_URL_LEN} characters (got {len})"
        ))
    };
    if text.len() > MAX_URL_LEN {
        return Err(too_long(text.len()));
    }
    let url = Url::parse(text).map_err(|e| invalid(format!("url is not a valid URL: {e}")))?;
    if url.scheme() != "https" {
        return Err(invalid(format!(
            "url must use https:// (plain {}:// endpoints are rejected)",
            url.scheme()
        )));
    }
    let Some(host) = url.host().filter(|h| !matches!(h, Host::Domain(""))) else {
        return Err(invalid("url must name a host".into()));
    };
    if targets == Targets::PublicOnly {
        if let Some(why) = targets::refusal(&host) {
            return Err(invalid(format!(
                "url must reach a public host: {why}; deliveries never go to private, \
                 loopback, link-local or reserved addresses"
            )));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "url must not contain user-info (user:password@); authenticate with the signature instead"
                .into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(invalid("url must not contain a #fragment".into()));
    }
    // Percent-encoding can lengthen what was posted.
    if url.as_str().len() > MAX_URL_LEN {
        return Err(too_long(url.as_str().len()));
    }
    Ok(url.as_str().to_owned())
}

pub fn validate_events(events: &[String]) -> Result<Vec<String>, Problem> {
    if events.is_empty() {
        return Err(Problem::invalid_field(
            "events",
            "events must list at least one event type",
        ));
    }
    let mut seen = HashSet::new();
    for event in events {
        if catalogue::find(event).is_none() {
            let known: Vec<_> = catalogue::names().collect();
            return Err(Problem::invalid_field(
                "events",
                format!(
                    "events contains unknown event type {event:?}; known types: {}",
                    known.join(", ")
                ),
            ));
        }
        if !seen.insert(event.as_str()) {
            return Err(Problem::invalid_field(
                "events",
                format!("events lists {event:?} twice"),
            ));
        }
    }
    Ok(events.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<NewWebhook, Problem>) -> (u16, Option<String>, String) {
        let p = result.unwrap_err();
        (p.status, p.field, p.detail)
    }

    #[test]
    fn accepts_a_good_webhook() {
        let w = CreateWebhookRequest::parse(
            br#"{"name":" CRM ","url":"https://example.com/hook?x=1","events":["order.completed"]}"#,
            Targets::PublicOnly,
        )
        .unwrap();
        assert_eq!(w.name, "CRM");
        assert!(w.active);
        assert_eq!(w.events, ["order.completed"]);
    }

    #[test]
    fn rejects_bad_urls_naming_the_field() {
        for url in [
            "http://example.com/hook",
            "ftp://example.com",
            "https://user:pw@example.com/",
            "not a url",
            "https://",
            "https://example.com/#frag",
        ] {
            let body = serde_json::json!({"name": "n", "url": url, "events": ["order.completed"]});
            let (status, field, detail) = field_of(CreateWebhookRequest::parse(
                body.to_string().as_bytes(),
                Targets::PublicOnly,
            ));
            assert_eq!(status, 422, "{url}");
            assert_eq!(field.as_deref(), Some("url"), "{url}");
            assert!(detail.contains("url"), "{detail}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(validate_url(&long, Targets::PublicOnly)
            .unwrap_err()
            .detail
            .contains("2048"));
    }

    #[test]
    fn private_and_reserved_hosts_are_refused_unless_the_local_switch_allows_them() {
        for url in [
            "https://169.254.169.254/latest",
            "https://localhost/x",
            "https://0x7f.1/",
            "https://[::1]/",
            "https://10.0.0.1/",
            "https://[::ffff:10.0.0.1]/",
            "https://[2002:a00:1::]/",
            "https://svc.internal/",
        ] {
            let p = validate_url(url, Targets::PublicOnly).unwrap_err();
            assert_eq!((p.status, p.field.as_deref()), (422, Some("url")), "{url}");
            assert!(p.detail.contains("public host"), "{}", p.detail);
            let body = serde_json::json!({"url": url}).to_string();
            let p = UpdateWebhookRequest::parse(body.as_bytes(), Targets::PublicOnly).unwrap_err();
            assert_eq!(p.field.as_deref(), Some("url"), "PATCH {url}");
            assert!(validate_url(url, Targets::AnyHost).is_ok(), "{url}");
        }
        let p = validate_url("https://169.254.169.254/", Targets::PublicOnly).unwrap_err();
        assert!(p.detail.contains("metadata"), "{}", p.detail);
    }

    #[test]
    fn the_stored_url_is_the_normalized_one() {
        for (posted, stored) in [
            ("https://Example.COM", "https://example.com/"),
            ("https://example.com/a\tb\nc", "https://example.com/abc"),
            ("https://example.com:443/x", "https://example.com/x"),
            ("https://example.com/a b", "https://example.com/a%20b"),
            ("https://[2606:4700:0::1111]/", "https://[2606:4700::1111]/"),
        ] {
            assert_eq!(validate_url(posted, Targets::PublicOnly).unwrap(), stored);
        }
        // What percent-encoding makes of a URL is held to the limit too.
        let spaced = format!("https://example.com/a{}b", " ".repeat(1000));
        let p = validate_url(&spaced, Targets::PublicOnly).unwrap_err();
        assert!(p.detail.contains("2048"), "{}", p.detail);
    }

    #[test]
    fn a_body_must_be_an_object_not_an_array_of_the_fields() {
        let create = CreateWebhookRequest::parse(
            br#"["n", "https://example.com/", ["user.registered"], true]"#,
            Targets::PublicOnly,
        );
        let update = UpdateWebhookRequest::parse(br#"["n"]"#, Targets::PublicOnly);
        for p in [create.err(), update.err()] {
            let p = p.expect("refused");
            assert_eq!(p.status, 400);
            assert!(p.detail.contains("JSON object"), "{}", p.detail);
        }
    }

    #[test]
    fn names_follow_the_documents_rule_and_patch_fields_refuse_null() {
        for bad in ["\u{1}", "ok\tname", "\u{93}·|", "   ", "\u{3000}"] {
            let p = validate_name(bad).unwrap_err();
            assert_eq!(p.field.as_deref(), Some("name"), "{bad:?}");
        }
        // The length is what was posted (maxLength), white space included.
        assert!(validate_name(&format!(" {} ", "x".repeat(99))).is_err());
        assert_eq!(
            validate_name(&format!(" {}", "x".repeat(99))).unwrap(),
            "x".repeat(99)
        );
        for field in ["name", "url", "events", "active"] {
            let body = format!(r#"{{"{field}": null}}"#);
            let p = UpdateWebhookRequest::parse(body.as_bytes(), Targets::PublicOnly).unwrap_err();
            assert_eq!((p.status, p.field.as_deref()), (400, Some(field)), "{body}");
        }
    }

    #[test]
    fn names_refuse_invisible_and_direction_changing_characters_naming_the_code_point() {
        let refused = [
            ('\u{202A}', "U+202A (left-to-right embedding)"),
            ('\u{202E}', "U+202E (right-to-left override)"),
            ('\u{2066}', "U+2066 (left-to-right isolate)"),
            ('\u{2069}', "U+2069 (pop directional isolate)"),
            ('\u{200E}', "U+200E (left-to-right mark)"),
            ('\u{200F}', "U+200F (right-to-left mark)"),
            ('\u{061C}', "U+061C (arabic letter mark)"),
            ('\u{200B}', "U+200B (zero width space)"),
            ('\u{200C}', "U+200C (zero width non-joiner)"),
            ('\u{200D}', "U+200D (zero width joiner)"),
            ('\u{2060}', "U+2060 (word joiner)"),
            (
                '\u{FEFF}',
                "U+FEFF (zero width no-break space, the byte order mark)",
            ),
            ('\u{2028}', "U+2028 (line separator)"),
            ('\u{2029}', "U+2029 (paragraph separator)"),
            ('\u{FDD0}', "U+FDD0 (a noncharacter)"),
            ('\u{FDEF}', "U+FDEF (a noncharacter)"),
            ('\u{FFFE}', "U+FFFE (a noncharacter)"),
            ('\u{FFFF}', "U+FFFF (a noncharacter)"),
            ('\u{1FFFE}', "U+1FFFE (a noncharacter)"),
            ('\u{10FFFF}', "U+10FFFF (a noncharacter)"),
        ];
        for (c, named) in refused {
            for name in [
                format!("CRM{c}"),
                format!("{c}CRM"),
                format!("C{c}RM"),
                c.to_string(),
            ] {
                let p = validate_name(&name).unwrap_err();
                assert_eq!(
                    (p.status, p.field.as_deref()),
                    (422, Some("name")),
                    "{name:?}"
                );
                assert!(p.detail.contains(named), "{name:?}: {}", p.detail);
            }
            // PATCH as create.
            let body = serde_json::json!({ "name": format!("pay{c}ments") }).to_string();
            let p = UpdateWebhookRequest::parse(body.as_bytes(), Targets::PublicOnly).unwrap_err();
            assert_eq!((p.status, p.field.as_deref()), (422, Some("name")));
            assert!(p.detail.contains(named), "{}", p.detail);
        }
        let body =
            r#"{"name":"evil\u202egpj.exe","url":"https://e.com","events":["user.registered"]}"#;
        let (status, field, detail) = field_of(CreateWebhookRequest::parse(
            body.as_bytes(),
            Targets::PublicOnly,
        ));
        assert_eq!((status, field.as_deref()), (422, Some("name")));
        assert_eq!(
            detail,
            "name must not contain invisible or direction-changing characters: remove U+202E \
             (right-to-left override)"
        );
        // Their neighbours, and scripts that need no joiner to be written, are names.
        for fine in [
            "Zahlungen \u{2011} Übersicht",
            "\u{05E9}\u{05DC}\u{05D5}\u{05DD}",
            "\u{0645}\u{0631}\u{062D}\u{0628}\u{0627}",
            "\u{202F}narrow\u{202F}space\u{2070}",
            "\u{FDCF}\u{FDF0}\u{FFFD}\u{1FFFD}",
            "🎟 tickets",
        ] {
            assert!(validate_name(fine).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn rejects_bad_events_and_names() {
        let (status, field, detail) = field_of(CreateWebhookRequest::parse(
            br#"{"name":"n","url":"https://e.com","events":["order.deleted"]}"#,
            Targets::PublicOnly,
        ));
        assert_eq!((status, field.as_deref()), (422, Some("events")));
        assert!(detail.contains("order.deleted"));
        let (_, field, _) = field_of(CreateWebhookRequest::parse(
            br#"{"name":"n","url":"https://e.com","events":[]}"#,
            Targets::PublicOnly,
        ));
        assert_eq!(field.as_deref(), Some("events"));
        let (_, _, detail) = field_of(CreateWebhookRequest::parse(
            br#"{"name":"n","url":"https://e.com","events":["user.registered","user.registered"]}"#,
            Targets::PublicOnly,
        ));
        assert!(detail.contains("twice"));
        let long_name = serde_json::json!({"name": "x".repeat(101), "url": "https://e.com", "events": ["user.registered"]});
        let (_, field, _) = field_of(CreateWebhookRequest::parse(
            long_name.to_string().as_bytes(),
            Targets::PublicOnly,
        ));
        assert_eq!(field.as_deref(), Some("name"));
    }

    #[test]
    fn updates_validate_only_what_they_change() {
        let change =
            UpdateWebhookRequest::parse(br#"{"active":false}"#, Targets::PublicOnly).unwrap();
        assert_eq!(change.active, Some(false));
        assert_eq!(change.url, None);
        let p = UpdateWebhookRequest::parse(br#"{"url":"http://x.com"}"#, Targets::PublicOnly)
            .unwrap_err();
        assert_eq!((p.status, p.field.as_deref()), (422, Some("url")));
        assert_eq!(
            UpdateWebhookRequest::parse(b"{}", Targets::PublicOnly)
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            UpdateWebhookRequest::parse(br#"{"secret":"x"}"#, Targets::PublicOnly)
                .unwrap_err()
                .status,
            400
        );
    }

    #[test]
    fn malformed_json_and_unknown_fields_are_400() {
        let (status, _, _) = field_of(CreateWebhookRequest::parse(
            b"{not json",
            Targets::PublicOnly,
        ));
        assert_eq!(status, 400);
        let (status, _, detail) = field_of(CreateWebhookRequest::parse(
            br#"{"name":"n","url":"https://e.com","events":["user.registered"],"secret":"x"}"#,
            Targets::PublicOnly,
        ));
        assert_eq!(status, 400);
        assert!(detail.contains("unknown field"), "{detail}");
    }
}
