//! `fanout`: behind `POST /api/v1/events` and `POST /api/v1/events/batch`, it stores each
//! event once, with the active webhooks subscribed to its type, and answers 202 once it is
//! stored: the event item is the outbox, the one durable write. Posting the same event id
//! again gives the same answer. Then the events table's stream invokes it again ([`outbox`])
//! to send one message per delivery to the deliveries queue, which `deliver` consumes.

pub mod ingest;
pub mod openapi;
pub mod outbox;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::event::dynamodb;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::ingest::{
    batch_too_large, BatchRequest, IncomingBatch, IncomingEvent, IngestRequest, MAX_BATCH_BYTES,
};
use webhooks_shared::adapters::openapi::{
    BadRequest, PayloadTooLarge, ServiceUnavailable, Unauthorized, UnprocessableEntity,
};
use webhooks_shared::adapters::queue::Queue;
use webhooks_shared::adapters::store::{
    EncodedEvent, Paging, Store, StoreError, MAX_ITEM_BYTES, MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
};
use webhooks_shared::adapters::{http_api, Adapters, SdkConfig};
use webhooks_shared::domain::clock;
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids::{EventId, WebhookId};
use webhooks_shared::domain::model::EventRecord;
use webhooks_shared::domain::problem::{self, Problem};
use webhooks_shared::Config;

/// Bodies above this are cut off before they are read in full (the event limit is 256 KiB).
const BODY_READ_LIMIT: usize = 1024 * 1024;
/// How many DynamoDB writes of one request are in flight at once.
const CONCURRENT_WRITES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Accepted {
    /// The event id (given or assigned).
    pub id: EventId,
    /// Deliveries created: one per subscribed active webhook.
    pub deliveries: u32,
}

/// What became of one event of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored (now, or by an earlier request with the same content): delivered.
    Accepted(Accepted),
    /// The id was stored earlier for a different event: nothing done.
    Conflict(EventId),
}

impl Outcome {
    pub fn id(&self) -> &EventId {
        match self {
            Outcome::Accepted(accepted) => &accepted.id,
            Outcome::Conflict(id) => id,
        }
    }
}

/// As a batch answer lists it: `{"id", "deliveries"}` or `{"id", "conflict": true}`.
impl utoipa::PartialSchema for Outcome {
    fn schema() -> RefOr<Schema> {
        let conflict = ObjectBuilder::new()
            .description(Some(
                "This id was already used for a different event: nothing was done with it.",
            ))
            .property("id", Ref::from_schema_name(EventId::name()))
            .property(
                "conflict",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .required("id")
            .required("conflict")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new()
            .item(RefOr::Ref(Ref::from_schema_name(Accepted::name())))
            .item(conflict)
            .into()
    }
}

impl ToSchema for Outcome {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("BatchEventResult")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((Accepted::name().into(), Accepted::schema()));
        schemas.push((EventId::name().into(), EventId::schema()));
    }
}

/// As a batch answer lists it: `{"id", "deliveries"}` or `{"id", "conflict": true}`.
impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Outcome::Accepted(accepted) => accepted.serialize(serializer),
            Outcome::Conflict(id) => {
                let mut out = serializer.serialize_struct("Conflict", 2)?;
                out.serialize_field("id", id)?;
                out.serialize_field("conflict", &true)?;
                out.end()
            }
        }
    }
}

/// The outcome of each event of a batch, in request order (the 202's `BatchAccepted`: every
/// outcome is `Accepted` there, as any conflict makes the answer a [`BatchConflict`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(
    as = BatchAccepted,
    description = "Every event of the batch accepted, one result each, in request order."
)]
#[serde(deny_unknown_fields)]
pub struct BatchOutcome {
    /// One result per event of the request, in request order.
    #[schema(value_type = Vec<Accepted>)]
    pub events: Vec<Outcome>,
}

