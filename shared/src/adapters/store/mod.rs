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
pub use events::event_from_image;

type Item = HashMap<String, AttributeValue>;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("DynamoDB call failed: {0}")]
    Dynamo(#[from] AwsError),
    #[error("stored item cannot be read or written: {0}")]
    Codec(#[from] serde_dynamo::Error),
    #[error("{0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same call may succeed if tried again (throttling, an outage).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Dynamo(e) => e.is_retryable(),
            StoreError::Codec(_) | StoreError::Corrupt(_) => false,
        }
    }
}

from_aws_errors!(StoreError, StoreError::Dynamo);

fn to_item<T: Serialize>(value: &T) -> Result<Item, StoreError> {
    Ok(serde_dynamo::to_item(value)?)
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
