//! Deliveries and their attempts (the delivery log).

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use super::{deflated, from_item, inflated, key, query_all, s, to_item, Item, Store, StoreError};
use crate::domain::clock::Timestamp;
use crate::domain::ids::{AttemptId, DeliveryId, WebhookId};
use crate::domain::lifecycle;
use crate::domain::model::{AttemptRecord, DeliveryRecord, RecordedRequest, RecordedResponse};

impl Store {
    // ---- deliveries (manual ones: fan-out deliveries are their attempts) ----

    /// Writes a delivery unless one with its id exists (returns false then).
    pub async fn put_delivery_if_new(&self, delivery: &DeliveryRecord) -> Result<bool, StoreError> {
        self.put_if_absent(&self.tables.deliveries_table, to_item(delivery)?, "id")
            .await
    }

    /// Removes a delivery that never got its queue message (undoing a failed redelivery).
    pub async fn delete_delivery(&self, id: &DeliveryId) -> Result<(), StoreError> {
        self.ddb
            .delete_item()
            .table_name(&self.tables.deliveries_table)
            .key("id", s(id))
            .send()
            .await?;
        Ok(())
    }

    pub async fn get_delivery(
        &self,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.get_by_id(&self.tables.deliveries_table, id.as_str())
            .await
    }

    // ---- attempts (the delivery log) ----
    //
    // One table, partitioned by webhook. A log line's sort key is `<delivery id>#<attempt>`
    // (delivery ids sort by the time the delivery was made): a delivery's lines are one
    // query, and the log reads newest delivery first with no index (an index entry was a
    // write per attempt). The line that ends a delivery unsent (`permanently_failed`,
    // `cancelled`) is also copied under `ended#<at>#<attempt id>`, where `recover` finds it
    // by time; only those deliveries pay that write.

    /// A query of the webhook's items whose sort key starts with `prefix`.
    fn lines_starting(&self, webhook_id: &WebhookId, prefix: &str) -> QueryFluentBuilder {
        self.ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .key_condition_expression("webhook_id = :w AND begins_with(line_key, :p)")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":p", s(prefix))
    }

    /// Every attempt of one delivery, in attempt order (strongly consistent).
    pub async fn attempts_of(
        &self,
        webhook_id: &WebhookId,
        delivery_id: &DeliveryId,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let query = self
            .lines_starting(webhook_id, &format!("{delivery_id}#"))
            .consistent_read(true);
        lines(query_all(query).await?)
    }

    /// Records an attempt unless that attempt number was recorded already (returns false).
    pub async fn put_attempt_if_new(&self, attempt: &AttemptRecord) -> Result<bool, StoreError> {
        let item = keyed(
            attempt,
            line_key(&attempt.delivery.delivery_id, attempt.attempt),
        )?;
        self.put_if_absent(&self.tables.attempts_table, item, "line_key")
            .await
    }

    /// Files the line that ended a delivery unsent where `recover` looks (idempotent).
    pub async fn put_ended(&self, line: &AttemptRecord) -> Result<(), StoreError> {
        self.ddb
            .put_item()
            .table_name(&self.tables.attempts_table)
            .set_item(Some(keyed(line, LogPosition::of(line).key)?))
            .send()
            .await?;
        Ok(())
    }

    pub async fn get_attempt(
        &self,
        webhook_id: &WebhookId,
        delivery_id: &DeliveryId,
        attempt: u32,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.tables.attempts_table)
            .set_key(Some(key([
                ("webhook_id", s(webhook_id)),
                ("line_key", s(line_key(delivery_id, attempt))),
            ])))
            .consistent_read(true)
            .send()
            .await?;
        out.item.map(line).transpose()
    }

    /// The log lines of a webhook's newest deliveries, newest first: at most `limit`, without
    /// the recorded request and response (a line's detail is [`Store::get_attempt`]).
    pub async fn webhook_log(
        &self,
        webhook_id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let limit = limit.max(1) as usize;
        let names = LOG_SUMMARY
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("#a{i}"), (*name).to_owned()))
            .collect();
        let projection = (0..LOG_SUMMARY.len())
            .map(|i| format!("#a{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let query = self
            .lines_starting(webhook_id, LINE_PREFIX)
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .scan_index_forward(false);
        let mut lines = Vec::new();
        let mut start = None;
        // A page ends at 1 MB read: lines with large responses may take more than one.
        loop {
            let page = query
                .clone()
                .limit((limit - lines.len()) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await?;
            lines.extend(self::lines(page.items.unwrap_or_default())?);
            start = page.last_evaluated_key;
            if start.is_none() || lines.len() >= limit {
                return Ok(lines);
            }
        }
    }

    /// The lines that ended a webhook's deliveries unsent from `since` up to `until`, oldest
    /// first, after `after` (from the start of the window without one): at most `limit`
    /// lines, fewer when DynamoDB's 1 MB page ends first. One query, so a caller can act on
    /// each page before the next.
    pub async fn webhook_log_page(
        &self,
        webhook_id: &WebhookId,
        since: Timestamp,
        until: Timestamp,
        after: Option<&LogPosition>,
        limit: u32,
    ) -> Result<LogPage, StoreError> {
        let page = self
            .ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .key_condition_expression("webhook_id = :w AND line_key BETWEEN :since AND :until")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":since", s(format!("{ENDED_PREFIX}{since}")))
            // `ended#<at>#<attempt id>`: '~' sorts after '#', so lines at `until` count.
            .expression_attribute_values(":until", s(format!("{ENDED_PREFIX}{until}~")))
            .set_exclusive_start_key(after.map(|position| position.start_key(webhook_id)))
            .limit(limit.max(1) as i32)
            .send()
            .await?;
        Ok(LogPage {
            more: page.last_evaluated_key().is_some(),
            lines: lines(page.items.unwrap_or_default())?,
        })
    }
}