/// The 409 problem of a batch (RFC 9457 problem details plus `events`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConflict<'a> {
    #[serde(flatten)]
    pub problem: &'a Problem,
    /// One result per event of the request, in request order.
    pub events: &'a [Outcome],
}

impl BatchOutcome {
    /// The 409 to answer when some ids were stored earlier for different events; the other
    /// events are stored all the same.
    pub fn conflict(&self) -> Option<Problem> {
        let clashes: Vec<String> = self
            .events
            .iter()
            .enumerate()
            .filter_map(|(i, outcome)| match outcome {
                Outcome::Conflict(id) => Some(format!("events[{i}] ({id:?})")),
                Outcome::Accepted(_) => None,
            })
            .collect();
        if clashes.is_empty() {
            return None;
        }
        Some(Problem::conflict(format!(
            "event ids already used for different events (their type or data differ): {}; \
             the other events were accepted (see `events`). Send new ids for these, or resend \
             exactly the same events",
            clashes.join(", ")
        )))
    }
}

pub struct Fanout {
    store: Store,
    /// The deliveries queue.
    queue: Queue,
    retention: Duration,
    /// Where an event's webhooks are stored: in its item, or in pages beside it.
    paging: Paging,
}

/// What Lambda invokes fanout with: a request of the HTTP API, or a batch of the events
/// table's stream.
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
pub enum FanoutEvent {
    // First: an HTTP API request has no `Records`, so it never reads as a stream batch;
    // the other way round it might (most request fields are optional).
    Stream(dynamodb::Event),
    Http(Box<ApiGatewayV2httpRequest>),
}

/// The answer to either.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum FanoutResponse {
    Stream(DynamoDbEventResponse),
    Http(Box<ApiGatewayV2httpResponse>),
}

/// Builds fanout on `sdk`'s clients with `config`, one way: for the Lambda's `main`, the
/// local gateway and the tests. Its HTTP routes are [`router`] over it.
pub fn wire(sdk: &SdkConfig, config: &Config) -> Fanout {
    Fanout::new(Adapters::new(sdk, config), config)
}

impl Fanout {
    fn new(adapters: Adapters, config: &Config) -> Self {
        Fanout {
            store: adapters.store,
            queue: adapters.queue,
            retention: config.retention,
            paging: Paging::DEFAULT,
        }
    }

    /// This fanout with events' webhooks stored by `paging` instead of the default: tests
    /// make a few webhooks take pages.
    pub fn with_paging(mut self, paging: Paging) -> Self {
        self.paging = paging;
        self
    }

    /// One invocation: `router` (this function's [`router`]) answers HTTP API requests; a
    /// stream batch starts no new record after `deadline` ([`outbox::stream_deadline`]).
    pub async fn handle_until(
        &self,
        router: Router,
        event: FanoutEvent,
        deadline: std::time::Instant,
    ) -> FanoutResponse {
        match event {
            FanoutEvent::Stream(event) => {
                FanoutResponse::Stream(self.handle_stream_until(event, deadline).await)
            }
            FanoutEvent::Http(request) => {
                FanoutResponse::Http(Box::new(http_api::handle(router, *request).await))
            }
        }
    }

    /// `POST /api/v1/events`: a batch of one.
    pub async fn ingest(&self, body: &[u8]) -> Result<Accepted, Problem> {
        let now = SystemTime::now();
        let incoming = IncomingEvent::parse(body, now)?;
        match self.accept(vec![incoming], now).await?.pop() {
            Some(Outcome::Accepted(accepted)) => Ok(accepted),
            Some(Outcome::Conflict(id)) => Err(Problem::conflict(format!(
                "event id {id:?} was already used for a different event (its type or data differ); \
                 send a new id, or resend exactly the same event"
            ))),
            None => {
                tracing::error!("ingest accepted one event and returned no outcome");
                Err(Problem::unavailable())
            }
        }
    }

