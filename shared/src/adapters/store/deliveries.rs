//! Deliveries and their attempts (the delivery log).

use super::{from_item, from_items, key, n, s, to_item, Item, Store, StoreError};
use crate::domain::clock::Timestamp;
use crate::domain::ids::{parse_attempt_id, DeliveryId, WebhookId};
use crate::domain::model::{AttemptRecord, DeliveryRecord};

/// Name of the attempts table's index for one webhook's log, newest first.
pub const WEBHOOK_LOG_INDEX: &str = "by_webhook";

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

    /// Every attempt of one delivery, in attempt order (strongly consistent).
    pub async fn attempts_of(
        &self,
        delivery_id: &DeliveryId,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        self.partition(
            &self.tables.attempts_table,
            "delivery_id",
            delivery_id.as_str(),
        )
        .await
    }

    /// Records an attempt unless that attempt number was recorded already (returns false).
    pub async fn put_attempt_if_new(&self, attempt: &AttemptRecord) -> Result<bool, StoreError> {
        self.put_if_absent(
            &self.tables.attempts_table,
            to_item(attempt)?,
            "delivery_id",
        )
        .await
    }

    pub async fn get_attempt(
        &self,
        delivery_id: &DeliveryId,
        attempt: u32,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.get(
            &self.tables.attempts_table,
            key([("delivery_id", s(delivery_id)), ("attempt", n(attempt))]),
        )
        .await
    }

    /// The newest `limit` log lines of a webhook, newest first.
    pub async fn webhook_log(
        &self,
        webhook_id: &WebhookId,
        limit: u32,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let page = self
            .ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .index_name(WEBHOOK_LOG_INDEX)
            .key_condition_expression("webhook_id = :w")
            .expression_attribute_values(":w", s(webhook_id))
            .scan_index_forward(false)
            .limit(limit.max(1) as i32)
            .send()
            .await?;
        page.items()
            .iter()
            .map(|item| from_item(item.clone()))
            .collect()
    }

    /// A webhook's log lines from `since` up to `until`, oldest first, after `after` (from
    /// the start of the window without one): at most `limit` lines, fewer when DynamoDB's
    /// 1 MB page ends first. One query, so a caller can act on each page before the next.
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
            .index_name(WEBHOOK_LOG_INDEX)
            .key_condition_expression("webhook_id = :w AND at_key BETWEEN :since AND :until")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":since", s(since.to_string()))
            // at_key is `at#attempt_id`: '~' sorts after '#', so lines at `until` count.
            .expression_attribute_values(":until", s(format!("{until}~")))
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

/// One page of a webhook's log (see [`Store::webhook_log_page`]).
#[derive(Debug, Clone)]
pub struct LogPage {
    pub lines: Vec<AttemptRecord>,
    /// DynamoDB stopped early: the window may hold more lines after the last one. (It may
    /// also say so when the last line happens to end the window.)
    pub more: bool,
}

/// A line's place in its webhook's log: its `at_key` (`<at>#<attempt id>`, the log index's
/// sort key), from which its table key follows. Enough to resume a reading after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogPosition {
    at: Timestamp,
    at_key: String,
    delivery_id: DeliveryId,
    attempt: u32,
}

impl LogPosition {
    pub fn of(line: &AttemptRecord) -> Self {
        LogPosition {
            at: line.at,
            at_key: line.at_key.clone(),
            delivery_id: line.delivery.delivery_id.clone(),
            attempt: line.attempt,
        }
    }

    /// The position an `at_key` names; `None` if the text is not one we write.
    pub fn from_at_key(at_key: &str) -> Option<Self> {
        let (at, attempt_id) = at_key.split_once('#')?;
        let parsed = Timestamp::parse(at)?;
        // Only the fixed-width text we write sorts where the line is.
        if parsed.to_string() != at {
            return None;
        }
        let (delivery_id, attempt) = parse_attempt_id(attempt_id)?;
        Some(LogPosition {
            at: parsed,
            at_key: at_key.to_owned(),
            delivery_id,
            attempt,
        })
    }

    pub fn at_key(&self) -> &str {
        &self.at_key
    }

    /// When the line was written.
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// DynamoDB's ExclusiveStartKey for a query of the log index: the index key and the
    /// table key of the line.
    fn start_key(&self, webhook_id: &WebhookId) -> Item {
        key([
            ("webhook_id", s(webhook_id)),
            ("at_key", s(&self.at_key)),
            ("delivery_id", s(&self.delivery_id)),
            ("attempt", n(self.attempt)),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_reads_back_from_its_at_key() {
        let at_key = "2026-11-27T03:00:00.123Z#dlv_1.2";
        let position = LogPosition::from_at_key(at_key).expect("position");
        assert_eq!(position.at_key(), at_key);
        assert_eq!(position.at().to_string(), "2026-11-27T03:00:00.123Z");
        assert_eq!(position.delivery_id, "dlv_1");
        assert_eq!(position.attempt, 2);
        for bad in [
            "",
            "2026-11-27T03:00:00.123Z",
            "2026-11-27T03:00:00Z#dlv_1.2",
            "yesterday#dlv_1.2",
            "2026-11-27T03:00:00.123Z#dlv_1",
            "2026-11-27T03:00:00.123Z#x.1",
        ] {
            assert_eq!(LogPosition::from_at_key(bad), None, "{bad}");
        }
    }
}
