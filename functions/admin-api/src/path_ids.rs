//! The ids a request path names: what each can look like (`shared/src/domain/ids.rs` makes
//! them), so that a path segment that cannot be one of ours — empty, too long, or of another
//! form — is a 404 before any AWS call. DynamoDB refuses an empty or oversized key outright,
//! which answered 503 (and logged an error) on every try. [`refuse_malformed_ids`] checks
//! every id parameter of the matched route by its name, so a new route naming its ids so
//! (`{id}`, `{attempt_id}`, `{delivery_id}`) is covered without more code.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use webhooks_shared::domain::ids::{AttemptId, DeliveryId, WebhookId, MAX_ID_CHARS};
use webhooks_shared::domain::problem::Problem;

use crate::problems::ProblemResponse;

/// The id parameters as the API document describes them: what they hold, and the 404 that
/// [`refuse_malformed_ids`] answers for one that cannot be ours.
pub(crate) const WEBHOOK_ID_DESCRIPTION: &str = "Webhook id (`wh_…`). A path id that cannot be \
    one of ours (empty, longer than 64 characters, or of another form) is a 404.";
pub(crate) const ATTEMPT_ID_DESCRIPTION: &str = "Attempt id (`<delivery_id>.<attempt>`, e.g. \
    `dlv_01jd8x9k4m2n3p4q5r6s7t8v9w.2`). A path id that cannot be one of ours is a 404.";
pub(crate) const DELIVERY_ID_DESCRIPTION: &str =
    "Delivery id (`dlv_…`). A path id that cannot be one of ours is a 404.";

/// The route parameters that hold ids, and the kind of id each holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `{id}`: `wh_` and a lowercase ULID.
    Webhook,
    /// `{attempt_id}`: a delivery id, `.` and the attempt number (from 1, no leading zero).
    Attempt,
    /// `{delivery_id}`: `dlv_` and lowercase letters and digits (a ULID; older ones a hash).
    Delivery,
}

impl IdKind {
    /// The kind of id a route parameter holds, by its name in the route.
    pub fn of_parameter(name: &str) -> Option<IdKind> {
        match name {
            "id" => Some(IdKind::Webhook),
            "attempt_id" => Some(IdKind::Attempt),
            "delivery_id" => Some(IdKind::Delivery),
            _ => None,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            IdKind::Webhook => "webhook",
            IdKind::Attempt => "attempt",
            IdKind::Delivery => "delivery",
        }
    }

    /// What an id of this kind looks like, and where to find real ones.
    fn form(self) -> &'static str {
        match self {
            IdKind::Webhook => {
                "webhook ids are wh_ followed by lowercase letters and digits, such as \
                 wh_01jd8x9k4m2n3p4q5r6s7t8v9w (GET /api/v1/webhooks lists them)"
            }
            IdKind::Attempt => {
                "attempt ids are a delivery id, a dot and the attempt number, such as \
                 dlv_01jd8x9k4m2n3p4q5r6s7t8v9w.2 (GET /api/v1/webhooks/{id}/attempts lists them)"
            }
            IdKind::Delivery => {
                "delivery ids are dlv_ followed by lowercase letters and digits, such as \
                 dlv_01jd8x9k4m2n3p4q5r6s7t8v9w (each attempt in GET \
                 /api/v1/webhooks/{id}/attempts names its delivery)"
            }
        }
    }

    /// Whether `text` has this kind's form (whether such an id exists is the store's to say).
    pub fn admits(self, text: &str) -> bool {
        if text.len() > MAX_ID_CHARS {
            return false;
        }
        match self {
            IdKind::Webhook => prefixed_token(text, WebhookId::PREFIX),
            IdKind::Delivery => prefixed_token(text, DeliveryId::PREFIX),
            // As we write them: no leading zero or sign in the number.
            IdKind::Attempt => text.parse::<AttemptId>().is_ok_and(|id| {
                prefixed_token(id.delivery_id().as_str(), DeliveryId::PREFIX)
                    && id.to_string() == text
            }),
        }
    }

    /// `Ok` when `text` may be an id of this kind; else the 404 that says what an id looks like.
    pub fn check(self, text: &str) -> Result<(), Problem> {
        if self.admits(text) {
            return Ok(());
        }
        let noun = self.noun();
        let detail = if text.is_empty() {
            format!("the {noun} id in the path is empty; {}", self.form())
        } else if text.chars().count() > MAX_ID_CHARS {
            format!(
                "no {noun} with that id: ids are at most {MAX_ID_CHARS} characters (got {}); {}",
                text.chars().count(),
                self.form()
            )
        } else {
            format!("no {noun} with id {text:?}: {}", self.form())
        };
        Err(Problem::not_found(detail))
    }
}

