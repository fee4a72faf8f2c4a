//! DynamoDB adapter: the five tables of `template.yaml`, and nothing but storage here.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, PutRequest, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use crate::alerts::{AlertWindow, FailureNotice, WindowState};
use crate::config::Resources;
use crate::model::{AttemptRecord, DeliveryRecord, EventRecord, SubscriptionRecord, WebhookRecord};

/// Name of the attempts table's index for one webhook's log, newest first.
pub const WEBHOOK_LOG_INDEX: &str = "by_webhook";
/// BatchWriteItem takes at most 25 items.
const BATCH_WRITE_MAX: usize = 25;

type Item = HashMap<String, AttributeValue>;

/// Alerts table: `failure#<delivery id>` items and one `window` item per webhook.
const FAILURE_PREFIX: &str = "failure#";
const WINDOW_SK: &str = "window";

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct AlertFailureItem {
    webhook_id: String,
    sk: String,
    notice: FailureNotice,
    /// Present while the failure waits for its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<bool>,
    expires_at: i64,
}

impl AlertFailureItem {
    fn new(notice: &FailureNotice, pending: bool, expires_at: i64) -> Self {
        AlertFailureItem {
            webhook_id: notice.webhook_id.clone(),
            sk: format!("{FAILURE_PREFIX}{}", notice.delivery_id),
            notice: notice.clone(),
            pending: pending.then_some(true),
            expires_at,
        }
    }
}

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB call failed: {0}")]
    Dynamo(String),
    #[error("stored item cannot be read or written: {0}")]
    Codec(String),
    #[error("DynamoDB left {0} items unwritten after retries")]
    Unprocessed(usize),
}

fn dynamo(err: impl std::error::Error) -> StoreError {
    StoreError::Dynamo(DisplayErrorContext(err).to_string())
}

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Codec(e.to_string()))
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Codec(e.to_string()))
}

fn from_items<T: DeserializeOwned>(items: Vec<Item>) -> Result<Vec<T>, StoreError> {
    items.into_iter().map(from_item).collect()
}

/// Every item a query finds, over all its pages.
async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    query
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(dynamo)
}

/// The result of a conditional write: true if written, false if its condition failed.
fn unless_condition_failed<O, E>(
    result: Result<O, SdkError<E, HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err)
            if err.as_service_error().and_then(|e| e.code())
                == Some("ConditionalCheckFailedException") =>
        {
            Ok(false)
        }
        Err(err) => Err(dynamo(err)),
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

#[derive(Debug, Clone)]
pub struct Store {
    ddb: Client,
    tables: Resources,
}

impl Store {
    pub fn new(ddb: Client, tables: Resources) -> Self {
        Store { ddb, tables }
    }

    // ---- webhooks and their subscriptions ----

