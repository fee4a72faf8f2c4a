//! Webhooks and their subscriptions (one item per event type, so fan-out is a query),
//! written together in transactions.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::{from_items, n, s, to_item, Store, StoreError};
use crate::domain::ids::WebhookId;
use crate::domain::model::{SubscriptionRecord, WebhookRecord};

impl Store {
    // ---- webhooks and their subscriptions ----

    fn subscription_put(
        &self,
        w: &WebhookRecord,
        event_type: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let sub = SubscriptionRecord {
            event_type: event_type.to_owned(),
            webhook_id: w.id.clone(),
            active: w.status == crate::domain::model::WebhookStatus::Active,
        };
        let put = Put::builder()
            .table_name(&self.tables.subscriptions_table)
            .set_item(Some(to_item(&sub)?))
            .build()?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn subscription_delete(
        &self,
        webhook_id: &WebhookId,
        event_type: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.tables.subscriptions_table)
            .key("event_type", s(event_type))
            .key("webhook_id", s(webhook_id))
            .build()?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes a new webhook and its subscriptions in one transaction.
    pub async fn create_webhook(&self, w: &WebhookRecord) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.webhooks_table)
            .set_item(Some(to_item(w)?))
            .condition_expression("attribute_not_exists(id)")
            .build()?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for event_type in &w.events {
            items.push(self.subscription_put(w, event_type)?);
        }
        self.ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await?;
        Ok(())
    }

    /// Deletes a webhook and its subscriptions in one transaction, provided nobody changed it
    /// since `w` was read (its subscriptions are the ones `w` lists). Returns false otherwise.
    pub async fn delete_webhook(&self, w: &WebhookRecord) -> Result<bool, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.tables.webhooks_table)
            .key("id", s(&w.id))
            .condition_expression("revision = :seen")
            .expression_attribute_values(":seen", n(w.revision))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for event_type in &w.events {
            items.push(self.subscription_delete(&w.id, event_type)?);
        }
        self.transact_unless_canceled(items).await
    }

    /// Replaces a webhook and brings its subscriptions in line, in one transaction, provided
    /// nobody changed it since `old` was read. Returns false on such a concurrent change.
    pub async fn update_webhook(
        &self,
        old: &WebhookRecord,
        new: &WebhookRecord,
    ) -> Result<bool, StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.webhooks_table)
            .set_item(Some(to_item(new)?))
            .condition_expression("revision = :seen")
            .expression_attribute_values(":seen", n(old.revision))
            .build()?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for dropped in old.events.iter().filter(|e| !new.events.contains(e)) {
            items.push(self.subscription_delete(&old.id, dropped)?);
        }
        for event_type in &new.events {
            items.push(self.subscription_put(new, event_type)?);
        }
        self.transact_unless_canceled(items).await
    }

    pub async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        self.get_by_id(&self.tables.webhooks_table, id.as_str())
            .await
    }

    /// Every webhook, oldest first. An admin listing: fine to read the whole (small) table.
    pub async fn list_webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let items = self
            .ddb
            .scan()
            .table_name(&self.tables.webhooks_table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await?;
        let mut webhooks = from_items::<WebhookRecord>(items)?;
        webhooks.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(webhooks)
    }

    /// The webhooks subscribed to `event_type`: one query, however many webhooks exist.
    pub async fn subscribers(
        &self,
        event_type: &str,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.partition(&self.tables.subscriptions_table, "event_type", event_type)
            .await
    }

    /// Writes `items` in one transaction: true if written, false if a condition failed.
    async fn transact_unless_canceled(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<bool, StoreError> {
        match self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(err.into()),
        }
    }
}
