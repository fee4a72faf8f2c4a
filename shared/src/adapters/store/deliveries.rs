//! Deliveries and their attempts (the delivery log).

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;

use super::{from_items, key, query_all, s, to_item, Item, Store, StoreError};
use crate::domain::clock::Timestamp;
use crate::domain::ids::{parse_attempt_id, DeliveryId, WebhookId};
use crate::domain::model::{AttemptRecord, DeliveryRecord};

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
        from_items(query_all(query).await?)
    }

    /// Every attempt of the deliveries to `webhook_id` whose ids sort from `first` to `last`
    /// (strongly consistent), by delivery: one query for a batch of deliveries made close
    /// together (delivery ids sort by when they were made). Deliveries without a line are
    /// absent.
    pub async fn attempts_between(
        &self,
        webhook_id: &WebhookId,
        first: &DeliveryId,
        last: &DeliveryId,
    ) -> Result<HashMap<DeliveryId, Vec<AttemptRecord>>, StoreError> {
        let query = self
            .ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .key_condition_expression("webhook_id = :w AND line_key BETWEEN :first AND :last")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":first", s(format!("{first}#")))
            // `~` sorts after every attempt number.
            .expression_attribute_values(":last", s(format!("{last}#~")))
            .consistent_read(true);
        let lines: Vec<AttemptRecord> = from_items(query_all(query).await?)?;
        let mut by_delivery: HashMap<DeliveryId, Vec<AttemptRecord>> = HashMap::new();
        for line in lines {
            by_delivery
                .entry(line.delivery.delivery_id.clone())
                .or_default()
                .push(line);
        }
        Ok(by_delivery)
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
        self.get(
            &self.tables.attempts_table,
            key([
                ("webhook_id", s(webhook_id)),
                ("line_key", s(line_key(delivery_id, attempt))),
            ]),
        )
        .await
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
            lines.extend(from_items::<AttemptRecord>(page.items.unwrap_or_default())?);
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
            lines: from_items(page.items.unwrap_or_default())?,
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
const LINE_PREFIX: &str = "dlv_";
/// Sort keys of the copies of lines that ended a delivery unsent start with this.
const ENDED_PREFIX: &str = "ended#";

/// The sort key of attempt `attempt` of a delivery (zero-padded, so attempt 10 sorts after 9).
fn line_key(delivery_id: &DeliveryId, attempt: u32) -> String {
    format!("{delivery_id}#{attempt:04}")
}

/// The item of `line` under the sort key `line_key` (the record itself holds no key of its
/// own: reading ignores the attribute).
fn keyed(line: &AttemptRecord, line_key: String) -> Result<Item, StoreError> {
    let mut item = to_item(line)?;
    item.insert("line_key".to_owned(), s(line_key));
    Ok(item)
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
        parse_attempt_id(attempt_id)?;
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

    #[test]
    fn line_keys_sort_by_delivery_then_attempt() {
        let d = DeliveryId::from("dlv_01kb");
        assert_eq!(line_key(&d, 3), "dlv_01kb#0003");
        assert!(line_key(&d, 10) > line_key(&d, 9));
        assert!(line_key(&DeliveryId::from("dlv_01kc"), 1) > line_key(&d, 10));
        assert!(line_key(&d, 1).starts_with(LINE_PREFIX));
    }
}
