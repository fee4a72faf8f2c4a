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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::{
    Event, EventRecord, StreamRecord, StreamViewType, UserIdentity,
};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue as SdkValue, Record, ShardIteratorType};
use serde::Deserialize;
use serde_dynamo::{AttributeValue, Item};
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use fanout::Fanout;

use crate::meter::Meter;
use crate::GatewayError;

/// How long an empty shard waits before its next GetRecords (Lambda polls a stream's shards
/// about four times a second).
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The pause after a failed call to the streams API.
const BACKOFF: Duration = Duration::from_secs(1);
/// The pause before a failed batch is sent again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// GetRecords returns at most this many records.
const GET_RECORDS_LIMIT: usize = 1000;

/// A DynamoDB stream event source mapping, as `infra/local/stack.py up` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamEventSourceMapping {
    pub function: String,
    pub binary: String,
    pub stream_arn: String,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub maximum_batching_window_seconds: u64,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// -1 (Lambda's default): a record is retried until its function takes it.
    #[serde(default = "retry_forever")]
    pub maximum_retry_attempts: i64,
    #[serde(default)]
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, as written in the template.
    #[serde(default)]
    pub filter_patterns: Vec<String>,
    #[serde(default = "crate::enabled")]
    pub enabled: bool,
}

fn default_batch_size() -> usize {
    100
}

fn retry_forever() -> i64 {
    -1
}

/// Where a shard is first read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

impl StartingPosition {
    fn iterator_type(self) -> ShardIteratorType {
        match self {
            StartingPosition::TrimHorizon => ShardIteratorType::TrimHorizon,
            StartingPosition::Latest => ShardIteratorType::Latest,
        }
    }
}

/// The records a mapping's `FilterCriteria` lets through. Only patterns of the shape
/// `{"eventName": [...]}` are emulated (a record passes if its eventName is listed; several
/// patterns are alternatives); no pattern lets every record through, as on Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNameFilter(Option<HashSet<String>>);

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "filter pattern {0} cannot be emulated locally (only {{\"eventName\": [\"INSERT\", ...]}} is)"
)]
pub struct UnsupportedPattern(pub String);

impl EventNameFilter {
    pub fn parse(patterns: &[String]) -> Result<Self, UnsupportedPattern> {
        if patterns.is_empty() {
            return Ok(EventNameFilter(None));
        }
        let mut names = HashSet::new();
        for pattern in patterns {
            let unsupported = || UnsupportedPattern(pattern.clone());
            let parsed: serde_json::Value =
                serde_json::from_str(pattern).map_err(|_| unsupported())?;
            let Some(fields) = parsed.as_object() else {
                return Err(unsupported());
            };
            let Some(values) = fields.get("eventName").and_then(|v| v.as_array()) else {
                return Err(unsupported());
            };
            if fields.len() != 1 || values.is_empty() {
                return Err(unsupported());
            }
            for value in values {
                names.insert(value.as_str().ok_or_else(unsupported)?.to_owned());
            }
        }
        Ok(EventNameFilter(Some(names)))
    }

    pub fn passes(&self, event_name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.contains(event_name))
    }
}

/// A mapping checked to be one the gateway emulates faithfully.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub mapping: StreamEventSourceMapping,
    filter: EventNameFilter,
    starting_position: StartingPosition,
}

impl StreamSource {
    /// Refuses what the gateway would otherwise emulate differently from Lambda, so the
    /// template cannot silently diverge from what runs locally.
    pub fn check(mapping: &StreamEventSourceMapping) -> Result<Self, GatewayError> {
        let refuse = |what: String| {
            GatewayError::Stack(format!(
                "{} (stream {}): {what}",
                mapping.function, mapping.stream_arn
            ))
        };
        let filter =
            EventNameFilter::parse(&mapping.filter_patterns).map_err(|e| refuse(e.to_string()))?;
        let starting_position = match mapping.starting_position.as_str() {
            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
            "LATEST" => StartingPosition::Latest,
            other => {
                return Err(refuse(format!(
                    "starting position {other} is not one of TRIM_HORIZON, LATEST"
                )))
            }
        };
        if mapping.maximum_retry_attempts != -1 {
            return Err(refuse(format!(
                "MaximumRetryAttempts {} cannot be emulated locally (only -1 is)",
                mapping.maximum_retry_attempts
            )));
        }
        if !(1..=10_000).contains(&mapping.batch_size) {
            return Err(refuse(format!(
                "BatchSize {} is not between 1 and 10000",
                mapping.batch_size
            )));
        }
        Ok(StreamSource {
            mapping: mapping.clone(),
            filter,
            starting_position,
        })
    }
}

