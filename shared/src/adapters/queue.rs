//! SQS adapter: the deliveries queue and the alerts queue. Calls are batched (10 per call).

use std::time::Duration;

use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use futures::StreamExt;
use thiserror::Error;

use crate::adapters::aws_error::{from_aws_errors, AwsError};
use crate::adapters::backoff::Backoff;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use serde::Serialize;

use crate::domain::alerts::AlertMessage;
use crate::domain::model::DeliveryMessage;

const SQS_BATCH_MAX: usize = 10;
/// How many batch calls of one send are in flight at once.
const CONCURRENT_BATCH_CALLS: usize = 10;
/// The most SQS takes in one message, and in one batch of them (body and attributes).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// SQS delays a new message by at most 15 minutes.
pub const MAX_SEND_DELAY_SECS: i32 = 900;

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("SQS call failed: {0}")]
    Sqs(#[from] AwsError),
    #[error("message cannot be written as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("SQS refused {0} messages after retries")]
    Refused(usize),
    #[error("SQS refused the messages at positions {0:?} for what they hold")]
    Rejected(Vec<usize>),
    #[error("a {bytes}-byte message is over SQS's {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge { bytes: usize },
}

impl QueueError {
    /// Whether the same call may succeed if tried again (throttling, an outage, a refusal
    /// of some entries of a batch).
    pub fn is_retryable(&self) -> bool {
        match self {
            QueueError::Sqs(e) => e.is_retryable(),
            QueueError::Refused(_) => true,
            QueueError::Encode(_) | QueueError::TooLarge { .. } | QueueError::Rejected(_) => false,
        }
    }
}

from_aws_errors!(QueueError, QueueError::Sqs);

/// What a consumer does with one message of its batch once it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Done with it: left out of the batch's failures, so Lambda deletes it.
    Delete,
    /// Reported failed and hidden for this long (ChangeMessageVisibility): it comes back then.
    HideFor(Duration),
    /// Reported failed, visibility untouched: it comes back after its queue's visibility
    /// timeout.
    Release,
}

/// A message to hide for `duration`, so it comes back when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hide {
    pub message_id: String,
    pub receipt_handle: String,
    pub duration: Duration,
}

/// How a batch is settled: Lambda's partial batch response (every message not deleted is a
/// batch item failure) and the messages to hide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchSettlement {
    pub response: SqsBatchResponse,
    pub hide: Vec<Hide>,
}