/// What a log listing reads of each line: all but the recorded request and response.
const LOG_SUMMARY: [&str; 15] = [
    "delivery_id",
    "webhook_id",
    "event_id",
    "event_type",
    "resource_id",
    "manual",
    "attempt",
    "outcome",
    "response_status",
    "error",
    "duration_ms",
    "at",
    "delivery_state",
    "next_attempt_at",
    "expires_at",
];

/// Log lines' sort keys start with their delivery id.
const LINE_PREFIX: &str = DeliveryId::PREFIX;
/// Sort keys of the copies of lines that ended a delivery unsent start with this.
const ENDED_PREFIX: &str = "ended#";

/// The sort key of attempt `attempt` of a delivery (zero-padded, so attempt 10 sorts after 9).
fn line_key(delivery_id: &DeliveryId, attempt: u32) -> String {
    format!("{delivery_id}#{attempt:04}")
}

/// The attribute holding a line's request and response, deflated together (see [`keyed`]).
const EXCHANGE: &str = "exchange_deflate";

/// A line's request and response, as one JSON text to deflate.
#[derive(Serialize, Deserialize)]
struct Exchange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<RecordedRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<RecordedResponse>,
    /// The request's headers that follow from the line (`lifecycle::derived_headers` and
    /// the `User-Agent`) were left out, each exactly as it would be derived again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    derived: bool,
}

/// The request headers of `line` that follow from it, given its `x-comps-timestamp`.
fn derivable(line: &AttemptRecord, timestamp: &str) -> Vec<(String, String)> {
    let mut headers = lifecycle::derived_headers(&line.delivery, line.attempt, timestamp);
    headers.push(("user-agent".into(), lifecycle::USER_AGENT.into()));
    headers
}

impl Exchange {
    /// `line`'s exchange, less the request headers that follow from the line when every one
    /// of them is there as it would be derived (else all are kept).
    fn of(line: &AttemptRecord) -> Self {
        let mut request = line.request.clone();
        let mut derived = false;
        if let Some(request) = request.as_mut() {
            let timestamp = request.headers.get("x-comps-timestamp").cloned();
            if let Some(timestamp) = timestamp {
                let derivable = derivable(line, &timestamp);
                if derivable
                    .iter()
                    .all(|(name, value)| request.headers.get(name) == Some(value))
                {
                    for (name, _) in &derivable {
                        request.headers.remove(name);
                    }
                    derived = true;
                }
            }
        }
        Exchange {
            request,
            response: line.response.clone(),
            derived,
        }
    }

    /// Fills `line`'s request and response in.
    fn restore(self, line: &mut AttemptRecord) {
        line.request = self.request;
        line.response = self.response;
        if let (true, Some(request)) = (self.derived, line.request.as_ref()) {
            let timestamp = request
                .headers
                .get("x-comps-timestamp")
                .cloned()
                .unwrap_or_default();
            let derivable = derivable(line, &timestamp);
            if let Some(request) = line.request.as_mut() {
                request.headers.extend(derivable);
            }
        }
    }
}