/// Where a shard goes on after an invocation, as Lambda decides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// Past the whole batch.
    Done,
    /// The batch's records from this position on are sent again; the earlier ones are done.
    RetryFrom(usize),
    /// The whole batch is sent again.
    RetryAll,
}

/// The checkpoint after a batch whose records have `sequence_numbers` (in stream order) got
/// `response`. Without ReportBatchItemFailures Lambda ignores what a function returns.
/// With it, the lowest failed sequence number is where the shard resumes, and a failure
/// naming no record of the batch fails the whole batch.
pub fn checkpoint(
    sequence_numbers: &[&str],
    response: &DynamoDbEventResponse,
    report_batch_item_failures: bool,
) -> Checkpoint {
    if !report_batch_item_failures {
        return Checkpoint::Done;
    }
    let mut lowest: Option<usize> = None;
    for failure in &response.batch_item_failures {
        // A batch holds one shard's records in order: the lowest position is the lowest
        // sequence number (they are decimal strings longer than any integer type).
        let position = failure
            .item_identifier
            .as_deref()
            .and_then(|id| sequence_numbers.iter().position(|s| *s == id));
        match position {
            Some(p) => lowest = Some(lowest.map_or(p, |l| l.min(p))),
            None => return Checkpoint::RetryAll,
        }
    }
    lowest.map_or(Checkpoint::Done, Checkpoint::RetryFrom)
}

/// A stream record that cannot be handed to the function.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("attribute {0} has a type this SDK does not know")]
    UnknownAttributeType(String),
    #[error("the record has no sequence number")]
    NoSequenceNumber,
}

/// An item image of the streams API as the event Lambda sends holds it.
pub fn to_item(image: &HashMap<String, SdkValue>) -> Result<Item, RecordError> {
    image
        .iter()
        .map(|(name, value)| Ok((name.clone(), to_attribute_value(name, value)?)))
        .collect::<Result<HashMap<String, AttributeValue>, RecordError>>()
        .map(Item::from)
}

// By hand rather than serde_dynamo's `From`: that one panics on a type the SDK does not know.
fn to_attribute_value(name: &str, value: &SdkValue) -> Result<AttributeValue, RecordError> {
    Ok(match value {
        SdkValue::S(s) => AttributeValue::S(s.clone()),
        SdkValue::N(n) => AttributeValue::N(n.clone()),
        SdkValue::Bool(b) => AttributeValue::Bool(*b),
        SdkValue::Null(null) => AttributeValue::Null(*null),
        SdkValue::B(blob) => AttributeValue::B(blob.as_ref().to_vec()),
        SdkValue::Ss(set) => AttributeValue::Ss(set.clone()),
        SdkValue::Ns(set) => AttributeValue::Ns(set.clone()),
        SdkValue::Bs(set) => AttributeValue::Bs(set.iter().map(|b| b.as_ref().to_vec()).collect()),
        SdkValue::L(list) => AttributeValue::L(
            list.iter()
                .map(|v| to_attribute_value(name, v))
                .collect::<Result<_, _>>()?,
        ),
        SdkValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_attribute_value(name, v)?)))
                .collect::<Result<_, RecordError>>()?,
        ),
        _ => return Err(RecordError::UnknownAttributeType(name.to_owned())),
    })
}

