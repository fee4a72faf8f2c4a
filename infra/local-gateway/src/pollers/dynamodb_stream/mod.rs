//! DynamoDB stream event sources, polled the way a Lambda event source mapping reads a
//! table's stream: each shard in order (a child shard after its parent), records kept or
//! skipped by the mapping's `FilterCriteria`, gathered into batches of `BatchSize` for up to
//! `MaximumBatchingWindowInSeconds`, and, with `ReportBatchItemFailures`, a batch retried
//! from its lowest failed sequence number until the function takes it
//! (`MaximumRetryAttempts: -1`, the only setting emulated): a shard never moves past a
//! record its function has not taken.
//!
//! The checkpoint lives in memory, as a fresh event source mapping's would: a restarted
//! gateway reads from the mapping's `StartingPosition` again.
//!
//! One file per part, top to bottom: this one polls a mapping's stream for its shards
//! (`StreamPoller`) and invokes the function (`Source`); `mapping` holds what the stack
//! describes and the check that it can be emulated; `shard` reads one shard and decides
//! where it goes on after an invocation; `records` turns the streams API's records into the
//! event Lambda sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use fanout::Fanout;

use crate::meter::Meter;

mod mapping;
mod records;
mod shard;

pub use mapping::{
    EventNameFilter, StartingPosition, StreamEventSourceMapping, StreamSource, UnsupportedPattern,
};
pub use records::{to_item, to_lambda_record, RecordError};
use shard::ShardPoller;
pub use shard::{checkpoint, Checkpoint};

/// The pause after a failed call to the streams API.
const BACKOFF: Duration = Duration::from_secs(1);

/// One stream event source mapping: a poller per shard of its stream.
pub struct StreamPoller {
    source: Arc<Source>,
    stopped: watch::Receiver<bool>,
}

impl StreamPoller {
    pub fn new(
        checked: StreamSource,
        streams: aws_sdk_dynamodbstreams::Client,
        fanout: Arc<Fanout>,
        region: Option<String>,
        timeout: Duration,
        meter: Meter,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        StreamPoller {
            source: Arc::new(Source {
                streams,
                checked,
                region,
                timeout,
                fanout,
                meter,
            }),
            stopped,
        }
    }

    /// Polls every shard until the gateway stops; a shard that closes (a split) has its
    /// children looked up and polled from their start, as Lambda does.
    pub async fn run(self) {
        let mut stopped = self.stopped.clone();
        // Each known shard and whether its poller has read it to its end.
        let mut known: HashMap<String, watch::Receiver<bool>> = HashMap::new();
        let mut pollers = JoinSet::new();
        let mut first_look = true;
        loop {
            let described = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                described = self.source.shards() => described,
            };
            match described {
                Ok(shards) => {
                    for shard in shards {
                        let Some(id) = shard.shard_id else { continue };
                        if known.contains_key(&id) {
                            continue;
                        }
                        let parent = shard
                            .parent_shard_id
                            .as_ref()
                            .and_then(|p| known.get(p))
                            .cloned();
                        let (done, finished) = watch::channel(false);
                        known.insert(id.clone(), finished);
                        let start = if first_look {
                            self.source.checked.starting_position
                        } else {
                            StartingPosition::TrimHorizon
                        };
                        let poller = ShardPoller::new(Arc::clone(&self.source), id, start);
                        pollers.spawn(poller.run(parent, done, self.stopped.clone()));
                    }
                    first_look = false;
                }
                Err(error) => {
                    tracing::warn!(function = %self.source.mapping().function, stream = %self.source.mapping().stream_arn, %error, "DescribeStream failed; trying again");
                    tokio::select! {
                        _ = stopped.wait_for(|s| *s) => break,
                        _ = tokio::time::sleep(BACKOFF) => continue,
                    }
                }
            }
            // Looks again when a shard has been read to its end (its children appear).
            let ended = tokio::select! {
                _ = stopped.wait_for(|s| *s) => break,
                ended = pollers.join_next() => ended,
            };
            if ended.is_none() {
                // No shard at all (a disabled stream): look again in a while.
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(BACKOFF) => {}
                }
            }
        }
        // The shard pollers see the stop themselves; waiting for them makes it clean.
        while pollers.join_next().await.is_some() {}
    }
}

/// What one stream event source needs, shared by its shards' pollers.
struct Source {
    streams: aws_sdk_dynamodbstreams::Client,
    checked: StreamSource,
    region: Option<String>,
    timeout: Duration,
    fanout: Arc<Fanout>,
    meter: Meter,
}

#[derive(Debug, Error)]
enum InvokeFailure {
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("the handler panicked")]
    Panicked,
    #[error("the handler was cancelled")]
    Cancelled,
}

/// A handler's task, aborted when the poller stops waiting for it (its timeout, or the
/// gateway stopping), as Lambda ends a function that ran out of time.
struct Invocation<T>(JoinHandle<T>);

impl<T> Drop for Invocation<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Source {
    fn mapping(&self) -> &StreamEventSourceMapping {
        &self.checked.mapping
    }

    /// Runs the handler in its own task, so that a panic fails the batch as a function
    /// error would, instead of ending the poller.
    async fn invoke(&self, event: Event) -> Result<DynamoDbEventResponse, InvokeFailure> {
        let fanout = Arc::clone(&self.fanout);
        let mut invocation = Invocation(tokio::spawn(
            async move { fanout.handle_stream(event).await },
        ));
        match tokio::time::timeout(self.timeout, &mut invocation.0).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) if e.is_panic() => Err(InvokeFailure::Panicked),
            Ok(Err(_)) => Err(InvokeFailure::Cancelled),
            Err(_) => Err(InvokeFailure::TimedOut(self.timeout)),
        }
    }

    async fn shards(&self) -> Result<Vec<aws_sdk_dynamodbstreams::types::Shard>, String> {
        let mut shards = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let described = self
                .streams
                .describe_stream()
                .stream_arn(&self.mapping().stream_arn)
                .set_exclusive_start_shard_id(after.take())
                .send()
                .await
                .map_err(|e| DisplayErrorContext(&e).to_string())?;
            let Some(description) = described.stream_description else {
                return Ok(shards);
            };
            after = description.last_evaluated_shard_id;
            shards.extend(description.shards.unwrap_or_default());
            if after.is_none() {
                return Ok(shards);
            }
        }
    }
}