/// The item of `line` under the sort key `line_key` (the record itself holds no key of its
/// own: reading ignores the attribute). The request and response are stored deflated
/// together when that is smaller: a line with a real server's answer (ten headers, a short
/// JSON body) then stays within one 1 KB write unit instead of two.
fn keyed(line: &AttemptRecord, line_key: String) -> Result<Item, StoreError> {
    let mut item = to_item(line)?;
    item.insert("line_key".to_owned(), s(line_key));
    if line.request.is_none() && line.response.is_none() {
        return Ok(item);
    }
    let exchange = Exchange::of(line);
    let plain = ["request", "response"]
        .iter()
        .filter_map(|name| item.get(*name).map(|v| name.len() + super::value_size(v)))
        .sum::<usize>();
    let packed = serde_json::to_string(&exchange)
        .ok()
        .and_then(|json| deflated(&json))
        .filter(|bytes| EXCHANGE.len() + bytes.len() < plain);
    if let Some(bytes) = packed {
        item.remove("request");
        item.remove("response");
        item.insert(EXCHANGE.to_owned(), AttributeValue::B(Blob::new(bytes)));
    }
    Ok(item)
}

/// A log line from its item, its request and response inflated if stored deflated.
fn line(mut item: Item) -> Result<AttemptRecord, StoreError> {
    let packed = match item.remove(EXCHANGE) {
        Some(AttributeValue::B(bytes)) => Some(bytes),
        _ => None,
    };
    let mut line: AttemptRecord = from_item(item)?;
    if let Some(bytes) = packed {
        let exchange: Exchange = serde_json::from_str(&inflated(bytes.as_ref())?)
            .map_err(|e| StoreError::Corrupt(format!("stored exchange is not JSON: {e}")))?;
        exchange.restore(&mut line);
    }
    Ok(line)
}

fn lines(items: Vec<Item>) -> Result<Vec<AttemptRecord>, StoreError> {
    items.into_iter().map(line).collect()
}

/// One page of a webhook's ended lines (see [`Store::webhook_log_page`]).
#[derive(Debug, Clone)]
pub struct LogPage {
    pub lines: Vec<AttemptRecord>,
    /// DynamoDB stopped early: the window may hold more lines after the last one. (It may
    /// also say so when the last line happens to end the window.)
    pub more: bool,
}

/// An ended line's place in its webhook's log: its sort key, `ended#<at>#<attempt id>`.
/// Enough to resume a reading after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    at: Timestamp,
    key: String,
}

impl LogPosition {
    pub fn of(line: &AttemptRecord) -> Self {
        LogPosition {
            at: line.at,
            key: format!("{ENDED_PREFIX}{}#{}", line.at, line.id()),
        }
    }