impl BatchSettlement {
    /// Pairs `records` with what was decided for each, in order. A message without an id
    /// cannot be reported, so Lambda deletes it; one without a receipt handle cannot be
    /// hidden, so it is released instead.
    pub fn plan(records: &[SqsMessage], settles: impl IntoIterator<Item = Settle>) -> Self {
        let mut plan = BatchSettlement::default();
        for (message, settle) in records.iter().zip(settles) {
            let Some(message_id) = message.message_id.clone() else {
                continue;
            };
            match (settle, message.receipt_handle.clone()) {
                (Settle::Delete, _) => continue,
                (Settle::HideFor(duration), Some(receipt_handle)) => plan.hide.push(Hide {
                    message_id: message_id.clone(),
                    receipt_handle,
                    duration,
                }),
                _ => {}
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            plan.response.batch_item_failures.push(failure);
        }
        plan
    }

    /// The ids Lambda is told to keep (not delete), in batch order.
    pub fn kept_ids(&self) -> Vec<&str> {
        self.response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect()
    }
}

/// Whether SQS takes `c` in a message: `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
/// #x10000-#x10FFFF` (anything else is refused with `InvalidMessageContents`).
pub fn sqs_accepts(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// serde_json's compact output, with every character SQS refuses written as a `\uXXXX`
/// escape. serde_json escapes control characters already but writes U+FFFE and U+FFFF raw,
/// and either may be in an event's data: the escape reads back as the same character, so
/// a body still reaches receivers byte for byte.
struct SqsSafe;

impl serde_json::ser::Formatter for SqsSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut rest = fragment;
        while let Some((at, c)) = rest.char_indices().find(|(_, c)| !sqs_accepts(*c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            // Only BMP characters are ever refused (U+FFFE, U+FFFF), so one escape each.
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// `message` as the JSON text of an SQS message: characters SQS refuses escaped, and no
/// larger than SQS takes.
pub fn message_body<T: Serialize + ?Sized>(message: &T) -> Result<String, QueueError> {
    let mut out = Vec::with_capacity(256);
    message.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, SqsSafe,
    ))?;
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(QueueError::TooLarge { bytes: out.len() });
    }
    // serde_json writes UTF-8 only; the escapes are ASCII.
    String::from_utf8(out).map_err(|e| QueueError::Encode(serde::ser::Error::custom(e)))
}

/// The positions of messages of these sizes, in send order, split into the fewest batch
/// calls SQS takes: at most ten entries and [`MAX_MESSAGE_BYTES`] in all per call.
fn batches(sizes: impl Iterator<Item = usize>) -> Vec<std::ops::Range<usize>> {
    let mut batches = Vec::new();
    let (mut start, mut end, mut bytes) = (0, 0, 0);
    for (i, size) in sizes.enumerate() {
        if i > start && (i - start == SQS_BATCH_MAX || bytes + size > MAX_MESSAGE_BYTES) {
            batches.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += size;
        end = i + 1;
    }
    if end > start {
        batches.push(start..end);
    }
    batches
}

/// Rounded up, so a message never comes back before its attempt is due.
fn visibility_seconds(delay: Duration) -> i32 {
    delay.as_secs_f64().ceil().min(43_200.0) as i32
}

/// A message a queue carries: its JSON, and for a FIFO queue the key that makes copies of
/// it one message.
pub trait QueueMessage: Serialize {
    /// On a FIFO queue, both the message group and the deduplication id: a copy sent within
    /// SQS's 5-minute deduplication interval is dropped, and a copy sent later waits in its
    /// group until the first is deleted, so two copies are never handled at once.
    fn fifo_key(&self) -> Option<&str> {
        None
    }
}

/// A delivery is one message however often it is sent (a fan-out resumed, an SDK retry of a
/// batch whose first try went through, a recovery re-queued).
impl QueueMessage for DeliveryMessage {
    fn fifo_key(&self) -> Option<&str> {
        Some(self.delivery.delivery_id.as_str())
    }
}

impl QueueMessage for AlertMessage {}

/// One SQS queue whose messages are JSON documents.
#[derive(Debug, Clone)]
pub struct Queue {
    sqs: Client,
    url: String,
    /// A FIFO queue (its name ends in `.fifo`), whose messages need a group id.
    fifo: bool,
}

impl Queue {
    pub fn new(sqs: Client, url: String) -> Self {
        let fifo = url.ends_with(".fifo");
        Queue { sqs, url, fifo }
    }

    /// Sends one message per item in as few batch calls as SQS allows, sending again the
    /// entries SQS could not take for a passing reason. An entry SQS refuses for what it
    /// holds (a sender fault: sending it again cannot help) is not sent again:
    /// [`QueueError::Rejected`] names the positions of every such message.
    pub async fn send<T: QueueMessage>(&self, messages: &[T]) -> Result<(), QueueError> {
        let bodies = messages
            .iter()
            .map(|m| {
                let key = if self.fifo { m.fifo_key() } else { None };
                Ok((message_body(m)?, key))
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        // The batch calls go out together: a stream batch of 100 events is 10 calls.
        let sent: Vec<Result<Vec<usize>, QueueError>> =
            futures::stream::iter(batches(bodies.iter().map(|(body, _)| body.len())))
                .map(|batch| {
                    let entries: Vec<(String, &str, Option<&str>)> = batch
                        .map(|i| (i.to_string(), bodies[i].0.as_str(), bodies[i].1))
                        .collect();
                    self.send_batch(entries)
                })
                .buffer_unordered(CONCURRENT_BATCH_CALLS)
                .collect()
                .await;
        let mut rejected = Vec::new();
        for batch in sent {
            rejected.extend(batch?);
        }
        rejected.sort_unstable();
        if rejected.is_empty() {
            Ok(())
        } else {
            Err(QueueError::Rejected(rejected))
        }
    }

    /// One `SendMessageBatch` of `entries` (id: the message's position), sending again what
    /// SQS could not take for a passing reason; the positions SQS refused for what they hold.
    async fn send_batch(
        &self,
        entries: Vec<(String, &str, Option<&str>)>,
    ) -> Result<Vec<usize>, QueueError> {
        // Refused for what they hold: noted here, not sent again.
        let faults = std::sync::Mutex::new(Vec::new());
        let refused = Backoff::default()
            .until_done(entries, |pending| {
                let faults = &faults;
                async move {
                    let request = pending
                        .iter()
                        .map(|(id, body, key)| {
                            SendMessageBatchRequestEntry::builder()
                                .id(id)
                                .message_body(*body)
                                .set_message_group_id(key.map(str::to_owned))
                                .set_message_deduplication_id(key.map(str::to_owned))
                                .build()
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let out = self
                        .sqs
                        .send_message_batch()
                        .queue_url(&self.url)
                        .set_entries(Some(request))
                        .send()
                        .await?;
                    let mut again = Vec::new();
                    for entry in pending {
                        match out.failed().iter().find(|f| f.id() == entry.0) {
                            None => {}
                            Some(f) if f.sender_fault() => {
                                tracing::error!(
                                    code = f.code(),
                                    message = f.message(),
                                    "SQS refused a message for what it holds"
                                );
                                if let Ok(mut faults) = faults.lock() {
                                    faults.push(entry.0.clone());
                                }
                            }
                            Some(_) => again.push(entry),
                        }
                    }
                    Ok::<_, QueueError>(again)
                }
            })
            .await?;
        if !refused.is_empty() {
            return Err(QueueError::Refused(refused.len()));
        }
        let faults = faults.into_inner().unwrap_or_else(|e| e.into_inner());
        Ok(faults.iter().filter_map(|id| id.parse().ok()).collect())
    }

    /// Sends one message that becomes visible after `delay` (at most 15 minutes, SQS's limit).
    pub async fn send_delayed<T: QueueMessage>(
        &self,
        message: &T,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let body = message_body(message)?;
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(visibility_seconds(delay).min(MAX_SEND_DELAY_SECS))
            .send()
            .await?;
        Ok(())
    }

    /// Hides what `settlement` says to hide (batched calls to this queue; an entry SQS
    /// refuses comes back after the visibility timeout instead) and returns Lambda's partial
    /// batch response.
    pub async fn settle(&self, settlement: BatchSettlement) -> SqsBatchResponse {
        self.hide(&settlement.hide).await;
        settlement.response
    }

    /// Changes the visibility of messages in batches. Returns the message ids SQS refused;
    /// those come back after the queue's default visibility timeout instead.
    pub async fn hide(&self, messages: &[Hide]) -> Vec<String> {
        let mut refused = Vec::new();
        for chunk in messages.chunks(SQS_BATCH_MAX) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&p.receipt_handle)
                        .visibility_timeout(visibility_seconds(p.duration))
                        .build()
                        .ok()
                })
                .collect();
            // A change that fails leaves the message hidden for the queue's whole visibility
            // timeout (6 minutes for deliveries): worth a few tries, it only sets a time.
            let changed = Backoff::default()
                .retry(
                    || async {
                        self.sqs
                            .change_message_visibility_batch()
                            .queue_url(&self.url)
                            .set_entries(Some(entries.clone()))
                            .send()
                            .await
                            .map_err(AwsError::from)
                    },
                    AwsError::is_retryable,
                )
                .await;
            match changed {
                Ok(out) => {
                    for failure in out.failed() {
                        if let Some(p) = failure
                            .id()
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| chunk.get(i))
                        {
                            tracing::warn!(message_id = %p.message_id, code = failure.code(), "visibility change refused");
                            refused.push(p.message_id.clone());
                        }
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "visibility change failed");
                    refused.extend(chunk.iter().map(|p| p.message_id.clone()));
                }
            }
        }
        refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_ten_messages_and_256_kib() {
        assert_eq!(
            batches([].into_iter()),
            Vec::<std::ops::Range<usize>>::new()
        );
        assert_eq!(batches([5; 3].into_iter()), vec![0..3; 1]);
        assert_eq!(batches([5; 23].into_iter()), [0..10, 10..20, 20..23]);
        let big = MAX_MESSAGE_BYTES / 2;
        assert_eq!(batches([big, big, 1, big].into_iter()), [0..2, 2..4]);
        assert_eq!(
            batches([MAX_MESSAGE_BYTES, 1, MAX_MESSAGE_BYTES].into_iter()),
            [0..1, 1..2, 2..3]
        );
    }

    #[test]
    fn characters_sqs_refuses_are_escaped_and_read_back_as_they_were() {
        #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
        struct M {
            body: String,
        }
        let m = M {
            body: "a\u{FFFF}b\u{FFFE}\u{0}\u{1F}\u{7F}\u{FFFD}\u{1F600}\u{10FFFF}\"\\".into(),
        };
        let text = message_body(&m).unwrap();
        assert!(text.chars().all(sqs_accepts), "{text:?}");
        assert!(
            text.contains("\\uffff") && text.contains("\\ufffe"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<M>(&text).unwrap(), m);
        // What serde_json alone writes, SQS would refuse.
        assert!(!serde_json::to_string(&m).unwrap().chars().all(sqs_accepts));
    }

    #[test]
    fn a_message_over_the_sqs_limit_is_refused_before_it_is_sent() {
        let just = "x".repeat(MAX_MESSAGE_BYTES - 2);
        assert!(message_body(&just).is_ok());
        let over = "x".repeat(MAX_MESSAGE_BYTES - 1);
        assert!(matches!(
            message_body(&over),
            Err(QueueError::TooLarge { bytes }) if bytes == MAX_MESSAGE_BYTES + 1
        ));
    }

    #[test]
    fn sqs_takes_exactly_the_characters_its_documentation_lists() {
        for c in [
            '\t',
            '\n',
            '\r',
            ' ',
            '\u{D7FF}',
            '\u{E000}',
            '\u{FFFD}',
            '\u{10000}',
            '\u{10FFFF}',
        ] {
            assert!(sqs_accepts(c), "{c:?}");
        }
        for c in [
            '\u{0}', '\u{8}', '\u{B}', '\u{C}', '\u{1F}', '\u{FFFE}', '\u{FFFF}',
        ] {
            assert!(!sqs_accepts(c), "{c:?}");
        }
    }

    proptest::proptest! {
        /// Any text (an event's data, a resource id) makes a message SQS takes, and reads
        /// back byte for byte.
        #[test]
        fn any_text_round_trips_through_a_message_sqs_accepts(body in "\\PC*|[\u{FFF0}-\u{FFFF}\u{0}-\u{20}a\"\\\\]*", raw in proptest::collection::vec(proptest::char::any(), 0..64)) {
            for text in [body, raw.into_iter().collect::<String>()] {
                let encoded = message_body(&text).unwrap();
                proptest::prop_assert!(encoded.chars().all(sqs_accepts), "{:?}", encoded);
                proptest::prop_assert_eq!(serde_json::from_str::<String>(&encoded).unwrap(), text);
            }
        }
    }

    #[test]
    fn visibility_is_rounded_up_and_capped() {
        assert_eq!(visibility_seconds(Duration::ZERO), 0);
        assert_eq!(visibility_seconds(Duration::from_millis(900)), 1);
        assert_eq!(visibility_seconds(Duration::from_millis(1800)), 2);
        assert_eq!(visibility_seconds(Duration::from_secs(60)), 60);
        assert_eq!(visibility_seconds(Duration::from_secs(100_000)), 43_200);
    }

    fn message(id: Option<&str>, receipt_handle: Option<&str>) -> SqsMessage {
        let mut m = SqsMessage::default();
        m.message_id = id.map(str::to_owned);
        m.receipt_handle = receipt_handle.map(str::to_owned);
        m
    }

    #[test]
    fn deleted_messages_are_left_out_and_the_rest_reported_in_order() {
        let records = [
            message(Some("m1"), Some("r1")),
            message(Some("m2"), Some("r2")),
            message(Some("m3"), Some("r3")),
            message(Some("m4"), Some("r4")),
        ];
        let plan = BatchSettlement::plan(
            &records,
            [
                Settle::HideFor(Duration::from_secs(60)),
                Settle::Delete,
                Settle::Release,
                Settle::HideFor(Duration::ZERO),
            ],
        );
        assert_eq!(plan.kept_ids(), ["m1", "m3", "m4"]);
        assert_eq!(
            plan.hide,
            [
                Hide {
                    message_id: "m1".into(),
                    receipt_handle: "r1".into(),
                    duration: Duration::from_secs(60),
                },
                Hide {
                    message_id: "m4".into(),
                    receipt_handle: "r4".into(),
                    duration: Duration::ZERO,
                },
            ]
        );
    }

    #[test]
    fn messages_that_cannot_be_named_or_hidden() {
        let records = [message(None, Some("r1")), message(Some("m2"), None)];
        let hide = Settle::HideFor(Duration::from_secs(5));
        let plan = BatchSettlement::plan(&records, [hide, hide]);
        // No id: nothing to report, so Lambda deletes it. No receipt handle: kept, not hidden.
        assert_eq!(plan.kept_ids(), ["m2"]);
        assert!(plan.hide.is_empty());
        assert_eq!(
            BatchSettlement::plan(&records, [Settle::Delete, Settle::Delete]),
            BatchSettlement::default()
        );
    }
}
