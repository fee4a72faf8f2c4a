//! `fanout`: behind `POST /api/v1/events`. Stores the event once, writes one delivery per
//! active subscribed webhook, sends one SQS message per delivery, and answers 202 only when
//! all of that is durable. Posting the same event id again gives the same answer.

pub mod ingest;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ingest::IncomingEvent;
use webhooks_shared::adapters::queue::Queue;
use webhooks_shared::adapters::store::Store;
use webhooks_shared::adapters::Adapters;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::EventId;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRecord, DeliveryRef, EventRecord};
use webhooks_shared::domain::problem::Problem;
use webhooks_shared::domain::{clock, ids};
use webhooks_shared::Config;

/// Bodies above this are cut off before they are read in full (the event limit is 256 KiB).
const BODY_READ_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub id: EventId,
    pub deliveries: u32,
}

pub struct Fanout {
    store: Store,
    queue: Queue,
    retention: Duration,
}

impl Fanout {
    pub fn new(adapters: Adapters, config: &Config) -> Self {
        Fanout {
            store: adapters.store,
            queue: adapters.queue,
            retention: config.retention,
        }
    }

    pub async fn ingest(&self, body: &[u8]) -> Result<Accepted, Problem> {
        let now = SystemTime::now();
        let incoming = IncomingEvent::parse(body, now)?;
        let record = EventRecord {
            id: incoming.id,
            event_type: incoming.event_type,
            resource_id: incoming.resource_id,
            payload: incoming.payload,
            fingerprint: incoming.fingerprint,
            received_at: Timestamp::from(now),
            deliveries: None,
            expires_at: clock::expiry(now, self.retention),
        };
        let event = match self.store.put_event_if_new(&record).await.map_err(unavailable)? {
            None => record,
            Some(stored) if stored.fingerprint != record.fingerprint => {
                return Err(Problem::conflict(format!(
                    "event id {:?} was already used for a different event (its type or data differ); \
                     send a new id, or resend exactly the same event",
                    record.id
                )))
            }
            Some(stored) => match stored.deliveries {
                Some(deliveries) => {
                    return Ok(Accepted {
                        id: stored.id,
                        deliveries,
                    })
                }
                // An earlier request stored the event but did not finish fanning out:
                // finish it now (delivery ids are deterministic, so nothing doubles).
                None => stored,
            },
        };
        let deliveries = self.fan_out(&event, now).await?;
        Ok(Accepted {
            id: event.id,
            deliveries,
        })
    }

    async fn fan_out(&self, event: &EventRecord, now: SystemTime) -> Result<u32, Problem> {
        let subscribers = self
            .store
            .subscribers(&event.event_type)
            .await
            .map_err(unavailable)?;
        let deliveries: Vec<DeliveryRecord> = subscribers
            .iter()
            .filter(|s| s.active)
            .map(|s| {
                let delivery = DeliveryRef {
                    delivery_id: ids::delivery_id(&event.id, &s.webhook_id),
                    webhook_id: s.webhook_id.clone(),
                    event_id: event.id.clone(),
                    event_type: event.event_type.clone(),
                    resource_id: event.resource_id.clone(),
                    manual: false,
                };
                DeliveryRecord::new(delivery, now, self.retention)
            })
            .collect();
        self.store
            .put_deliveries(&deliveries)
            .await
            .map_err(unavailable)?;
        let messages: Vec<DeliveryMessage> = deliveries.iter().map(DeliveryMessage::from).collect();
        self.queue.send(&messages).await.map_err(unavailable)?;
        let count = deliveries.len() as u32;
        self.store
            .mark_fanned_out(&event.id, count)
            .await
            .map_err(unavailable)?;
        tracing::info!(event_id = %event.id, event_type = %event.event_type, deliveries = count, "event fanned out");
        Ok(count)
    }
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %err, "ingest failed on a backing service");
    Problem::unavailable()
}

/// The HTTP surface of this function: `POST /api/v1/events`.
pub fn router(fanout: Arc<Fanout>) -> Router {
    Router::new()
        .route("/api/v1/events", post(ingest))
        .layer(DefaultBodyLimit::max(BODY_READ_LIMIT))
        .with_state(fanout)
}

/// `Problem` as the response that carries it (problem+json).
type ProblemResponse = http::Response<String>;

async fn ingest(
    State(fanout): State<Arc<Fanout>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ProblemResponse> {
    let body = body.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
    let accepted = fanout.ingest(&body).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}
