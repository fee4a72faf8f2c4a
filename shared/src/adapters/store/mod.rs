//! DynamoDB adapter: the tables of `template.yaml`, and nothing but storage here. One module
//! per aggregate (webhooks with their subscriptions, events, deliveries with their attempts,
//! alerts), all behind [`Store`].

mod alerts;
mod deliveries;
mod events;
mod webhooks;

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use crate::adapters::aws_error::{from_aws_errors, AwsError, Failure};
use crate::config::Resources;

pub use alerts::RecordedFailure;
pub use deliveries::{LogPage, LogPosition};
pub use events::{event_from_image, is_webhook_page, EncodedEvent, Paging};

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB call failed: {0}")]
    Dynamo(#[from] AwsError),
    #[error("stored item cannot be read or written: {0}")]
    Codec(#[from] serde_dynamo::Error),
    #[error("{0}")]
    Corrupt(String),
    /// DynamoDB refuses an item over 400 KB, every time: caught before the call, so the
    /// caller can answer what to change instead of retrying forever.
    #[error("item of {bytes} bytes is over DynamoDB's 400 KB item limit ({MAX_ITEM_BYTES} bytes)")]
    TooLarge { bytes: usize },
    /// DynamoDB refuses a transaction of more than 100 items or 4 MB, every time: caught
    /// before the call, like [`StoreError::TooLarge`].
    #[error(
        "a transaction of {items} items and {bytes} bytes is over DynamoDB's limits \
         ({MAX_TRANSACTION_ITEMS} items, {MAX_TRANSACTION_BYTES} bytes)"
    )]
    TransactionTooLarge { items: usize, bytes: usize },
    /// A transaction DynamoDB cancelled for a passing reason (a conflicting write of one of
    /// its items, throttling), with the reasons it gave.
    #[error("transaction cancelled ({0}); trying again may succeed")]
    Cancelled(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again (throttling, an outage).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Dynamo(e) => e.is_retryable(),
            StoreError::Cancelled(_) => true,
            StoreError::Codec(_)
            | StoreError::Corrupt(_)
            | StoreError::TooLarge { .. }
            | StoreError::TransactionTooLarge { .. } => false,
        }
    }
}

from_aws_errors!(StoreError, StoreError::Dynamo);

/// DynamoDB's item size limit (400 KB, counted as [`item_size`] counts).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// DynamoDB's limits on one `TransactWriteItems`: items, and their aggregate size.
pub const MAX_TRANSACTION_ITEMS: usize = 100;
pub const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;

/// An item to write, refused here if DynamoDB would refuse it for its size.
fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    let item: Item = serde_dynamo::to_item(value)?;
    let bytes = item_size(&item);
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::TooLarge { bytes });
    }
    Ok(item)
}

/// An item's size as DynamoDB counts it: attribute names and values in UTF-8 bytes, numbers
/// by their digits, 1 byte for a boolean or null, 3 bytes and 1 per element for lists and
/// maps (rounded up where AWS's rule is approximate, so the estimate is never below it).
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    let number = |text: &str| text.trim_start_matches(['-', '0']).len().div_ceil(2) + 1;
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(text) => number(text),
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(texts) => texts.iter().map(|t| number(t)).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    Ok(serde_dynamo::from_item(item)?)
}

fn from_items<T: DeserializeOwned>(items: Vec<Item>) -> Result<Vec<T>, StoreError> {
    items.into_iter().map(from_item).collect()
}

/// Every item a query finds, over all its pages.
async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    Ok(query.into_paginator().items().send().try_collect().await?)
}

/// The result of a conditional write: true if written, false if its condition failed.
fn unless_condition_failed<O, E>(
    result: Result<O, SdkError<E, HttpResponse>>,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    Ok(output_unless_condition_failed(result)?.is_some())
}

/// The output of a conditional write, or None if its condition failed.
fn output_unless_condition_failed<O, E>(
    result: Result<O, SdkError<E, HttpResponse>>,
) -> Result<Option<O>, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match result.map_err(AwsError::from) {
        Ok(out) => Ok(Some(out)),
        Err(err) if err.failure() == Failure::ConditionFailed => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// `text` deflated (raw deflate), if that is smaller: DynamoDB bills a write per started
/// 1 KB of item, and JSON text deflates to about 60 %.
fn deflated(text: &str) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(text.as_bytes()).ok()?;
    let out = encoder.finish().ok()?;
    (out.len() < text.len()).then_some(out)
}

/// The text [`deflated`] made.
fn inflated(bytes: &[u8]) -> Result<String, StoreError> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .read_to_string(&mut text)
        .map_err(|e| StoreError::Corrupt(format!("stored text does not inflate: {e}")))?;
    Ok(text)
}

/// An item's key from its attribute names and values.
fn key<const N: usize>(attributes: [(&str, AttributeValue); N]) -> Item {
    attributes
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

fn s(value: impl AsRef<str>) -> AttributeValue {
    AttributeValue::S(value.as_ref().to_owned())
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

    /// The item whose key is `id` (tables keyed by `id` alone), strongly consistent.
    async fn get_by_id<T: DeserializeOwned>(
        &self,
        table: &str,
        id: &str,
    ) -> Result<Option<T>, StoreError> {
        self.get(table, key([("id", s(id))])).await
    }

    /// Every item of one partition (`attribute` = `value`), strongly consistent, all pages.
    async fn partition<T: DeserializeOwned>(
        &self,
        table: &str,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<T>, StoreError> {
        let query = self
            .ddb
            .query()
            .table_name(table)
            .key_condition_expression("#k = :v")
            .expression_attribute_names("#k", attribute)
            .expression_attribute_values(":v", s(value))
            .consistent_read(true);
        from_items(query_all(query).await?)
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
            .await?;
        out.item.map(from_item).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_size_counts_names_values_and_nesting_as_dynamodb_does() {
        let item: Item = [
            ("id".to_owned(), AttributeValue::S("évt".into())), // 2 + 4
            ("n".to_owned(), AttributeValue::N("-00123".into())), // 1 + 3
            ("ok".to_owned(), AttributeValue::Bool(true)),      // 2 + 1
            (
                "l".to_owned(),
                AttributeValue::L(vec![AttributeValue::S("ab".into())]), // 1 + 3 + 1 + 2
            ),
        ]
        .into();
        assert_eq!(item_size(&item), 6 + 4 + 3 + 7);
    }

    #[test]
    fn an_item_over_400_kb_is_refused_before_any_call() {
        #[derive(Serialize)]
        struct Big {
            id: String,
            body: String,
        }
        let fits = Big {
            id: "x".into(),
            body: "a".repeat(MAX_ITEM_BYTES - 7), // 2 + 1 + 4 bytes of names and id
        };
        assert!(to_item(&fits).is_ok());
        let over = Big {
            id: "x".into(),
            body: "a".repeat(MAX_ITEM_BYTES - 6),
        };
        let err = to_item(&over).unwrap_err();
        assert!(matches!(err, StoreError::TooLarge { bytes } if bytes == MAX_ITEM_BYTES + 1));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("400"), "{err}");
    }
}
