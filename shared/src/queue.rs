//! SQS adapter: the deliveries queue and the alerts queue. Calls are batched (10 per call).

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use thiserror::Error;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsMessage};
use serde::Serialize;

const SQS_BATCH_MAX: usize = 10;
const SEND_TRIES: usize = 4;
/// SQS delays a new message by at most 15 minutes.
pub const MAX_SEND_DELAY_SECS: i32 = 900;

#[derive(Debug, Error)]
pub enum QueueError {
    #[error("SQS call failed: {0}")]
    Sqs(String),
    #[error("SQS refused {0} messages after retries")]
    Refused(usize),
}

fn sqs(err: impl std::error::Error) -> QueueError {
    QueueError::Sqs(DisplayErrorContext(err).to_string())
}

/// What a queue consumer decided for one message of its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Done with it: SQS may delete it.
    No,
    /// Keep it, hidden for this long.
    For(Duration),
    /// Keep it; it comes back after its queue's visibility timeout.
    AsIs,
}

/// A message to hide again for `delay`, so it comes back when its next attempt is due.
#[derive(Debug, Clone)]
pub struct Postponement {
    pub message_id: String,
    pub receipt_handle: String,
    pub delay: Duration,
}

/// Rounded up, so a message never comes back before its attempt is due.
fn visibility_seconds(delay: Duration) -> i32 {
    delay.as_secs_f64().ceil().min(43_200.0) as i32
}

/// One SQS queue whose messages are JSON documents.
#[derive(Debug, Clone)]
pub struct Queue {
    sqs: Client,
    url: String,
}

impl Queue {
    pub fn new(sqs: Client, url: String) -> Self {
        Queue { sqs, url }
    }

    /// Sends one message per item, retrying the entries SQS refuses.
    pub async fn send<T: Serialize>(&self, messages: &[T]) -> Result<(), QueueError> {
        for chunk in messages.chunks(SQS_BATCH_MAX) {
            let mut pending: Vec<(String, String)> = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    serde_json::to_string(m)
                        .map(|body| (i.to_string(), body))
                        .map_err(|e| QueueError::Sqs(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            for attempt in 0..SEND_TRIES {
                let entries = pending
                    .iter()
                    .map(|(id, body)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(id)
                            .message_body(body)
                            .build()
                            .map_err(sqs)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let out = self
                    .sqs
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(sqs)?;
                let failed: Vec<&str> = out.failed().iter().map(|f| f.id()).collect();
                pending.retain(|(id, _)| failed.contains(&id.as_str()));
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            if !pending.is_empty() {
                return Err(QueueError::Refused(pending.len()));
            }
        }
        Ok(())
    }

    /// Sends one message that becomes visible after `delay` (at most 15 minutes, SQS's limit).
    pub async fn send_delayed<T: Serialize>(
        &self,
        message: &T,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let body = serde_json::to_string(message).map_err(|e| QueueError::Sqs(e.to_string()))?;
        self.sqs
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .delay_seconds(visibility_seconds(delay).min(MAX_SEND_DELAY_SECS))
            .send()
            .await
            .map_err(sqs)?;
        Ok(())
    }

    /// Lambda's partial batch response for `records`: every message kept is reported as a
    /// failure, and those kept `For` a while are hidden for it (one batched call to this
    /// queue; an entry SQS refuses comes back after the visibility timeout instead).
    pub async fn settle(
        &self,
        records: &[SqsMessage],
        decisions: impl IntoIterator<Item = Keep>,
    ) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        let mut postponements = Vec::new();
        for (message, decision) in records.iter().zip(decisions) {
            let Some(message_id) = message.message_id.clone() else {
                continue;
            };
            match (decision, message.receipt_handle.clone()) {
                (Keep::No, _) => continue,
                (Keep::For(delay), Some(receipt_handle)) => postponements.push(Postponement {
                    message_id: message_id.clone(),
                    receipt_handle,
                    delay,
                }),
                _ => {}
            }
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id;
            response.batch_item_failures.push(failure);
        }
        self.postpone(&postponements).await;
        response
    }

    /// Changes the visibility of messages in batches. Returns the message ids SQS refused;
    /// those come back after the queue's default visibility timeout instead.
    pub async fn postpone(&self, postponements: &[Postponement]) -> Vec<String> {
        let mut refused = Vec::new();
        for chunk in postponements.chunks(SQS_BATCH_MAX) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&p.receipt_handle)
                        .visibility_timeout(visibility_seconds(p.delay))
                        .build()
                        .ok()
                })
                .collect();
            match self
                .sqs
                .change_message_visibility_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
            {
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
                    tracing::warn!(error = %DisplayErrorContext(&err), "visibility change failed");
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
    fn visibility_is_rounded_up_and_capped() {
        assert_eq!(visibility_seconds(Duration::ZERO), 0);
        assert_eq!(visibility_seconds(Duration::from_millis(900)), 1);
        assert_eq!(visibility_seconds(Duration::from_millis(1800)), 2);
        assert_eq!(visibility_seconds(Duration::from_secs(60)), 60);
        assert_eq!(visibility_seconds(Duration::from_secs(100_000)), 43_200);
    }
}
