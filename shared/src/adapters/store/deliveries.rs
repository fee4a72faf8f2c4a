//! Deliveries and their attempts (the delivery log).

use super::{from_item, key, n, s, to_item, Store, StoreError};
use crate::domain::clock::Timestamp;
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::model::{AttemptRecord, DeliveryRecord};

/// Name of the attempts table's index for one webhook's log, newest first.
pub const WEBHOOK_LOG_INDEX: &str = "by_webhook";

impl Store {
    // ---- deliveries ----

    /// Writes deliveries in batches. Delivery ids are deterministic, so writing one again
    /// is harmless.
    pub async fn put_deliveries(&self, deliveries: &[DeliveryRecord]) -> Result<(), StoreError> {
        let items = deliveries
            .iter()
            .map(to_item)
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(&self.tables.deliveries_table, items).await
    }

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

    /// A webhook's log lines from `since` up to `until`, oldest first, at most `max` of them.
    pub async fn webhook_log_between(
        &self,
        webhook_id: &WebhookId,
        since: Timestamp,
        until: Timestamp,
        max: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut lines = self
            .ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .index_name(WEBHOOK_LOG_INDEX)
            .key_condition_expression("webhook_id = :w AND at_key BETWEEN :since AND :until")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":since", s(since.to_string()))
            // at_key is `at#attempt_id`: '~' sorts after '#', so lines at `until` count.
            .expression_attribute_values(":until", s(format!("{until}~")))
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while let Some(item) = lines.next().await {
            found.push(from_item(item?)?);
            if found.len() >= max {
                break;
            }
        }
        Ok(found)
    }
}
