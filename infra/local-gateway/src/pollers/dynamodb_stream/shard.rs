//! One shard's poller: reads the shard in order and hands its records to the function in
//! batches, as a Lambda event source mapping does. A batch is invoked when it is full, when
//! the batching window has passed, or when the shard has no more records; after the
//! invocation the shard moves past what the function took (`checkpoint`) and sends the rest
//! again. A lost or expired iterator is replaced by one at the first record not yet taken.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use tokio::sync::watch;

use super::mapping::StartingPosition;
use super::records::{to_lambda_record, RecordError};
use super::{Source, BACKOFF};

/// A shard is read at most once per this long, records or not: Lambda polls a stream's
/// shards four times a second, so under load a batch holds what a quarter second brings
/// (reading again the moment an invocation returns would make smaller batches than AWS does).
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// The pause before a failed batch is sent again.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// GetRecords returns at most this many records.
const GET_RECORDS_LIMIT: usize = 1000;

/// Reads one shard, in order, and hands its records to the function in batches.
pub(super) struct ShardPoller {
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
    /// When the last GetRecords was made (the next waits for `POLL_INTERVAL` after it).
    last_read_at: Option<Instant>,
}

impl ShardPoller {
    pub(super) fn new(source: Arc<Source>, shard_id: String, start: StartingPosition) -> Self {
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
            last_read_at: None,
        }
    }

    pub(super) async fn run(
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
        let room = mapping.batch_size.saturating_sub(self.pending.len());
        if let (Some(iterator), true) = (self.iterator.clone(), room > 0) {
            let limit = i32::try_from(room.min(GET_RECORDS_LIMIT)).unwrap_or(1);
            if let Some(at) = next_read_at(self.last_read_at) {
                tokio::time::sleep_until(at.into()).await;
            }
            self.last_read_at = Some(Instant::now());
            let got = source
                .streams
                .get_records()
                .shard_iterator(iterator)
                .limit(limit)
                .send()
                .await;
            match got {
                Ok(out) => {
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
        // Not due yet: the next step reads again a poll interval on (a window is checked
        // at each read, as often as Lambda looks).
        if self.batch_due() {
            self.invoke().await;
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

/// Where a shard's reading resumes when its iterator is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    Start(StartingPosition),
    At(String),
    After(String),
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

/// A record taken into the batch being gathered.
struct Gathered {
    sequence_number: String,
    record: EventRecord,
}

/// When a shard may be read next: a poll interval after the last read, whether it brought
/// records or not (the first read at once).
fn next_read_at(last_read_at: Option<Instant>) -> Option<Instant> {
    last_read_at.map(|at| at + POLL_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;

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
    fn a_shard_is_read_at_most_four_times_a_second_records_or_not() {
        assert_eq!(next_read_at(None), None);
        let read = Instant::now();
        let wait = next_read_at(Some(read)).map(|at| at - read);
        assert_eq!(wait, Some(Duration::from_millis(250)));
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
}