    fn subscription_put(
        &self,
        w: &WebhookRecord,
        event_type: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let sub = SubscriptionRecord {
            event_type: event_type.to_owned(),
            webhook_id: w.id.clone(),
            active: w.status == crate::model::WebhookStatus::Active,
        };
        let put = Put::builder()
            .table_name(&self.tables.subscriptions_table)
            .set_item(Some(to_item(&sub)?))
            .build()
            .map_err(dynamo)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn subscription_delete(
        &self,
        webhook_id: &str,
        event_type: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.tables.subscriptions_table)
            .key("event_type", s(event_type))
            .key("webhook_id", s(webhook_id))
            .build()
            .map_err(dynamo)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes a new webhook and its subscriptions in one transaction.
    pub async fn create_webhook(&self, w: &WebhookRecord) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.tables.webhooks_table)
            .set_item(Some(to_item(w)?))
            .condition_expression("attribute_not_exists(id)")
            .build()
            .map_err(dynamo)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for event_type in &w.events {
            items.push(self.subscription_put(w, event_type)?);
        }
        self.ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(dynamo)?;
        Ok(())
    }

    /// Deletes a webhook and its subscriptions in one transaction.
    pub async fn delete_webhook(&self, w: &WebhookRecord) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(&self.tables.webhooks_table)
            .key("id", s(&w.id))
            .build()
            .map_err(dynamo)?;
        let mut items = vec![TransactWriteItem::builder().delete(delete).build()];
        for event_type in &w.events {
            items.push(self.subscription_delete(&w.id, event_type)?);
        }
        self.ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map_err(dynamo)?;
        Ok(())
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
            .build()
            .map_err(dynamo)?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        for dropped in old.events.iter().filter(|e| !new.events.contains(e)) {
            items.push(self.subscription_delete(&old.id, dropped)?);
        }
        for event_type in &new.events {
            items.push(self.subscription_put(new, event_type)?);
        }
        let result = self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_transaction_canceled_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(dynamo(err)),
        }
    }

    pub async fn get_webhook(&self, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        self.get(
            &self.tables.webhooks_table,
            HashMap::from([("id".into(), s(id))]),
        )
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
            .await
            .map_err(dynamo)?;
        let mut webhooks = from_items::<WebhookRecord>(items)?;
        webhooks.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(webhooks)
    }

    /// The webhooks subscribed to `event_type`: one query, however many webhooks exist.
    pub async fn subscribers(
        &self,
        event_type: &str,
    ) -> Result<Vec<SubscriptionRecord>, StoreError> {
        let query = self
            .ddb
            .query()
            .table_name(&self.tables.subscriptions_table)
            .key_condition_expression("event_type = :t")
            .expression_attribute_values(":t", s(event_type))
            .consistent_read(true);
        from_items(query_all(query).await?)
    }

    // ---- events ----

    /// Stores a new event. When the id exists already, returns the stored event instead.
    pub async fn put_event_if_new(
        &self,
        event: &EventRecord,
    ) -> Result<Option<EventRecord>, StoreError> {
        if self
            .put_if_absent(&self.tables.events_table, to_item(event)?, "id")
            .await?
        {
            return Ok(None);
        }
        self.get_event(&event.id).await
    }

    pub async fn mark_fanned_out(&self, event_id: &str, deliveries: u32) -> Result<(), StoreError> {
        self.ddb
            .update_item()
            .table_name(&self.tables.events_table)
            .key("id", s(event_id))
            .update_expression("SET deliveries = :n")
            .expression_attribute_values(":n", n(deliveries))
            .send()
            .await
            .map_err(dynamo)?;
        Ok(())
    }

    pub async fn get_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        self.get(
            &self.tables.events_table,
            HashMap::from([("id".into(), s(id))]),
        )
        .await
    }

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
    pub async fn delete_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.ddb
            .delete_item()
            .table_name(&self.tables.deliveries_table)
            .key("id", s(id))
            .send()
            .await
            .map_err(dynamo)?;
        Ok(())
    }

    pub async fn get_delivery(&self, id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        self.get(
            &self.tables.deliveries_table,
            HashMap::from([("id".into(), s(id))]),
        )
        .await
    }

    // ---- attempts (the delivery log) ----

    /// Every attempt of one delivery, in attempt order (strongly consistent).
    pub async fn attempts_of(&self, delivery_id: &str) -> Result<Vec<AttemptRecord>, StoreError> {
        let query = self
            .ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .key_condition_expression("delivery_id = :d")
            .expression_attribute_values(":d", s(delivery_id))
            .consistent_read(true);
        from_items(query_all(query).await?)
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
        delivery_id: &str,
        attempt: u32,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        self.get(
            &self.tables.attempts_table,
            HashMap::from([
                ("delivery_id".into(), s(delivery_id)),
                ("attempt".into(), n(attempt)),
            ]),
        )
        .await
    }

    /// The newest `limit` log lines of a webhook, newest first.
    pub async fn webhook_log(
        &self,
        webhook_id: &str,
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
            .await
            .map_err(dynamo)?;
        page.items()
            .iter()
            .map(|item| from_item(item.clone()))
            .collect()
    }

    /// A webhook's log lines from `since` up to `until` (RFC 3339 millisecond strings), oldest
    /// first, at most `max` of them.
    pub async fn webhook_log_between(
        &self,
        webhook_id: &str,
        since: &str,
        until: &str,
        max: usize,
    ) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut lines = self
            .ddb
            .query()
            .table_name(&self.tables.attempts_table)
            .index_name(WEBHOOK_LOG_INDEX)
            .key_condition_expression("webhook_id = :w AND at_key BETWEEN :since AND :until")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":since", s(since))
            // at_key is `at#attempt_id`: '~' sorts after '#', so lines at `until` count.
            .expression_attribute_values(":until", s(&format!("{until}~")))
            .into_paginator()
            .items()
            .send();
        let mut found = Vec::new();
        while let Some(item) = lines.next().await {
            found.push(from_item(item.map_err(dynamo)?)?);
            if found.len() >= max {
                break;
            }
        }
        Ok(found)
    }

    // ---- alerts: failures waiting for their digest, and each webhook's digest window ----

    /// Records a failure for the next digest. False when this delivery's failure is known
    /// already (a repeated notice), so no failure is counted or sent twice.
    pub async fn put_alert_failure_if_new(
        &self,
        notice: &FailureNotice,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let item = AlertFailureItem::new(notice, true, expires_at);
        self.put_if_absent(&self.tables.alerts_table, to_item(&item)?, "sk")
            .await
    }

    /// The failures of a webhook not yet sent in a digest, oldest first.
    pub async fn pending_alert_failures(
        &self,
        webhook_id: &str,
    ) -> Result<Vec<FailureNotice>, StoreError> {
        let query = self
            .ddb
            .query()
            .table_name(&self.tables.alerts_table)
            .key_condition_expression("webhook_id = :w AND begins_with(sk, :f)")
            .filter_expression("attribute_exists(pending)")
            .expression_attribute_values(":w", s(webhook_id))
            .expression_attribute_values(":f", s(FAILURE_PREFIX))
            .consistent_read(true);
        let mut failures: Vec<FailureNotice> =
            from_items::<AlertFailureItem>(query_all(query).await?)?
                .into_iter()
                .map(|item| item.notice)
                .collect();
        failures
            .sort_by(|a, b| (&a.failed_at, &a.delivery_id).cmp(&(&b.failed_at, &b.delivery_id)));
        Ok(failures)
    }

    /// Marks failures as sent (they stay, so a repeated notice is still recognised).
    pub async fn mark_alert_failures_sent(
        &self,
        failures: &[FailureNotice],
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let items = failures
            .iter()
            .map(|notice| to_item(&AlertFailureItem::new(notice, false, expires_at)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_put(&self.tables.alerts_table, items).await
    }

    pub async fn get_alert_window(
        &self,
        webhook_id: &str,
    ) -> Result<Option<AlertWindow>, StoreError> {
        self.get(
            &self.tables.alerts_table,
            HashMap::from([
                ("webhook_id".into(), s(webhook_id)),
                ("sk".into(), s(WINDOW_SK)),
            ]),
        )
        .await
    }

    /// Opens a digest window unless one is open or being sent (returns false then).
    pub async fn open_alert_window(&self, window: &AlertWindow) -> Result<bool, StoreError> {
        let mut item = to_item(window)?;
        item.insert("sk".into(), s(WINDOW_SK));
        let put = self
            .ddb
            .put_item()
            .table_name(&self.tables.alerts_table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk) OR #state = :closed")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":closed", s("closed"));
        unless_condition_failed(put.send().await)
    }

    /// Moves window `window_id` from open to sending. False if it is no longer that window.
    pub async fn claim_alert_window(
        &self,
        webhook_id: &str,
        window_id: &str,
    ) -> Result<bool, StoreError> {
        self.set_window_state(webhook_id, window_id, WindowState::Sending, None)
            .await
    }

    /// Closes window `window_id`, recording when its digest went out.
    pub async fn close_alert_window(
        &self,
        webhook_id: &str,
        window_id: &str,
        sent_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        self.set_window_state(webhook_id, window_id, WindowState::Closed, sent_at)
            .await
    }

    async fn set_window_state(
        &self,
        webhook_id: &str,
        window_id: &str,
        state: WindowState,
        sent_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let state = match state {
            WindowState::Open => "open",
            WindowState::Sending => "sending",
            WindowState::Closed => "closed",
        };
        let mut update = self
            .ddb
            .update_item()
            .table_name(&self.tables.alerts_table)
            .key("webhook_id", s(webhook_id))
            .key("sk", s(WINDOW_SK))
            .condition_expression("window_id = :w")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":w", s(window_id))
            .expression_attribute_values(":s", s(state));
        update = match sent_at {
            Some(at) => update
                .update_expression("SET #state = :s, last_email_at = :at")
                .expression_attribute_values(":at", n(at)),
            None => update.update_expression("SET #state = :s"),
        };
        unless_condition_failed(update.send().await)
    }

    /// Writes `item` unless an item with its key exists (returns false then).
    async fn put_if_absent(
        &self,
        table: &str,
        item: Item,
        key_attribute: &str,
    ) -> Result<bool, StoreError> {
        let put = self
            .ddb
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(format!("attribute_not_exists({key_attribute})"));
        unless_condition_failed(put.send().await)
    }

    /// Writes items in batches of 25, retrying what DynamoDB leaves unprocessed.
    async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<(), StoreError> {
        for chunk in items.chunks(BATCH_WRITE_MAX) {
            let mut requests = chunk
                .iter()
                .map(|item| {
                    let put = PutRequest::builder()
                        .set_item(Some(item.clone()))
                        .build()
                        .map_err(dynamo)?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut backoff = Duration::from_millis(50);
            for _ in 0..6 {
                let out = self
                    .ddb
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(dynamo)?;
                requests = out
                    .unprocessed_items()
                    .and_then(|m| m.get(table))
                    .cloned()
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            if !requests.is_empty() {
                return Err(StoreError::Unprocessed(requests.len()));
            }
        }
        Ok(())
    }

    async fn get<T: DeserializeOwned>(
        &self,
        table: &str,
        key: Item,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .ddb
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo)?;
        out.item.map(from_item).transpose()
    }
}
