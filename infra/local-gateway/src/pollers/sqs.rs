//! SQS event sources, polled the way a Lambda event source mapping drains a queue: batches
//! of `BatchSize`, long-polled; each batch handed to an invocation of its own while the
//! receive loops go on receiving, at most `MaximumConcurrency` batches in flight (a batch
//! waiting on a slow receiver holds a unit of the mapping's concurrency, never the queue);
//! after the invocation, the handler's partial batch failures kept and everything else
//! deleted, visibility timeouts left to SQS.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde::Deserialize;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

use alerter::Alerter;
use deliver::Deliverer;

use crate::meter::Meter;

/// Receive loops per SQS event source (Lambda starts with five). Each hands every batch to
/// an invocation of its own and goes on receiving, up to the mapping's
/// `MaximumConcurrency` batches in flight: a batch waiting on a slow receiver does not hold
/// up the rest of the queue.
const POLLERS_PER_MAPPING: usize = 5;

/// An SQS event source mapping, as `infra/local/stack.py up` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSourceMapping {
    pub function: String,
    pub binary: String,
    pub queue_url: String,
    #[serde(default)]
    pub queue_arn: Option<String>,
    pub batch_size: i32,
    #[serde(default)]
    pub report_batch_item_failures: bool,
    #[serde(default = "crate::pollers::enabled")]
    pub enabled: bool,
    /// `ScalingConfig.MaximumConcurrency`: at most this many batches in flight.
    #[serde(default = "default_maximum_concurrency")]
    pub maximum_concurrency: usize,
}

fn default_maximum_concurrency() -> usize {
    1000
}

/// The function an SQS event source feeds.
#[derive(Clone)]
pub(crate) enum QueueHandler {
    Deliver(Arc<Deliverer>),
    Alerter(Arc<Alerter>),
}

impl QueueHandler {
    async fn handle(&self, event: SqsEvent) -> aws_lambda_events::event::sqs::SqsBatchResponse {
        match self {
            QueueHandler::Deliver(deliverer) => deliverer.handle_batch(event).await,
            QueueHandler::Alerter(alerter) => alerter.handle_batch(event).await,
        }
    }
}

/// One poller of an SQS event source mapping.
#[derive(Clone)]
pub(crate) struct Poller {
    sqs: aws_sdk_sqs::Client,
    mapping: EventSourceMapping,
    region: Option<String>,
    timeout: Duration,
    handler: QueueHandler,
    meter: Meter,
    /// `MaximumConcurrency`: a batch holds one permit while its invocation runs.
    concurrency: Arc<Semaphore>,
    stopped: watch::Receiver<bool>,
}

impl Poller {
    pub(crate) fn new(
        mapping: &EventSourceMapping,
        sqs: aws_sdk_sqs::Client,
        handler: QueueHandler,
        region: Option<String>,
        timeout: Duration,
        meter: Meter,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        Poller {
            sqs,
            mapping: mapping.clone(),
            region,
            timeout,
            handler,
            meter,
            concurrency: Arc::new(Semaphore::new(mapping.maximum_concurrency.max(1))),
            stopped,
        }
    }

    /// Starts the mapping's receive loops (`POLLERS_PER_MAPPING`), which share its
    /// `MaximumConcurrency`.
    pub(crate) fn spawn(self) -> Vec<JoinHandle<()>> {
        (0..POLLERS_PER_MAPPING)
            .map(|_| tokio::spawn(self.clone().run()))
            .collect()
    }

    /// Receives batches until the gateway stops, each handed to an invocation of its own
    /// while this goes on receiving (as Lambda's pollers do): a batch waiting on a slow
    /// receiver holds a unit of the mapping's concurrency, never the poller.
    async fn run(self) {
        let mut stopped = self.stopped.clone();
        loop {
            let permit = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                permit = Arc::clone(&self.concurrency).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
            };
            let messages = tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                messages = self.receive() => messages,
            };
            if messages.is_empty() {
                continue;
            }
            let invocation = self.clone();
            tokio::spawn(async move {
                let mut stopped = invocation.stopped.clone();
                tokio::select! {
                    // Stopping ends the invocation as Lambda ends a function: the batch comes
                    // back after its visibility timeout.
                    _ = stopped.wait_for(|s| *s) => {}
                    () = invocation.invoke(messages) => {}
                }
                drop(permit);
            });
        }
    }

    /// One batch, long-polled (empty when the queue had nothing, or the call failed).
    async fn receive(&self) -> Vec<aws_sdk_sqs::types::Message> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.mapping.queue_url)
            .max_number_of_messages(self.mapping.batch_size.clamp(1, 10))
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await;
        match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "receive failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                Vec::new()
            }
        }
    }

    /// Hands `messages` to the function, then deletes what it did not report failed.
    async fn invoke(&self, messages: Vec<aws_sdk_sqs::types::Message>) {
        let mut event = SqsEvent::default();
        event.records = messages.iter().map(|m| self.to_lambda_message(m)).collect();
        let started = Instant::now();
        let handled = tokio::time::timeout(self.timeout, self.handler.handle(event)).await;
        self.meter.invoked(&self.mapping.binary, started.elapsed());
        let failed: HashSet<String> = match handled {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(_) => {
                let message_ids: Vec<&str> =
                    messages.iter().filter_map(|m| m.message_id()).collect();
                tracing::error!(function = %self.mapping.function, ?message_ids, "invocation timed out; the batch will be retried");
                return;
            }
        };
        if !failed.is_empty() && !self.mapping.report_batch_item_failures {
            return; // without ReportBatchItemFailures any failure retries the whole batch
        }
        let entries: Vec<_> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        if let Err(e) = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.mapping.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "delete failed; messages will be handed back");
        }
    }

    fn to_lambda_message(&self, m: &aws_sdk_sqs::types::Message) -> SqsMessage {
        let mut message = SqsMessage::default();
        message.message_id = m.message_id().map(str::to_owned);
        message.receipt_handle = m.receipt_handle().map(str::to_owned);
        message.body = m.body().map(str::to_owned);
        message.md5_of_body = m.md5_of_body().map(str::to_owned);
        message.attributes = m
            .attributes()
            .map(|attrs| {
                attrs
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        message.event_source = Some("aws:sqs".into());
        message.event_source_arn = self.mapping.queue_arn.clone();
        message.aws_region = self.region.clone();
        message
    }
}