    /// `POST /api/v1/events/batch`: every event validated first, then all accepted at once.
    /// Conflicts are outcomes here (see [`BatchOutcome::conflict`]), not errors.
    pub async fn ingest_batch(&self, body: &[u8]) -> Result<BatchOutcome, Problem> {
        let now = SystemTime::now();
        let batch = IncomingBatch::parse(body, now)?;
        let outcomes = self.accept(batch.events, now).await?;
        let events = batch
            .positions
            .iter()
            .map(|&i| outcomes.get(i).cloned())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                tracing::error!("a batch position has no outcome");
                Problem::unavailable()
            })?;
        Ok(BatchOutcome { events })
    }

    /// Stores each event unless its id is stored already, with the webhooks subscribed now;
    /// one outcome per event, in order. The events' ids must be distinct. A failing backing
    /// service fails the whole call (503): sending the same events again stores the ones
    /// not stored yet. A stored event is delivered by the stream whatever became of the
    /// request that stored it, so nothing more is owed for one found stored.
    pub async fn accept(
        &self,
        events: Vec<IncomingEvent>,
        now: SystemTime,
    ) -> Result<Vec<Outcome>, Problem> {
        let subscribed = self
            .subscribed(events.iter().map(|e| e.event_type.as_str()))
            .await?;
        let records: Vec<EventRecord> = events
            .into_iter()
            .map(|incoming| EventRecord {
                webhooks: None, // given beside it: one list per type, however many events
                id: incoming.id,
                event_type: incoming.event_type,
                resource_id: incoming.resource_id,
                payload: incoming.payload,
                fingerprint: incoming.fingerprint,
                received_at: Timestamp::from(now),
                deliveries: None,
                webhook_pages: 0,
                expires_at: clock::expiry(now, self.retention),
            })
            .collect();
        let none = Vec::new();
        let webhooks_of = |record: &EventRecord| -> &[WebhookId] {
            subscribed.get(record.event_type.as_str()).unwrap_or(&none)
        };
        // Every event is encoded, and checked to fit DynamoDB's item and transaction limits,
        // before any is written: a batch with one that DynamoDB would refuse changes
        // nothing. Encoded again when written, so a batch of events with thousands of
        // webhooks each never holds all their pages at once.
        for record in &records {
            let webhooks = webhooks_of(record);
            EncodedEvent::with_webhooks(record, webhooks, self.paging)
                .map_err(|err| too_large(record, webhooks.len(), err))?;
        }
        // One conditional write per event: a PutItem, or with pages of webhooks one
        // TransactWriteItems (BatchWriteItem cannot be conditional). (The futures are made
        // before the stream: a closure over borrowed items would not be `Send` enough for
        // an axum handler.)
        let puts: Vec<_> = records
            .iter()
            .map(|record| async move {
                let encoded =
                    EncodedEvent::with_webhooks(record, webhooks_of(record), self.paging)?;
                self.store.put_encoded_event_if_new(encoded).await
            })
            .collect();
        let stored: Vec<Option<EventRecord>> = stream::iter(puts)
            .buffered(CONCURRENT_WRITES)
            .try_collect()
            .await
            .map_err(unavailable)?;

        Ok(records
            .into_iter()
            .zip(stored)
            .map(|(record, stored)| match stored {
                None => {
                    let deliveries = count(webhooks_of(&record).len());
                    tracing::info!(event_id = %record.id, event_type = %record.event_type, deliveries, "event stored");
                    Outcome::Accepted(Accepted {
                        id: record.id,
                        deliveries,
                    })
                }
                Some(stored) if stored.fingerprint != record.fingerprint => {
                    Outcome::Conflict(record.id)
                }
                Some(stored) => Outcome::Accepted(Accepted {
                    deliveries: deliveries(&stored),
                    id: stored.id,
                }),
            })
            .collect())
    }

    /// The active webhooks subscribed to each of `types`, read once per type.
    async fn subscribed(
        &self,
        types: impl Iterator<Item = &str>,
    ) -> Result<HashMap<String, Vec<WebhookId>>, Problem> {
        let mut types: Vec<String> = types.map(str::to_owned).collect();
        types.sort_unstable();
        types.dedup();
        let found = futures::future::try_join_all(types.into_iter().map(|event_type| async move {
            let subscribers = self.store.subscribers(&event_type).await?;
            let active = subscribers
                .into_iter()
                .filter(|s| s.active)
                .map(|s| s.webhook_id)
                .collect();
            Ok::<_, StoreError>((event_type, active))
        }))
        .await
        .map_err(unavailable)?;
        Ok(found.into_iter().collect())
    }
}

