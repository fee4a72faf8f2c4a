//! The alert digest (SPEC §5): when a window's email is due, and the email itself — at most
//! one per webhook per window, every failure counted, the first 50 listed.

use crate::mailer::Email;
use webhooks_shared::domain::alerts::FailureNotice;
use webhooks_shared::domain::ids::WebhookId;

/// An email lists this many failures; the rest are counted.
pub const LISTED_MAX: usize = 50;

/// When a new window's digest is due: after the gathering delay, but never sooner than one
/// window after the previous email.
pub fn digest_due(now: i64, gather_secs: i64, window_secs: i64, last_email_at: Option<i64>) -> i64 {
    let earliest = last_email_at.map_or(i64::MIN, |last| last + window_secs);
    (now + gather_secs).max(earliest)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSummary {
    pub id: WebhookId,
    pub name: String,
    pub url: String,
}

fn last_answer(f: &FailureNotice) -> String {
    match (f.response_status, f.error.as_deref()) {
        (Some(status), _) => format!("HTTP {status}"),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "no answer".to_owned(),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The digest email for `total` failures, of which `listed` are the first (at most
/// [`LISTED_MAX`] are shown). With the console's base URL (`WEBHOOKS_CONSOLE_URL`), it
/// links to the webhook's page in the console, where its delivery history is.
pub fn compose_digest(
    webhook: &WebhookSummary,
    total: u64,
    listed: &[FailureNotice],
    console_base: Option<&str>,
) -> Email {
    let digest = DigestFacts::new(webhook, total, listed, console_base);
    Email {
        subject: format!(
            "[comps-webhooks] Webhook \"{}\": {total} {} permanently failed",
            webhook.name, digest.noun
        ),
        text: text_part(&digest),
        html: html_part(&digest),
    }
}

/// What both parts of a digest say, worked out once.
struct DigestFacts<'a> {
    webhook: &'a WebhookSummary,
    total: u64,
    /// "delivery" or "deliveries", as `total` needs.
    noun: &'static str,
    /// The failures shown: at most [`LISTED_MAX`].
    listed: &'a [FailureNotice],
    /// Failures counted but not listed.
    rest: u64,
    /// The API call that reads the webhook's delivery log.
    log: String,
    /// The webhook's console page: its path alone without the console's base URL.
    console: String,
    /// The link to the page's delivery history, with the console's base URL only.
    page: Option<String>,
    /// The API call that redelivers every failure at once.
    recover: String,
}

impl<'a> DigestFacts<'a> {
    fn new(
        webhook: &'a WebhookSummary,
        total: u64,
        listed: &'a [FailureNotice],
        console_base: Option<&str>,
    ) -> Self {
        let console = format!(
            "{}/admin/webhooks/{}",
            console_base.unwrap_or("").trim_end_matches('/'),
            webhook.id
        );
        let listed = &listed[..listed.len().min(LISTED_MAX)];
        DigestFacts {
            webhook,
            total,
            noun: if total == 1 { "delivery" } else { "deliveries" },
            listed,
            rest: total.saturating_sub(listed.len() as u64),
            log: format!("GET /api/v1/webhooks/{}/attempts", webhook.id),
            page: console_base.map(|_| format!("{console}#deliveries")),
            console,
            recover: format!("POST /api/v1/webhooks/{}/recover", webhook.id),
        }
    }
}

/// The plain text part: the webhook, the page link, each listed failure, the rest counted,
/// what to do.
fn text_part(d: &DigestFacts) -> String {
    let (webhook, total, noun) = (d.webhook, d.total, d.noun);
    let mut text = format!(
        "Webhook: {}\nURL: {}\nWebhook id: {}\n\n{total} {noun} failed permanently and will not be retried.\n",
        webhook.name, webhook.url, webhook.id
    );
    if let Some(page) = &d.page {
        text.push_str(&format!("Its delivery history in the console: {page}\n"));
    }
    if d.rest > 0 {
        text.push_str(&format!("The first {}:\n", d.listed.len()));
    }
    text.push('\n');
    for (i, f) in d.listed.iter().enumerate() {
        text.push_str(&text_item(i + 1, f));
    }
    if d.rest > 0 {
        text.push_str(&format!(
            "…and {} more not listed here. See every attempt in the delivery log: {} (console: {}).\n\n",
            d.rest, d.log, d.console
        ));
    }
    text.push_str(&format!(
        "Fix the receiver, then redeliver from the log, or all at once with {}.\n",
        d.recover
    ));
    text
}

/// One listed failure in the text part, numbered `n`.
fn text_item(n: usize, f: &FailureNotice) -> String {
    format!(
        "{n}. {} {} (event {})\n   Last answer: {}   Attempts: {}   At: {}   Why: {}\n   Delivery: {}\n   Payload: {}\n\n",
        f.event_type,
        f.resource_id.as_deref().map_or("-".to_owned(), |r| format!("resource {r}")),
        f.event_id,
        last_answer(f),
        f.attempts,
        f.failed_at,
        f.reason.describe(),
        f.delivery_id,
        f.excerpt
    )
}

/// The HTML part: the same as the text, the failures in a table, every text escaped.
fn html_part(d: &DigestFacts) -> String {
    let (webhook, total, noun) = (d.webhook, d.total, d.noun);
    let mut html = format!(
        "<h2>Webhook &ldquo;{}&rdquo;: {total} {noun} permanently failed</h2>\
         <p>URL: <code>{}</code><br>Webhook id: <code>{}</code></p>",
        escape(&webhook.name),
        escape(&webhook.url),
        escape(webhook.id.as_str())
    );
    // Before the table: a paragraph inside a <table> is not HTML, and mail clients move it.
    if let Some(page) = &d.page {
        html.push_str(&format!(
            "<p><a href=\"{}\">Open the webhook&rsquo;s delivery history in the console</a></p>",
            escape(page)
        ));
    }
    html.push_str(
        "<table border=\"1\" cellpadding=\"4\" cellspacing=\"0\">\
         <tr><th>#</th><th>Event</th><th>Resource</th><th>Event id</th><th>Last answer</th><th>Attempts</th><th>At</th><th>Why</th><th>Payload</th></tr>",
    );
    for (i, f) in d.listed.iter().enumerate() {
        html.push_str(&html_row(i + 1, f));
    }
    html.push_str("</table>");
    if d.rest > 0 {
        html.push_str(&format!(
            "<p>&hellip;and {} more not listed here. See every attempt in the delivery log: <code>{}</code> (console: <code>{}</code>).</p>",
            d.rest,
            escape(&d.log),
            escape(&d.console)
        ));
    }
    html.push_str(&format!(
        "<p>Fix the receiver, then redeliver from the log, or all at once with <code>{}</code>.</p>",
        escape(&d.recover)
    ));
    html
}

/// One listed failure in the HTML part's table, numbered `n`.
fn html_row(n: usize, f: &FailureNotice) -> String {
    format!(
        "<tr><td>{n}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
        escape(&f.event_type),
        escape(f.resource_id.as_deref().unwrap_or("-")),
        escape(f.event_id.as_str()),
        escape(&last_answer(f)),
        f.attempts,
        escape(&f.failed_at.to_string()),
        f.reason.describe(),
        escape(&f.excerpt)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use webhooks_shared::domain::alerts::{excerpt, FailureReason};
    use webhooks_shared::domain::clock::Timestamp;

    fn failure(i: usize) -> FailureNotice {
        FailureNotice {
            webhook_id: "wh_1".into(),
            delivery_id: format!("dlv_{i}").into(),
            event_id: format!("evt_{i}").into(),
            event_type: "order.completed".into(),
            resource_id: Some(format!("ord_{i}")),
            attempts: 6,
            response_status: if i % 2 == 0 { Some(500) } else { None },
            error: if i % 2 == 0 {
                None
            } else {
                Some("timeout: no answer within 10s".into())
            },
            failed_at: Timestamp::parse("2026-11-27T03:00:00.000Z").expect("time"),
            excerpt: excerpt(r#"{"id":"evt","data":{"note":"<b>"}}"#),
            reason: FailureReason::RetriesExhausted,
        }
    }

    fn webhook() -> WebhookSummary {
        WebhookSummary {
            id: "wh_1".into(),
            name: "CRM <sync>".into(),
            url: "https://crm.example.com/hook".into(),
        }
    }

    #[test]
    fn a_single_failure_is_described_in_full() {
        let email = compose_digest(&webhook(), 1, &[failure(0)], None);
        assert_eq!(
            email.subject,
            "[comps-webhooks] Webhook \"CRM <sync>\": 1 delivery permanently failed"
        );
        for needle in [
            "CRM <sync>",
            "https://crm.example.com/hook",
            "order.completed",
            "resource ord_0",
            "evt_0",
            "HTTP 500",
            "Attempts: 6",
            "2026-11-27T03:00:00.000Z",
            "\"note\"",
        ] {
            assert!(
                email.text.contains(needle),
                "{needle} missing from:\n{}",
                email.text
            );
        }
        assert!(email.html.contains("CRM &lt;sync&gt;"));
        assert!(!email.html.contains("<b>"), "payload is escaped in HTML");
        assert!(!email.text.contains("more not listed"));
    }

    #[test]
    fn a_storm_lists_fifty_and_counts_the_rest() {
        // Only the listed ones are loaded; the total comes from the window's counters.
        let listed: Vec<_> = (0..50).map(failure).collect();
        let email = compose_digest(&webhook(), 120, &listed, None);
        assert!(email.subject.contains("120 deliveries permanently failed"));
        assert!(email.text.contains("50. order.completed"));
        assert!(!email.text.contains("51. order.completed"));
        assert!(email.text.contains("…and 70 more not listed here"));
        assert!(email.text.contains("GET /api/v1/webhooks/wh_1/attempts"));
        assert!(email.text.contains("timeout: no answer within 10s"));
        assert_eq!(email.html.matches("<tr><td>").count(), 50);
    }

    #[test]
    fn the_digest_links_to_the_webhooks_console_page() {
        let email = compose_digest(
            &webhook(),
            1,
            &[failure(0)],
            Some("https://admin.example.com/"),
        );
        let page = "https://admin.example.com/admin/webhooks/wh_1#deliveries";
        assert!(email.text.contains(page), "{}", email.text);
        assert!(
            email.html.contains(&format!("<a href=\"{page}\">")),
            "{}",
            email.html
        );
        // Outside the table: only rows belong in one.
        let table = email.html.find("<table").expect("a table");
        let link = email.html.find("<a href").expect("a link");
        assert!(link < table, "{}", email.html);
        let unlinked = compose_digest(&webhook(), 1, &[failure(0)], None);
        assert!(!unlinked.html.contains("<a href"));
    }

    #[test]
    fn the_facts_list_at_most_fifty_count_the_rest_and_link_only_with_a_base() {
        let webhook = webhook();
        let loaded: Vec<_> = (0..60).map(failure).collect();
        let facts = DigestFacts::new(&webhook, 120, &loaded, None);
        assert_eq!((facts.listed.len(), facts.rest), (LISTED_MAX, 70));
        assert_eq!(facts.noun, "deliveries");
        assert_eq!(facts.console, "/admin/webhooks/wh_1");
        assert_eq!(facts.page, None);
        let linked = DigestFacts::new(&webhook, 1, &loaded[..1], Some("https://a.example.com//"));
        assert_eq!((linked.rest, linked.noun), (0, "delivery"));
        assert_eq!(linked.console, "https://a.example.com/admin/webhooks/wh_1");
        assert_eq!(
            linked.page.as_deref(),
            Some("https://a.example.com/admin/webhooks/wh_1#deliveries")
        );
    }

    #[test]
    fn digests_wait_for_the_window() {
        assert_eq!(digest_due(1000, 10, 900, None), 1010);
        assert_eq!(digest_due(1000, 10, 900, Some(500)), 1400);
        assert_eq!(digest_due(1000, 10, 900, Some(0)), 1010);
    }
}