/// A record of the streams API as Lambda puts it in the event it sends.
pub fn to_lambda_record(
    record: &Record,
    stream_arn: &str,
    region: Option<&str>,
) -> Result<EventRecord, RecordError> {
    let source = record.dynamodb();
    let sequence_number = source
        .and_then(|r| r.sequence_number())
        .ok_or(RecordError::NoSequenceNumber)?;
    let image =
        |image: Option<&HashMap<String, SdkValue>>| image.map_or(Ok(Item::default()), to_item);
    let mut change = StreamRecord::default();
    if let Some(created) = source.and_then(|r| r.approximate_creation_date_time()) {
        change.approximate_creation_date_time =
            chrono::DateTime::from_timestamp(created.secs(), created.subsec_nanos())
                .unwrap_or_default();
    }
    change.keys = image(source.and_then(|r| r.keys()))?;
    change.new_image = image(source.and_then(|r| r.new_image()))?;
    change.old_image = image(source.and_then(|r| r.old_image()))?;
    change.sequence_number = Some(sequence_number.to_owned());
    change.size_bytes = source.and_then(|r| r.size_bytes()).unwrap_or_default();
    change.stream_view_type = source
        .and_then(|r| r.stream_view_type())
        .and_then(|view| match view.as_str() {
            "NEW_IMAGE" => Some(StreamViewType::NewImage),
            "OLD_IMAGE" => Some(StreamViewType::OldImage),
            "NEW_AND_OLD_IMAGES" => Some(StreamViewType::NewAndOldImages),
            "KEYS_ONLY" => Some(StreamViewType::KeysOnly),
            _ => None,
        });

    let mut lambda = EventRecord::default();
    lambda.aws_region = region
        .or(record.aws_region())
        .unwrap_or_default()
        .to_owned();
    lambda.change = change;
    lambda.event_id = record.event_id().unwrap_or_default().to_owned();
    lambda.event_name = record
        .event_name()
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    lambda.event_source = Some("aws:dynamodb".into());
    lambda.event_version = Some("1.1".into());
    lambda.event_source_arn = Some(stream_arn.to_owned());
    // Set on the records of items the table's TTL deleted.
    lambda.user_identity = record.user_identity().map(|identity| {
        let mut user = UserIdentity::default();
        user.type_ = identity.r#type().unwrap_or_default().to_owned();
        user.principal_id = identity.principal_id().unwrap_or_default().to_owned();
        user
    });
    Ok(lambda)
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

/// Where a shard's reading resumes when its iterator is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Start(StartingPosition),
    At(String),
    After(String),
}

/// A record taken into the batch being gathered.
struct Gathered {
    sequence_number: String,
    record: EventRecord,
}

/// Reads one shard, in order, and hands its records to the function in batches.
struct ShardPoller {
    source: Arc<Source>,
    shard_id: String,
    iterator: Option<String>,
    /// Where the current iterator started.
    base: Position,
    /// The last record read with the current iterator (taken or filtered out).
    last_read: Option<String>,
    /// The batch being gathered, or being retried.
    pending: Vec<Gathered>,
    /// When the batch's first record was gathered (the batching window starts then).
    gathered_since: Option<Instant>,
    /// The shard has no more records (GetRecords gave no next iterator).
    closed: bool,
    /// How many times the first record of `pending` has been sent.
    attempts: u32,
}

impl ShardPoller {
    fn new(source: Arc<Source>, shard_id: String, start: StartingPosition) -> Self {
        ShardPoller {
            source,
            shard_id,
            iterator: None,
            base: Position::Start(start),
            last_read: None,
            pending: Vec::new(),
            gathered_since: None,
            closed: false,
            attempts: 0,
        }
    }