/// How many deliveries a stored event makes: one per webhook it was stored with (events
/// whose webhooks are in pages, and items stored before events kept their webhooks, say
/// their number).
fn deliveries(event: &EventRecord) -> u32 {
    match (&event.webhooks, event.deliveries) {
        (Some(webhooks), _) => count(webhooks.len()),
        (None, deliveries) => deliveries.unwrap_or(0),
    }
}

/// A number of webhooks as answered (one event is stored with ~135,000 at most).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An event that cannot be stored as it is: 413, saying what makes it big.
fn too_large(event: &EventRecord, webhooks: usize, err: StoreError) -> Problem {
    match err {
        StoreError::TooLarge { bytes } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "event {:?} would be stored as a {bytes}-byte item with its {webhooks} subscribed \
                 webhooks, over DynamoDB's 400 KB item limit ({MAX_ITEM_BYTES} bytes); send less data",
                event.id.as_str(),
            ),
        ),
        // Not the sender's to fix: the type has more webhooks than one event can be
        // stored with. Still a 413 (too large to store) rather than a 503 the platform
        // would retry for ever.
        StoreError::TransactionTooLarge { items, bytes } => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "event {:?} cannot be stored with its {webhooks} subscribed webhooks: with them \
                 it takes {items} items and {bytes} bytes, over what DynamoDB writes at once \
                 ({MAX_TRANSACTION_ITEMS} items, {MAX_TRANSACTION_BYTES} bytes). An event type \
                 can have at most about 130,000 active webhooks; an admin must pause or delete \
                 some of those subscribed to {:?}",
                event.id.as_str(),
                event.event_type,
            ),
        ),
        other => unavailable(other),
    }
}

fn unavailable(err: impl std::fmt::Display) -> Problem {
    tracing::error!(error = %err, "ingest failed on a backing service");
    Problem::unavailable()
}

/// The HTTP surface of this function: `POST /api/v1/events` and `POST /api/v1/events/batch`.
pub fn router(fanout: Arc<Fanout>) -> Router {
    let single = Router::new()
        .route("/api/v1/events", post(ingest))
        .layer(DefaultBodyLimit::max(BODY_READ_LIMIT));
    let batch = Router::new()
        .route("/api/v1/events/batch", post(ingest_batch))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES));
    http_api::catch_panics(single.merge(batch).with_state(fanout))
}

/// `Problem` as the response that carries it (problem+json).
type ProblemResponse = http::Response<String>;