/// A path naming an id that cannot be one of ours — empty, longer than any id, or of another
/// form ([`IdKind`]) — is a 404 before any AWS call: DynamoDB refuses an empty or oversized
/// key outright (a 503 for every try), and any other form is not an id we made. A route
/// layer of the admin router.
pub(crate) async fn refuse_malformed_ids(
    params: Result<RawPathParams, RawPathParamsRejection>,
    request: Request,
    next: Next,
) -> Response {
    let checked = match &params {
        Ok(params) => params
            .iter()
            .filter_map(|(name, value)| IdKind::of_parameter(name).map(|kind| (kind, value)))
            .try_for_each(|(kind, value)| kind.check(value)),
        // A segment whose percent-encoding is not UTF-8 is no id of ours.
        Err(_) => Err(Problem::not_found(
            "no such resource: an id in the path is not valid UTF-8 once percent-decoded; \
             ids are ASCII letters, digits, '_' and '.'",
        )),
    };
    match checked {
        Ok(()) => next.run(request).await,
        Err(problem) => ProblemResponse::from(problem).into_response(),
    }
}

/// `prefix` and then one or more lowercase ASCII letters and digits.
fn prefixed_token(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhooks_shared::domain::ids;

    #[test]
    fn the_ids_we_make_are_admitted() {
        let webhook = ids::new_webhook_id();
        assert!(IdKind::Webhook.admits(webhook.as_str()));
        let delivery = ids::new_manual_delivery_id();
        assert!(IdKind::Delivery.admits(delivery.as_str()));
        let at = std::time::SystemTime::now();
        let fanned = ids::delivery_id(&ids::new_event_id(), &webhook, at);
        assert!(IdKind::Delivery.admits(fanned.as_str()));
        let recovered = ids::recovery_delivery_id(&fanned, at);
        assert!(IdKind::Delivery.admits(recovered.as_str()));
        for n in [1, 6, u32::MAX] {
            let attempt = AttemptId::new(recovered.clone(), n).to_string();
            assert!(IdKind::Attempt.admits(&attempt), "{attempt}");
            assert!(attempt.parse::<AttemptId>().is_ok());
        }
        // Ids of the older forms (a hex hash, `dlv_r…`, `dlv_m…`) are still ids.
        assert!(IdKind::Delivery.admits("dlv_r3f2a9c0e1b7d4a5f8e6c2b1a0d9e8f7"));
        assert!(IdKind::Attempt.admits("dlv_m01jd8x9k4m2n3p4q5r6s7t8v9w.3"));
        assert!(IdKind::Webhook.admits("wh_nope"));
    }

    #[test]
    fn segments_that_cannot_be_ids_are_404_problems_saying_what_an_id_looks_like() {
        let cases: &[(IdKind, &str)] = &[
            (IdKind::Webhook, ""),
            (IdKind::Webhook, "wh_"),
            (IdKind::Webhook, "wh"),
            (IdKind::Webhook, "WH_01ABC"),
            (IdKind::Webhook, "wh_01ABC"),
            (IdKind::Webhook, "wh_01 abc"),
            (IdKind::Webhook, "wh_01/abc"),
            (IdKind::Webhook, "dlv_01abc"),
            (IdKind::Webhook, "wh_é"),
            (IdKind::Webhook, "wh_\u{0}"),
            (IdKind::Delivery, ""),
            (IdKind::Delivery, "dlv_"),
            (IdKind::Delivery, "dlv_01abc.1"),
            (IdKind::Delivery, "wh_01abc"),
            (IdKind::Attempt, ""),
            (IdKind::Attempt, "."),
            (IdKind::Attempt, "dlv_01abc"),
            (IdKind::Attempt, "dlv_01abc."),
            (IdKind::Attempt, "dlv_01abc.0"),
            (IdKind::Attempt, "dlv_01abc.01"),
            (IdKind::Attempt, "dlv_01abc.+1"),
            (IdKind::Attempt, "dlv_01abc.-1"),
            (IdKind::Attempt, "dlv_01abc.4294967296"),
            (IdKind::Attempt, "dlv_.1"),
            (IdKind::Attempt, "garbage"),
        ];
        for &(kind, text) in cases {
            let p = kind.check(text).unwrap_err();
            assert_eq!(p.status, 404, "{kind:?} {text:?}");
            assert!(p.detail.contains(kind.form()), "{}", p.detail);
        }
        let p = IdKind::Webhook.check("").unwrap_err();
        assert!(p.detail.starts_with("the webhook id in the path is empty"));
        let long = format!("wh_{}", "a".repeat(3000));
        let p = IdKind::Webhook.check(&long).unwrap_err();
        assert!(p.detail.contains("at most 64 characters (got 3003)"));
        assert!(!p.detail.contains(&long), "the id is not echoed");
    }

    #[test]
    fn route_parameters_are_known_by_name() {
        assert_eq!(IdKind::of_parameter("id"), Some(IdKind::Webhook));
        assert_eq!(IdKind::of_parameter("attempt_id"), Some(IdKind::Attempt));
        assert_eq!(IdKind::of_parameter("delivery_id"), Some(IdKind::Delivery));
        assert_eq!(IdKind::of_parameter("other"), None);
    }
}
