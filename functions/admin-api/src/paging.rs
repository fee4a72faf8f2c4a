//! The query of the routes that answer a page (`?limit=`, and the webhook list's `?cursor=`).

use webhooks_shared::domain::problem::Problem;

use crate::problems::ApiResult;

/// The query's `(name, value)` pairs, percent-decoded; none without a query.
pub(crate) fn pairs(query: Option<&str>) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
}

/// `?limit=` as a page size from 1 to `max`.
pub(crate) fn limit(value: &str, max: u32) -> ApiResult<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "limit must be a whole number from 1 to {max} (got {value:?})"
            ))
        })
}

/// The 400 for a query parameter the route does not take; `accepted` names those it does
/// ("limit is", "limit and cursor are").
pub(crate) fn unknown_parameter(name: &str, accepted: &str) -> Problem {
    Problem::bad_request(format!(
        "unknown query parameter {name:?}; only {accepted} accepted"
    ))
}