/// Ingest an event and fan it out to subscribed webhooks
///
/// Stores the event once and creates one delivery per subscribed active webhook. Answers 202
/// once the event and its deliveries are durable. Idempotent on `id`. `data` may nest arrays
/// and objects at most 32 levels deep, its own object being the first: receivers' JSON
/// parsers have limits of their own (Python's `json` raises RecursionError near 1,000 levels,
/// jq 1.6 stops at 256), so deeper data is a 422 naming `data` rather than an event some
/// receivers cannot read. An `occurred_at` past 9999-12-31T23:59:59Z in UTC and a `data.id`
/// over 256 characters are 422s too.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "ingestEvent",
    tag = "ingest",
    security(("ingestBearer" = [])),
    request_body(content = IngestRequest, description = "At most 256 KiB."),
    responses(
        (status = 202, body = Accepted, description = "Accepted: the event and its deliveries are durable (or this id was already accepted with the same content)."),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 409, body = Problem, content_type = "application/problem+json",
            description = "The same event id was already used for different content."),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    )
)]
async fn ingest(
    State(fanout): State<Arc<Fanout>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ProblemResponse> {
    let body = body.map_err(|rejection| Problem::new(rejection.status(), rejection.body_text()))?;
    let accepted = fanout.ingest(&body).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Ingest up to 100 events in one request
///
/// Each event is what `POST /api/v1/events` takes, with the same rules and its own
/// idempotency by `id`. Every event is validated before any is stored: one bad event refuses
/// the whole batch (400, 413 or 422 naming `events[i]`, e.g. `events[2].data` nested deeper
/// than 32 levels) and nothing is stored. The same `id` twice in one batch with the same
/// content is one event (both positions get the same answer); with different content it is a
/// 400. Answers 202 once every event and its deliveries are durable, with one result per
/// event in request order. Resending the batch is safe.
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    operation_id = "ingestEventBatch",
    tag = "ingest",
    security(("ingestBearer" = [])),
    request_body(
        content = BatchRequest,
        description = "At most 4 MiB; each event at most 256 KiB (its own JSON text)."
    ),
    responses(
        (status = 202, body = BatchOutcome, description = "Accepted: every event and its deliveries are durable (events whose id was already accepted with the same content answer as they did then)."),
        (status = 400, body = Problem, content_type = "application/problem+json",
            description = "Malformed batch: bad JSON, unknown top-level fields, `events` not an array of 1 to 100 events, an event that `POST /api/v1/events` would refuse (the detail starts with `events[i]: `), or an id repeated in the batch with different content (`events[j].id: repeats events[i].id with different content`). Nothing is stored."),
        (status = 401, response = Unauthorized),
        (status = 409, body = BatchConflict, content_type = "application/problem+json",
            description = "Some event ids were already used for different content: the detail names their indexes and ids, and `events` gives every position's result. The other events are stored and fanned out all the same; resending the batch is safe."),
        (status = 413, body = Problem, content_type = "application/problem+json",
            description = "The body is larger than 4 MiB, or one event is larger than 256 KiB (the detail names its index). Nothing is stored."),
        (status = 422, response = UnprocessableEntity),
        (status = 503, response = ServiceUnavailable),
    )
)]
async fn ingest_batch(
    State(fanout): State<Arc<Fanout>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<BatchOutcome>), ProblemResponse> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => batch_too_large(None),
        status => Problem::new(status, rejection.body_text()),
    })?;
    let outcome = fanout.ingest_batch(&body).await?;
    match outcome.conflict() {
        None => Ok((StatusCode::ACCEPTED, Json(outcome))),
        Some(conflict) => Err(conflict_response(conflict, &outcome)),
    }
}

