//! Webhooks and their subscriptions (one item per event type, so fan-out is a query),
//! written together in transactions.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValue;

use super::{
    from_items, key, n, output_unless_condition_failed, s, to_item, unless_condition_failed, Store,
    StoreError,
};
use crate::domain::circuit::OPEN_AFTER;
use crate::domain::clock::Timestamp;
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
        // The webhook's id as the idempotency token: when the SDK sends the transaction again
        // after one that went through but whose answer was lost, DynamoDB answers it as done
        // (for 10 minutes) instead of failing its condition, so the admin gets the 201 and
        // the secret rather than a 503 for a webhook that exists. (moto ignores the token.)
        self.ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(w.id.to_string())
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

    /// One page of the webhooks: at most `limit`, after the webhook `after` (a cursor: the
    /// last of the page before), and the one to give as `after` for the next page (none:
    /// this was the last). One `Scan` of at most `limit + 1` items, strongly consistent: the
    /// table is never read whole for one answer. In the table's order (DynamoDB's, by key:
    /// stable from page to page, but not by time or name); a webhook created or deleted
    /// between two pages may or may not be on the later one, every other webhook is on
    /// exactly one page.
    pub async fn list_webhooks(
        &self,
        limit: u32,
        after: Option<&WebhookId>,
    ) -> Result<(Vec<WebhookRecord>, Option<WebhookId>), StoreError> {
        let limit = limit.max(1);
        // One more than asked, so a full last page says there is nothing after it (with
        // `Limit` = `limit`, DynamoDB answers a next key after a page that ends the table).
        let out = self
            .ddb
            .scan()
            .table_name(&self.tables.webhooks_table)
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX).saturating_add(1))
            .set_exclusive_start_key(after.map(|id| key([("id", s(id))])))
            .send()
            .await?;
        let mut webhooks = from_items::<WebhookRecord>(out.items.unwrap_or_default())?;
        let next = if webhooks.len() > limit as usize {
            webhooks.truncate(limit as usize);
            webhooks.last().map(|w| w.id.clone())
        } else {
            // Fewer than asked with a next key: DynamoDB stopped at 1 MB read.
            out.last_evaluated_key
                .and_then(|key| key.get("id")?.as_s().ok().cloned())
                .map(WebhookId::from)
        };
        Ok((webhooks, next))
    }

    /// The webhooks subscribed to `event_type`: one query, however many webhooks exist.
    pub async fn subscribers(
        &self,
        event_type: &str,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        self.partition(&self.tables.subscriptions_table, "event_type", event_type)
            .await
    }

    /// An `UpdateItem` of `id`'s item.
    fn webhook_update(&self, id: &WebhookId) -> UpdateItemFluentBuilder {
        self.ddb
            .update_item()
            .table_name(&self.tables.webhooks_table)
            .key("id", s(id))
    }

    // ---- an endpoint's circuit breaker (domain::circuit); never bumps the revision, so an
    // admin's change made meanwhile still applies (and, replacing the item, closes it) ----

    /// One more attempt to `id`'s endpoint got no answer (`error`); at [`OPEN_AFTER`] in a
    /// row the circuit opens, with its first probe at `probe_at`. Nothing is written for a
    /// webhook deleted meanwhile.
    pub async fn count_endpoint_failure(
        &self,
        id: &WebhookId,
        error: &str,
        now: Timestamp,
        probe_at: Timestamp,
    ) -> Result<(), StoreError> {
        let counted = output_unless_condition_failed(
            self.webhook_update(id)
                .update_expression(
                    "SET failures_in_row = if_not_exists(failures_in_row, :zero) + :one, \
                     last_failure = :error",
                )
                .condition_expression("attribute_exists(id)")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":error", s(error))
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await,
        )?;
        let in_row = counted
            .as_ref()
            .and_then(|out| out.attributes()?.get("failures_in_row")?.as_n().ok())
            .and_then(|text| text.parse::<u32>().ok())
            .unwrap_or(0);
        if in_row < OPEN_AFTER {
            return Ok(());
        }
        // Opened once: the attempts that keep failing meanwhile find it open already.
        unless_condition_failed(
            self.webhook_update(id)
                .update_expression("SET circuit_opened_at = :now, probe_at = :probe")
                .condition_expression(
                    "attribute_exists(id) AND attribute_not_exists(circuit_opened_at)",
                )
                .expression_attribute_values(":now", s(now.to_string()))
                .expression_attribute_values(":probe", s(probe_at.to_string()))
                .send()
                .await,
        )?;
        Ok(())
    }

    /// Claims the probe of `id`'s open circuit that was due at `seen`, moving the next one
    /// to `next`: true for the one caller that gets it.
    pub async fn claim_probe(
        &self,
        id: &WebhookId,
        seen: Timestamp,
        next: Timestamp,
    ) -> Result<bool, StoreError> {
        unless_condition_failed(
            self.webhook_update(id)
                .update_expression("SET probe_at = :next")
                .condition_expression(
                    "attribute_exists(circuit_opened_at) AND (probe_at = :seen OR attribute_not_exists(probe_at))",
                )
                .expression_attribute_values(":seen", s(seen.to_string()))
                .expression_attribute_values(":next", s(next.to_string()))
                .send()
                .await,
        )
    }

    /// `id`'s endpoint answered: its circuit is closed and its count of failures cleared.
    pub async fn close_circuit(&self, id: &WebhookId) -> Result<(), StoreError> {
        unless_condition_failed(
            self.webhook_update(id)
                .update_expression(
                    "REMOVE failures_in_row, circuit_opened_at, probe_at, last_failure, \
                     awaiting_answer_since",
                )
                .condition_expression("attribute_exists(id)")
                .send()
                .await,
        )?;
        Ok(())
    }

    /// An attempt to `id`'s endpoint has waited long for an answer, at `now`.
    pub async fn mark_awaiting_answer(
        &self,
        id: &WebhookId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        unless_condition_failed(
            self.webhook_update(id)
                .update_expression("SET awaiting_answer_since = :now")
                .condition_expression("attribute_exists(id)")
                .expression_attribute_values(":now", s(now.to_string()))
                .send()
                .await,
        )?;
        Ok(())
    }

    /// Takes slot `slot` of `id`'s endpoint until `until`, if it is free (or its holder's
    /// time ran out by `now`): true if taken.
    pub async fn take_slot(
        &self,
        id: &WebhookId,
        slot: usize,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        unless_condition_failed(
            self.webhook_update(id)
                .update_expression("SET #slot = :until")
                .condition_expression(
                    "attribute_exists(id) AND (attribute_not_exists(#slot) OR #slot < :now)",
                )
                .expression_attribute_names("#slot", slot_name(slot))
                .expression_attribute_values(":until", s(until.to_string()))
                .expression_attribute_values(":now", s(now.to_string()))
                .send()
                .await,
        )
    }

    /// Gives back slot `slot`, taken until `until` (not if another holder has it since).
    pub async fn release_slot(
        &self,
        id: &WebhookId,
        slot: usize,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        unless_condition_failed(
            self.webhook_update(id)
                .update_expression("REMOVE #slot")
                .condition_expression("#slot = :until")
                .expression_attribute_names("#slot", slot_name(slot))
                .expression_attribute_values(":until", s(until.to_string()))
                .send()
                .await,
        )?;
        Ok(())
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

/// The attribute of an endpoint's in-flight slot `slot` on its webhook's item (kept out of
/// the webhook record: only these calls read or write it, and an admin's change of the
/// webhook frees them all).
fn slot_name(slot: usize) -> String {
    format!("in_flight_{slot}")
}