    async fn run(
        mut self,
        parent: Option<watch::Receiver<bool>>,
        done: watch::Sender<bool>,
        mut stopped: watch::Receiver<bool>,
    ) {
        // A child shard's records come after its parent's: Lambda finishes the parent first.
        if let Some(mut parent) = parent {
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = parent.wait_for(|finished| *finished) => {}
            }
        }
        loop {
            if self.closed && self.iterator.is_none() && self.pending.is_empty() {
                tracing::info!(function = %self.source.mapping().function, shard = %self.shard_id, "shard read to its end");
                let _ = done.send(true);
                return;
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return,
                _ = self.step() => {}
            }
        }
    }

    /// Reads once, and invokes the function when the batch is due.
    async fn step(&mut self) {
        if self.iterator.is_none() && !self.closed {
            match self.shard_iterator().await {
                Ok(iterator) => {
                    self.closed = iterator.is_none();
                    self.iterator = iterator;
                }
                Err(error) => {
                    tracing::warn!(function = %self.source.mapping().function, shard = %self.shard_id, position = ?self.base, %error, "GetShardIterator failed; trying again");
                    tokio::time::sleep(BACKOFF).await;
                    return;
                }
            }
        }
        let source = Arc::clone(&self.source);
        let mapping = source.mapping();
        let mut read = 0;
        let room = mapping.batch_size.saturating_sub(self.pending.len());
        if let (Some(iterator), true) = (self.iterator.clone(), room > 0) {
            let limit = i32::try_from(room.min(GET_RECORDS_LIMIT)).unwrap_or(1);
            let got = source
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(limit)
                .send()
                .await;
            match got {
                Ok(out) => {
                    read = out.records().len();
                    self.iterator = out.next_shard_iterator;
                    self.closed = self.iterator.is_none();
                    for record in out.records.unwrap_or_default() {
                        if let Err(error) = self.gather(&record) {
                            // Never skipped: read again (and refused again) until fixed.
                            tracing::error!(function = %mapping.function, shard = %self.shard_id, %error, "unreadable stream record; reading again");
                            self.forget_iterator();
                            tokio::time::sleep(BACKOFF).await;
                            return;
                        }
                    }
                }
                Err(e) => {
                    // An expired or unknown iterator too: a new one from the checkpoint.
                    self.forget_iterator();
                    tracing::warn!(function = %mapping.function, shard = %self.shard_id, position = ?self.base, error = %DisplayErrorContext(&e), "GetRecords failed; reading again from the checkpoint");
                    tokio::time::sleep(BACKOFF).await;
                    return;
                }
            }
        }
        if self.batch_due() {
            self.invoke().await;
        } else if read == 0 {
            let window_left = self.gathered_since.map(|since| {
                Duration::from_secs(mapping.maximum_batching_window_seconds)
                    .saturating_sub(since.elapsed())
            });
            let wait = window_left.map_or(POLL_INTERVAL, |left| left.min(POLL_INTERVAL));
            tokio::time::sleep(wait).await;
        }
    }

    async fn shard_iterator(&self) -> Result<Option<String>, String> {
        let (kind, sequence_number) = match &self.base {
            Position::Start(start) => (start.iterator_type(), None),
            Position::At(seq) => (ShardIteratorType::AtSequenceNumber, Some(seq.clone())),
            Position::After(seq) => (ShardIteratorType::AfterSequenceNumber, Some(seq.clone())),
        };
        self.source
            .streams
            .get_shard_iterator()
            .stream_arn(&self.source.mapping().stream_arn)
            .shard_id(&self.shard_id)
            .shard_iterator_type(kind)
            .set_sequence_number(sequence_number)
            .send()
            .await
            .map(|out| out.shard_iterator)
            .map_err(|e| DisplayErrorContext(&e).to_string())
    }

    /// Takes a record into the batch if the filters let it through; skipped ones are
    /// checkpointed past with the batch around them, as Lambda does.
    fn gather(&mut self, record: &Record) -> Result<(), RecordError> {
        let source = &self.source;
        let lambda = to_lambda_record(
            record,
            &source.mapping().stream_arn,
            source.region.as_deref(),
        )?;
        let sequence_number = lambda
            .change
            .sequence_number
            .clone()
            .ok_or(RecordError::NoSequenceNumber)?;
        self.last_read = Some(sequence_number.clone());
        if source.checked.filter.passes(&lambda.event_name) {
            if self.pending.is_empty() {
                self.gathered_since = Some(Instant::now());
            }
            self.pending.push(Gathered {
                sequence_number,
                record: lambda,
            });
        }
        Ok(())
    }

    fn batch_due(&self) -> bool {
        let window = Duration::from_secs(self.source.mapping().maximum_batching_window_seconds);
        !self.pending.is_empty()
            && (self.pending.len() >= self.source.mapping().batch_size
                || self.closed
                || self
                    .gathered_since
                    .is_some_and(|since| since.elapsed() >= window))
    }

    /// Drops the iterator and what was gathered with it: the next iterator starts at the
    /// checkpoint (the first record not yet taken by the function), and what was gathered
    /// is read again.
    fn forget_iterator(&mut self) {
        self.base = resume_position(&self.pending, self.last_read.as_deref(), &self.base);
        self.iterator = None;
        self.last_read = None;
        self.pending.clear();
        self.gathered_since = None;
        self.closed = false;
    }

    async fn invoke(&mut self) {
        let source = Arc::clone(&self.source);
        let mapping = source.mapping();
        let mut event = Event::default();
        event.records = self.pending.iter().map(|g| g.record.clone()).collect();
        let sequence_numbers: Vec<&str> = self
            .pending
            .iter()
            .map(|g| g.sequence_number.as_str())
            .collect();
        self.attempts += 1;
        let started = Instant::now();
        let outcome = source.invoke(event).await;
        source.meter.invoked(&mapping.binary, started.elapsed());
        let decision = match &outcome {
            Ok(response) => {
                if !mapping.report_batch_item_failures && !response.batch_item_failures.is_empty() {
                    tracing::warn!(function = %mapping.function, shard = %self.shard_id, "batch item failures ignored: the mapping has no ReportBatchItemFailures (as on Lambda)");
                }
                checkpoint(
                    &sequence_numbers,
                    response,
                    mapping.report_batch_item_failures,
                )
            }
            Err(_) => Checkpoint::RetryAll,
        };
        match decision {
            Checkpoint::Done => {
                self.pending.clear();
                self.gathered_since = None;
                self.attempts = 0;
                return;
            }
            Checkpoint::RetryFrom(0) => tracing::warn!(
                function = %mapping.function,
                shard = %self.shard_id,
                attempts = self.attempts,
                ?sequence_numbers,
                "batch failed from its first record; the whole batch will be sent again"
            ),
            Checkpoint::RetryFrom(position) => {
                tracing::warn!(
                    function = %mapping.function,
                    shard = %self.shard_id,
                    done = ?&sequence_numbers[..position],
                    retried = ?&sequence_numbers[position..],
                    "partial batch failure; the batch is sent again from sequence number {}",
                    sequence_numbers[position],
                );
                self.pending.drain(..position);
                self.attempts = 1; // the new first record was sent once already
            }
            Checkpoint::RetryAll => match &outcome {
                Err(failure) => tracing::error!(
                    function = %mapping.function,
                    shard = %self.shard_id,
                    attempts = self.attempts,
                    ?sequence_numbers,
                    "invocation failed ({failure}); the whole batch will be sent again"
                ),
                Ok(response) => tracing::warn!(
                    function = %mapping.function,
                    shard = %self.shard_id,
                    attempts = self.attempts,
                    ?sequence_numbers,
                    failures = ?response.batch_item_failures.iter().map(|f| f.item_identifier.as_deref()).collect::<Vec<_>>(),
                    "a batch item failure names no record of the batch (Lambda then fails all of it); the whole batch will be sent again"
                ),
            },
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Where a new iterator starts: at the first record the function has not taken, else right
/// after the last record read, else where the previous iterator started.
fn resume_position(pending: &[Gathered], last_read: Option<&str>, base: &Position) -> Position {
    match (pending.first(), last_read) {
        (Some(first), _) => Position::At(first.sequence_number.clone()),
        (None, Some(read)) => Position::After(read.to_owned()),
        (None, None) => base.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{
        Identity, OperationType, StreamRecord as SdkStreamRecord,
        StreamViewType as SdkStreamViewType,
    };

    fn patterns(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn event_name_patterns_filter_records() {
        let inserts = EventNameFilter::parse(&patterns(&[r#"{"eventName": ["INSERT"]}"#])).unwrap();
        assert!(inserts.passes("INSERT"));
        assert!(!inserts.passes("MODIFY"));
        assert!(!inserts.passes("REMOVE"));

        // Several values, several patterns: alternatives.
        let some = EventNameFilter::parse(&patterns(&[
            r#"{"eventName": ["INSERT", "MODIFY"]}"#,
            r#" { "eventName" : [ "REMOVE" ] } "#,
        ]))
        .unwrap();
        assert!(["INSERT", "MODIFY", "REMOVE"]
            .iter()
            .all(|n| some.passes(n)));
        assert!(!some.passes("insert"));

        // No filter: every record.
        let all = EventNameFilter::parse(&[]).unwrap();
        assert!(all.passes("REMOVE") && all.passes(""));
    }

    #[test]
    fn other_patterns_are_refused_by_name() {
        for pattern in [
            r#"{"eventName": "INSERT"}"#,
            r#"{"eventName": []}"#,
            r#"{"eventName": [{"prefix": "IN"}]}"#,
            r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["x"]}}}}"#,
            r#"{"dynamodb": {"Keys": {"id": {"S": ["a"]}}}}"#,
            r#"["INSERT"]"#,
            "not json",
        ] {
            let refused =
                EventNameFilter::parse(&patterns(&[r#"{"eventName": ["INSERT"]}"#, pattern]));
            assert_eq!(
                refused,
                Err(UnsupportedPattern(pattern.to_owned())),
                "{pattern}"
            );
        }
    }

    fn mapping() -> StreamEventSourceMapping {
        serde_json::from_value(serde_json::json!({
            "function": "FanoutFunction",
            "binary": "fanout",
            "stream_arn": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2025",
            "starting_position": "TRIM_HORIZON",
            "filter_patterns": [r#"{"eventName": ["INSERT"]}"#],
        }))
        .unwrap()
    }

    #[test]
    fn mappings_are_checked_before_anything_runs() {
        let m = mapping();
        assert_eq!(m.batch_size, 100);
        assert_eq!(m.maximum_batching_window_seconds, 0);
        assert_eq!(m.maximum_retry_attempts, -1);
        assert!(m.enabled && !m.report_batch_item_failures);
        let checked = StreamSource::check(&m).unwrap();
        assert_eq!(checked.starting_position, StartingPosition::TrimHorizon);

        let refused = |m: StreamEventSourceMapping| match StreamSource::check(&m) {
            Err(GatewayError::Stack(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        let mut bad = mapping();
        bad.filter_patterns = vec![r#"{"eventName": ["INSERT"], "x": 1}"#.into()];
        let message = refused(bad);
        assert!(message.contains("FanoutFunction"), "{message}");
        assert!(
            message.contains(r#"{"eventName": ["INSERT"], "x": 1}"#),
            "{message}"
        );

        let mut bad = mapping();
        bad.starting_position = "AT_TIMESTAMP".into();
        assert!(refused(bad).contains("AT_TIMESTAMP"));
        let mut bad = mapping();
        bad.maximum_retry_attempts = 3;
        assert!(refused(bad).contains("MaximumRetryAttempts 3"));
        let mut bad = mapping();
        bad.batch_size = 0;
        assert!(refused(bad).contains("BatchSize 0"));
    }

    fn response(failures: &[Option<&str>]) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        response.batch_item_failures = failures
            .iter()
            .map(|id| {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = id.map(str::to_owned);
                failure
            })
            .collect();
        response
    }

    #[test]
    fn checkpoint_follows_report_batch_item_failures() {
        let batch = ["100", "101", "102", "103"];
        assert_eq!(checkpoint(&batch, &response(&[]), true), Checkpoint::Done);
        // The lowest failed sequence number, whatever the order of the failures.
        assert_eq!(
            checkpoint(&batch, &response(&[Some("103"), Some("101")]), true),
            Checkpoint::RetryFrom(1)
        );
        assert_eq!(
            checkpoint(&batch, &response(&[Some("100")]), true),
            Checkpoint::RetryFrom(0)
        );
        // A failure naming no record of the batch fails all of it.
        assert_eq!(
            checkpoint(&batch, &response(&[Some("102"), None]), true),
            Checkpoint::RetryAll
        );
        assert_eq!(
            checkpoint(&batch, &response(&[Some("99")]), true),
            Checkpoint::RetryAll
        );
        assert_eq!(
            checkpoint(&batch, &response(&[Some("")]), true),
            Checkpoint::RetryAll
        );
        // Without ReportBatchItemFailures Lambda does not read the response.
        assert_eq!(
            checkpoint(&batch, &response(&[Some("101")]), false),
            Checkpoint::Done
        );
    }

    fn gathered(sequence_number: &str) -> Gathered {
        Gathered {
            sequence_number: sequence_number.into(),
            record: EventRecord::default(),
        }
    }

    #[test]
    fn a_new_iterator_starts_at_the_first_record_not_taken() {
        let start = Position::Start(StartingPosition::Latest);
        assert_eq!(resume_position(&[], None, &start), start);
        assert_eq!(
            resume_position(&[], Some("7"), &start),
            Position::After("7".into())
        );
        assert_eq!(
            resume_position(&[gathered("5"), gathered("6")], Some("7"), &start),
            Position::At("5".into())
        );
        let at = Position::At("5".into());
        assert_eq!(resume_position(&[], None, &at), at);
    }

    fn sdk_image() -> HashMap<String, SdkValue> {
        HashMap::from([
            ("id".to_owned(), SdkValue::S("evt_1".into())),
            ("size".to_owned(), SdkValue::N("12.5".into())),
            ("final".to_owned(), SdkValue::Bool(true)),
            ("gone".to_owned(), SdkValue::Null(true)),
            ("body".to_owned(), SdkValue::B(Blob::new(vec![0, 159, 255]))),
            (
                "tags".to_owned(),
                SdkValue::Ss(vec!["a".into(), "b".into()]),
            ),
            (
                "codes".to_owned(),
                SdkValue::Ns(vec!["1".into(), "-2.5".into()]),
            ),
            (
                "list".to_owned(),
                SdkValue::L(vec![SdkValue::S("x".into()), SdkValue::N("3".into())]),
            ),
            (
                "map".to_owned(),
                SdkValue::M(HashMap::from([(
                    "inner".to_owned(),
                    SdkValue::M(HashMap::from([("ok".to_owned(), SdkValue::Bool(false))])),
                )])),
            ),
            (
                "blobs".to_owned(),
                SdkValue::Bs(vec![Blob::new(b"hi".to_vec())]),
            ),
        ])
    }

    /// The same image as Lambda's JSON event has it.
    fn lambda_image_json() -> serde_json::Value {
        serde_json::json!({
            "id": {"S": "evt_1"},
            "size": {"N": "12.5"},
            "final": {"BOOL": true},
            "gone": {"NULL": true},
            "body": {"B": "AJ//"},
            "tags": {"SS": ["a", "b"]},
            "codes": {"NS": ["1", "-2.5"]},
            "list": {"L": [{"S": "x"}, {"N": "3"}]},
            "map": {"M": {"inner": {"M": {"ok": {"BOOL": false}}}}},
            "blobs": {"BS": ["aGk="]},
        })
    }

    #[test]
    fn images_convert_as_lambda_sends_them() {
        let item = to_item(&sdk_image()).unwrap();
        let expected: Item = serde_json::from_value(lambda_image_json()).unwrap();
        assert_eq!(item, expected);
        assert_eq!(serde_json::to_value(&item).unwrap(), lambda_image_json());
    }

    fn sdk_record() -> Record {
        let change = SdkStreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
            .keys("id", SdkValue::S("evt_1".into()))
            .set_new_image(Some(sdk_image()))
            .sequence_number("1100000000017454423009")
            .size_bytes(321)
            .stream_view_type(SdkStreamViewType::NewImage)
            .build();
        Record::builder()
            .event_id("0123456789abcdef")
            .event_name(OperationType::Insert)
            .event_source("aws:dynamodb")
            .event_version("1.0")
            .aws_region("us-east-1")
            .dynamodb(change)
            .build()
    }

    #[test]
    fn records_convert_as_lambda_sends_them() {
        let stream = "arn:aws:dynamodb:eu-west-2:123456789012:table/events/stream/2025";
        let record = to_lambda_record(&sdk_record(), stream, Some("eu-west-2")).unwrap();
        // What Lambda sends for that record, read as a handler reads it.
        let expected: EventRecord = serde_json::from_value(serde_json::json!({
            "eventID": "0123456789abcdef",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-2",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000.0,
                "Keys": {"id": {"S": "evt_1"}},
                "NewImage": lambda_image_json(),
                "SequenceNumber": "1100000000017454423009",
                "SizeBytes": 321,
                "StreamViewType": "NEW_IMAGE"
            },
            "eventSourceARN": stream
        }))
        .unwrap();
        assert_eq!(record, expected);

        // An event made of such records survives the JSON a real invocation goes through.
        let mut event = Event::default();
        event.records = vec![record];
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
    }

    #[test]
    fn ttl_deletions_keep_their_identity_and_the_region_falls_back_to_the_record() {
        let mut record = sdk_record();
        record.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let lambda = to_lambda_record(&record, "arn", None).unwrap();
        assert_eq!(lambda.aws_region, "us-east-1");
        let identity = lambda.user_identity.unwrap();
        assert_eq!(identity.type_, "Service");
        assert_eq!(identity.principal_id, "dynamodb.amazonaws.com");
    }

    #[test]
    fn a_record_without_sequence_number_is_an_error() {
        let record = Record::builder().event_name(OperationType::Insert).build();
        assert_eq!(
            to_lambda_record(&record, "arn", None),
            Err(RecordError::NoSequenceNumber)
        );
    }
}