    /// The position a sort key names; `None` if the text is not one we write.
    pub fn from_key(key: &str) -> Option<Self> {
        let (at, attempt_id) = key.strip_prefix(ENDED_PREFIX)?.split_once('#')?;
        let parsed = Timestamp::parse(at)?;
        // Only the fixed-width text we write sorts where the line is.
        if parsed.to_string() != at {
            return None;
        }
        attempt_id.parse::<AttemptId>().ok()?;
        Some(LogPosition {
            at: parsed,
            key: key.to_owned(),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// When the line was written.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// DynamoDB's ExclusiveStartKey for a query of the webhook's partition.
    fn start_key(&self, webhook_id: &WebhookId) -> Item {
        key([("webhook_id", s(webhook_id)), ("line_key", s(&self.key))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_from_its_key() {
        let key = "ended#2026-11-27T03:00:00.123Z#dlv_1.2";
        let position = LogPosition::from_key(key).expect("position");
        assert_eq!(position.key(), key);
        assert_eq!(position.at().to_string(), "2026-11-27T03:00:00.123Z");
        for bad in [
            "",
            "2026-11-27T03:00:00.123Z#dlv_1.2",
            "ended#2026-11-27T03:00:00.123Z",
            "ended#2026-11-27T03:00:00Z#dlv_1.2",
            "ended#yesterday#dlv_1.2",
            "ended#2026-11-27T03:00:00.123Z#dlv_1",
            "ended#2026-11-27T03:00:00.123Z#x.1",
        ] {
            assert_eq!(LogPosition::from_key(bad), None, "{bad}");
        }
    }

    /// A sent attempt's line as deliver writes it: every header it sent, and the answer of
    /// a real server (ten headers as nginx, a CDN or a load balancer add, and a short JSON
    /// body, as the benches' receivers answer).
    fn sent_line() -> AttemptRecord {
        use crate::domain::lifecycle::{recorded_request, wire_headers};
        use crate::domain::model::{AttemptOutcome, DeliveryRef, DeliveryState};
        use crate::domain::signing::SigningSecret;
        let delivery = DeliveryRef {
            delivery_id: "dlv_01kbmd6q2r3s4t5v6w7x8y9z0a".into(),
            webhook_id: "wh_01kbmd5f2g3h4j5k6m7n8p9q0r".into(),
            event_id: "evt_01KBMD6Q2R3S4T5V6W7X8Y9Z0A".into(),
            event_type: "order.completed".into(),
            resource_id: Some("ord_1042".into()),
            manual: false,
        };
        let now = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_796_000_000);
        let mut line = AttemptRecord::line(
            &delivery,
            1,
            now,
            std::time::Duration::from_secs(30 * 86_400),
        );
        let headers = wire_headers(
            &SigningSecret::generate(),
            &delivery,
            1,
            1_796_000_000,
            &[b'x'; 1024],
        );
        line.request = Some(recorded_request(
            "https://hooks.example.com/comps/webhooks",
            &headers,
        ));
        let answer: [(&str, &str); 10] = [
            ("server", "nginx/1.25.3"),
            ("date", "Thu, 03 Dec 2026 10:00:00 GMT"),
            ("content-type", "application/json; charset=utf-8"),
            ("content-length", "199"),
            ("connection", "keep-alive"),
            ("x-request-id", "7c3f5a1e-9b2d-4e8f-a6c1-3d5e7f9b1a2c"),
            ("cache-control", "no-cache, no-store"),
            (
                "strict-transport-security",
                "max-age=31536000; includeSubDomains",
            ),
            ("x-content-type-options", "nosniff"),
            (
                "x-amz-cf-id",
                "Xk3v9QpL2mN8rT5wY7zB1cD4fG6hJ0kM3nP5qS7tU9vW2xY4zA6bC8==",
            ),
        ];
        line.response = Some(RecordedResponse {
            status: 200,
            headers: answer.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            body: r#"{"received":true,"status":"accepted","request_id":"7c3f5a1e-9b2d-4e8f-a6c1-3d5e7f9b1a2c","queued_at":"2026-12-03T10:00:00.000Z","message":"Webhook received; it will be processed shortly."}"#.into(),
            truncated: false,
        });
        line.response_status = Some(200);
        line.outcome = AttemptOutcome::Succeeded;
        line.delivery_state = DeliveryState::Succeeded;
        line.duration_ms = 184;
        line
    }

    #[test]
    fn a_sent_line_with_a_real_servers_answer_is_one_write_unit_and_reads_back_whole() {
        let line = sent_line();
        let plain = super::super::item_size(&to_item(&line).unwrap());
        let item = keyed(&line, line_key(&line.delivery.delivery_id, 1)).unwrap();
        let size = super::super::item_size(&item);
        assert!(plain > 1024, "the case worth packing: {plain} bytes plain");
        assert!(size <= 1024, "{size} bytes: more than one write unit");
        assert!(item.contains_key(EXCHANGE) && !item.contains_key("request"));
        assert_eq!(self::line(item).unwrap(), line);
    }

    #[test]
    fn request_headers_that_differ_from_their_derivation_are_all_kept() {
        let mut line = sent_line();
        if let Some(request) = line.request.as_mut() {
            request
                .headers
                .insert("user-agent".into(), "comps-webhooks/0.0.1".into());
        }
        let item = keyed(&line, "k".into()).unwrap();
        assert_eq!(self::line(item).unwrap(), line);
        assert!(!Exchange::of(&line).derived);
        assert!(Exchange::of(&sent_line()).derived);
    }

    #[test]
    fn a_line_without_an_exchange_is_stored_as_it_is() {
        let mut line = sent_line();
        line.request = None;
        line.response = None;
        let item = keyed(&line, "k".into()).unwrap();
        assert!(!item.contains_key(EXCHANGE));
        assert_eq!(self::line(item).unwrap(), line);
    }

    #[test]
    fn line_keys_sort_by_delivery_then_attempt() {
        let d = DeliveryId::from("dlv_01kb");
        assert_eq!(line_key(&d, 3), "dlv_01kb#0003");
        assert!(line_key(&d, 10) > line_key(&d, 9));
        assert!(line_key(&DeliveryId::from("dlv_01kc"), 1) > line_key(&d, 10));
        assert!(line_key(&d, 1).starts_with(LINE_PREFIX));
    }
}