/// A 409 problem that also lists each event's outcome (`events`).
fn conflict_response(conflict: Problem, outcome: &BatchOutcome) -> ProblemResponse {
    let document = BatchConflict {
        problem: &conflict,
        events: &outcome.events,
    };
    match serde_json::to_string(&document) {
        Ok(body) => {
            let mut response = http::Response::new(body);
            *response.status_mut() = conflict.status_code();
            response.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static(problem::CONTENT_TYPE),
            );
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "conflict answer cannot be written");
            conflict.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn each_event_source_reads_as_its_own_kind() {
        let stream: FanoutEvent = serde_json::from_value(json!({"Records": [{
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": 1_795_000_000, "Keys": {"id": {"S": "e"}},
                "NewImage": {"id": {"S": "e"}}, "SequenceNumber": "5", "SizeBytes": 9,
                "StreamViewType": "NEW_IMAGE"}
        }]}))
        .unwrap();
        assert!(matches!(stream, FanoutEvent::Stream(e) if e.records.len() == 1));
        let http: FanoutEvent = serde_json::from_value(json!({
            "version": "2.0", "routeKey": "POST /api/v1/events", "rawPath": "/api/v1/events",
            "rawQueryString": "", "headers": {"content-type": "application/json"},
            "requestContext": {"http": {"method": "POST", "path": "/api/v1/events",
                "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
                "accountId": "1", "apiId": "a", "domainName": "d", "domainPrefix": "d",
                "requestId": "r", "routeKey": "POST /api/v1/events", "stage": "$default",
                "time": "t", "timeEpoch": 0},
            "body": "{}", "isBase64Encoded": false
        }))
        .unwrap();
        assert!(
            matches!(http, FanoutEvent::Http(r) if r.raw_path.as_deref() == Some("/api/v1/events"))
        );
    }

    #[test]
    fn an_event_too_large_to_store_is_a_413_that_says_why() {
        let event = EventRecord {
            id: EventId::from("evt_big"),
            event_type: "order.completed".into(),
            resource_id: None,
            payload: "{}".into(),
            fingerprint: String::new(),
            received_at: Timestamp::from(SystemTime::UNIX_EPOCH),
            webhooks: None,
            deliveries: None,
            webhook_pages: 0,
            expires_at: 0,
        };
        let problem = too_large(&event, 3, StoreError::TooLarge { bytes: 500_000 });
        assert_eq!(problem.status, 413);
        assert!(
            problem.detail.contains("evt_big")
                && problem.detail.contains("500000-byte")
                && problem.detail.contains("3 subscribed webhooks"),
            "{}",
            problem.detail
        );

        // More webhooks than one transaction carries: refused before any write, and the
        // answer says it is the type's webhooks, not the data.
        let webhooks: Vec<WebhookId> = (0..150_000)
            .map(|i| WebhookId::from(format!("wh_01jdq8z3x4y5w6v7u8t9s{i:06}")))
            .collect();
        let err = EncodedEvent::with_webhooks(&event, &webhooks, Paging::DEFAULT).unwrap_err();
        let problem = too_large(&event, webhooks.len(), err);
        assert_eq!(problem.status, 413);
        assert!(
            problem.detail.contains("150000 subscribed webhooks")
                && problem.detail.contains("\"order.completed\"")
                && problem.detail.contains("at most about 130,000"),
            "{}",
            problem.detail
        );
    }

    fn accepted(id: &str, deliveries: u32) -> Outcome {
        Outcome::Accepted(Accepted {
            id: EventId::from(id),
            deliveries,
        })
    }

    #[test]
    fn a_batch_answer_lists_each_position_in_order() {
        let outcome = BatchOutcome {
            events: vec![accepted("a", 2), accepted("b", 0), accepted("a", 2)],
        };
        assert_eq!(outcome.conflict(), None);
        assert_eq!(
            serde_json::to_value(&outcome).unwrap(),
            json!({"events": [
                {"id": "a", "deliveries": 2},
                {"id": "b", "deliveries": 0},
                {"id": "a", "deliveries": 2},
            ]})
        );
    }

    #[test]
    fn conflicts_are_a_409_naming_indexes_and_ids_with_every_outcome() {
        let outcome = BatchOutcome {
            events: vec![
                accepted("a", 1),
                Outcome::Conflict(EventId::from("used")),
                accepted("b", 3),
                Outcome::Conflict(EventId::from("used-too")),
            ],
        };
        let problem = outcome.conflict().unwrap();
        assert_eq!(problem.status, 409);
        assert!(
            problem
                .detail
                .contains(r#"events[1] ("used"), events[3] ("used-too")"#),
            "{}",
            problem.detail
        );
        let response = conflict_response(problem, &outcome);
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            problem::CONTENT_TYPE
        );
        let body: Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(body["status"], 409);
        assert_eq!(body["title"], "Conflict");
        assert_eq!(
            body["events"],
            json!([
                {"id": "a", "deliveries": 1},
                {"id": "used", "conflict": true},
                {"id": "b", "deliveries": 3},
                {"id": "used-too", "conflict": true},
            ])
        );
    }
}
