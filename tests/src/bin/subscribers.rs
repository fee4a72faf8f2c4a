//! `make bench-subscribers`: one event type with 10,000 active webhooks (issue 21). Ingest
//! answers 202 for its events, fan-out queues exactly one message per webhook for each, and
//! the admin list pages through all of them. Against the local stack (moto), in a process
//! of its own; measured, not run in CI.
//!
//! - **Webhooks**: `--webhooks` (10,000), the items admin-api writes (a webhook with its
//!   KMS-sealed secret, its subscription), all subscribed to `competition.created` and
//!   active, pointing at hosts that do not exist; written in batches (moto copies whole
//!   tables for every transaction).
//! - **Ingest**: fanout's own handler, as Lambda invokes it (an HTTP API request through
//!   `http_api::handle`): `--events` (5) single events of about 1 KB, then one batch of
//!   `--batch` (10) events. Each answer must be 202 with `deliveries` = the webhook count;
//!   each event must be stored with its webhooks in pages (the real threshold: 1,000).
//! - **Fan-out**: each stored event is handed to fanout's stream handler as the stream
//!   would hand it (the event's item and its pages' items as `INSERT` records of one batch),
//!   and the messages on the queue are counted (`ApproximateNumberOfMessages`, exact in
//!   moto): exactly one per webhook. The first event's batch is handed over again: the count
//!   must not move (the FIFO queue drops the copies).
//! - **List**: `GET /api/v1/webhooks` through the gateway, page after page of 100 until
//!   `next_cursor` is null: every webhook of ours on exactly one page.
//!
//! Deliveries are not made: fanout writes to an events table and a FIFO queue of the
//! bench's own (so the gateway's stream reader and deliver never see these events). What is
//! measured is ingest and fan-out, which is what 10,000 subscribers strain; deliver handles
//! each message as any other. Each event gets a queue of its own: moto compares every new
//! FIFO message with every message in its queue (deduplication), so one queue of 50,000
//! would measure moto. Timings are the emulator's (one Python process on this machine), not
//! AWS's: the counts are the result, the times an upper bound. moto writes out a query's
//! answer at ~2.5 ms an item, so reading 10,000 subscriptions takes ~25 s there (DynamoDB:
//! one 1 MB page) and the bench lifts the SDK's stalled-stream protection for fanout's calls.
//!
//! Exits non-zero when a check fails. Results: `bench-results/subscribers-latest.json`.
//!
//!     subscribers [--webhooks 10000] [--events 5] [--batch 10]

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::dynamodb;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ScalarAttributeType, WriteRequest,
};
use aws_sdk_sqs::types::QueueAttributeName;
use base64::Engine;
use futures::stream::{self, StreamExt};
use integration_tests::bench_support::{order_of_about_1_kb, summary, write_results};
use integration_tests::lambda_events::http_api_request;
use integration_tests::{cli_arg, unique, Api, Harness};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use webhooks_shared::adapters::{http_api, Adapters};
use webhooks_shared::domain::clock::Timestamp;
use webhooks_shared::domain::ids;
use webhooks_shared::domain::model::{NewWebhook, StoredSecret, SubscriptionRecord, WebhookRecord};
use webhooks_shared::domain::signing::SigningSecret;

const EVENT_TYPE: &str = "competition.created";
/// Webhooks made at once.
const CONCURRENT_CREATES: usize = 16;

/// A check that failed: reported, and the bench exits non-zero.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            let what = what();
            eprintln!(
                "CHECK FAILED: {what}\n(the last problems logged:\n{})",
                Harness::recent_problems(3).join("\n")
            );
            self.0.push(what);
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let webhooks = cli_arg("--webhooks", 10_000);
    let singles = cli_arg("--events", 5);
    let batch = cli_arg("--batch", 10);
    let h = Harness::get();
    let mut checks = Checks::default();
    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk_config().await);
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);

    let (made, create_s) = make_webhooks(&ddb, webhooks).await;

    // fanout over an events table and queues of the bench's own. The runner's credentials:
    // the bench's own table and queues are in no function's role. moto takes ~2.5 ms an
    // item to write out a query's answer: the 10,000 subscriptions take ~25 s, more on a
    // busy machine, which can pass even the tests' 60 s stalled-stream grace (DynamoDB
    // answers the same 1 MB in well under a second), so the bench lifts that protection.
    let events_table = own_events_table(&ddb).await;
    let sdk = h
        .sdk_config()
        .await
        .to_builder()
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .build();
    let fanout_for = |queue_url: &str| {
        let config = h.config(&[
            ("EVENTS_TABLE", events_table.as_str()),
            ("DELIVERY_QUEUE_URL", queue_url),
        ]);
        Arc::new(fanout::wire(&sdk, &config))
    };
    // Ingest does not queue: one fanout for it, any queue.
    let ingest_queue = h.own_fifo_queue("bench-subscribers-ingest", 30).await;
    let router = fanout::router(fanout_for(&ingest_queue.url));

    let ingested = ingest(&router, &mut checks, webhooks, singles, batch).await;
    let layouts = stored_layouts(&ddb, &events_table, &ingested, webhooks, &mut checks).await;

    // Fan-out: the stream handler, one batch per event (its item and its pages), each
    // event onto a queue of its own.
    let mut fanout_ms = Vec::new();
    let mut counted = Vec::new();
    let mut handed_again = Value::Null;
    for (n, id) in ingested.event_ids.iter().enumerate() {
        let queue = h.own_fifo_queue("bench-subscribers", 900).await;
        let fanout = fanout_for(&queue.url);
        let batch = stream_batch(&ddb, &events_table, id, n).await;
        let started = Instant::now();
        let answer = fanout.handle_stream(batch.clone()).await;
        fanout_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        checks.expect(answer.batch_item_failures.is_empty(), || {
            format!(
                "{id}: records handed back: {:?}",
                answer.batch_item_failures.len()
            )
        });
        let on_queue = messages_on(&sqs, &queue.url).await;
        checks.expect(on_queue == webhooks, || {
            format!("{id}: {on_queue} messages queued, not {webhooks}")
        });
        counted.push(on_queue);
        if n == 0 {
            // The same batch handed over again (a retry after a failure): no message more.
            let started = Instant::now();
            let answer = fanout.handle_stream(batch).await;
            let again_ms = started.elapsed().as_secs_f64() * 1000.0;
            let after = messages_on(&sqs, &queue.url).await;
            checks.expect(
                answer.batch_item_failures.is_empty() && after == webhooks,
                || format!("handed over again: {after} messages on the queue"),
            );
            handed_again = json!({"ms": again_ms, "messages_on_queue_after": after});
        }
        let _ = sqs.delete_queue().queue_url(&queue.url).send().await;
    }

    let list = list_every_page(&made, &mut checks).await;

    let results = json!({
        "bench": "subscribers",
        "what": "one event type with this many active webhooks: ingest (fanout's handler via http_api::handle), fan-out (fanout's stream handler, messages counted on the queue), and the admin list paged through the gateway; against moto on this machine",
        "webhooks": webhooks,
        "event_type": EVENT_TYPE,
        "create_webhooks": {"seconds": create_s, "per_second": webhooks as f64 / create_s},
        "ingest_single": {"events": singles, "latency": summary(ingested.single_ms)},
        "ingest_batch": {"events": batch, "status": ingested.batch_status, "ms": ingested.batch_ms, "deliveries": ingested.batch_counts},
        "stored": layouts,
        "fanout": {
            "events": singles,
            "messages_per_event": counted,
            "expected_per_event": webhooks,
            "latency": summary(fanout_ms.clone()),
            "messages_per_second": fanout_ms.iter().map(|ms| webhooks as f64 / (ms / 1000.0)).sum::<f64>() / fanout_ms.len().max(1) as f64,
            "handed_over_again": handed_again,
        },
        "list": list,
        "deliveries_made": false,
        "failed_checks": checks.0,
    });
    let text = serde_json::to_string_pretty(&results).expect("json");
    let path = write_results(&h.root, "subscribers", &text);
    println!("{text}");
    eprintln!("results: {}", path.display());
    if !checks.0.is_empty() {
        std::process::exit(1);
    }
}

/// `count` webhooks of one type: the items admin-api writes (the webhook with its
/// KMS-sealed secret, its subscription), written in batches. admin-api writes each in a
/// transaction of its own; moto copies the tables a transaction touches, whole, for each
/// one, which would make 10,000 of them take most of an hour. Their ids, and the seconds.
async fn make_webhooks(ddb: &aws_sdk_dynamodb::Client, count: usize) -> (Vec<String>, f64) {
    let h = Harness::get();
    let adapters = h.adapters(&h.config(&[])).await;
    eprintln!("making {count} webhooks subscribed to {EVENT_TYPE}…");
    let started = Instant::now();
    let records: Vec<WebhookRecord> = stream::iter(0..count)
        .map(|i| webhook(&adapters, i))
        .buffer_unordered(CONCURRENT_CREATES)
        .collect()
        .await;
    write_webhooks(ddb, &records).await;
    let made: Vec<String> = records.iter().map(|w| w.id.to_string()).collect();
    let create_s = started.elapsed().as_secs_f64();
    eprintln!("made {} in {create_s:.1} s", made.len());
    (made, create_s)
}

/// What ingest answered for the single events and the batch.
struct Ingested {
    event_ids: Vec<String>,
    batch_ids: Vec<String>,
    single_ms: Vec<f64>,
    batch_status: i64,
    batch_ms: f64,
    batch_counts: Vec<Value>,
}

/// Ingest through fanout's own handler: `singles` events, one batch of `batch`, then a
/// stored id with other data (409). Each answer must count `webhooks` deliveries.
async fn ingest(
    router: &axum::Router,
    checks: &mut Checks,
    webhooks: usize,
    singles: usize,
    batch: usize,
) -> Ingested {
    let mut rng = StdRng::seed_from_u64(21);
    let mut event_ids = Vec::new();
    let mut single_ms = Vec::new();
    for _ in 0..singles {
        let event_id = unique("evt-subscribers");
        let body = json!({"id": event_id, "type": EVENT_TYPE, "data": order_of_about_1_kb(&mut rng, &event_id)});
        let started = Instant::now();
        let (status, answer) = post(router, "/api/v1/events", &body).await;
        single_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        checks.expect(status == 202, || {
            format!("ingest answered {status}: {answer}")
        });
        checks.expect(answer["deliveries"] == webhooks, || {
            format!(
                "ingest counted {} deliveries, not {webhooks}",
                answer["deliveries"]
            )
        });
        event_ids.push(event_id);
    }
    let batch_ids: Vec<String> = (0..batch)
        .map(|_| unique("evt-subscribers-batch"))
        .collect();
    let events: Vec<Value> = batch_ids
        .iter()
        .map(|id| json!({"id": id, "type": EVENT_TYPE, "data": order_of_about_1_kb(&mut rng, id)}))
        .collect();
    let started = Instant::now();
    let (batch_status, batch_answer) =
        post(router, "/api/v1/events/batch", &json!({ "events": events })).await;
    let batch_ms = started.elapsed().as_secs_f64() * 1000.0;
    checks.expect(batch_status == 202, || {
        format!("batch ingest answered {batch_status}: {batch_answer}")
    });
    let batch_counts: Vec<Value> = batch_answer["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["deliveries"].clone())
        .collect();
    checks.expect(
        batch_counts.len() == batch && batch_counts.iter().all(|d| *d == webhooks),
        || format!("batch deliveries {batch_counts:?}, expected {batch} x {webhooks}"),
    );
    // Ingest answered again for a stored event: the same count, nothing written.
    if let Some(first) = event_ids.first() {
        let again = json!({"id": first, "type": EVENT_TYPE, "data": {}});
        let (status, _) = post(router, "/api/v1/events", &again).await;
        checks.expect(status == 409, || {
            format!("other data under a stored id answered {status}, not 409")
        });
    }
    Ingested {
        event_ids,
        batch_ids,
        single_ms,
        batch_status,
        batch_ms,
        batch_counts,
    }
}

/// How each ingested event is stored: its webhooks all in pages, none in the event's item.
async fn stored_layouts(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    ingested: &Ingested,
    webhooks: usize,
    checks: &mut Checks,
) -> Vec<Value> {
    let mut layouts = Vec::new();
    for id in ingested.event_ids.iter().chain(&ingested.batch_ids) {
        let (item, pages) = stored_items(ddb, table, id).await;
        let listed: usize = pages
            .iter()
            .map(|p| {
                p.get("webhooks")
                    .and_then(|l| l.as_l().ok())
                    .map_or(0, Vec::len)
            })
            .sum();
        checks.expect(listed == webhooks && !item.contains_key("webhooks"), || {
            format!("{id}: {listed} webhooks in {} pages", pages.len())
        });
        layouts.push(json!({
            "pages": pages.len(),
            "event_item_bytes": webhooks_shared::adapters::store::item_size(&item),
            "page_item_bytes": pages.iter().map(webhooks_shared::adapters::store::item_size).collect::<Vec<_>>(),
        }));
    }
    layouts
}

/// The stream batch the events table's stream hands fanout for event `id` (the `n`th):
/// its item and its pages' items as `INSERT` records.
async fn stream_batch(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    id: &str,
    n: usize,
) -> dynamodb::Event {
    let (item, pages) = stored_items(ddb, table, id).await;
    let records: Vec<Value> = std::iter::once(&item)
        .chain(&pages)
        .enumerate()
        .map(|(i, image)| stream_record(image, &format!("{}{i:04}", 1000 + n)))
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("stream batch")
}

/// `GET /api/v1/webhooks` through the gateway, page after page of 100 until `next_cursor`
/// is null: every webhook of ours on exactly one page.
async fn list_every_page(made: &[String], checks: &mut Checks) -> Value {
    let api = Api::new();
    let mut page_ms = Vec::new();
    let mut seen = HashSet::new();
    let mut repeated = 0;
    let mut cursor: Option<String> = None;
    let started = Instant::now();
    loop {
        let page_started = Instant::now();
        let page = api.webhooks_page(None, cursor.as_deref()).await;
        page_ms.push(page_started.elapsed().as_secs_f64() * 1000.0);
        checks.expect(page.status == 200, || format!("list page: {}", page.text));
        if page.status != 200 {
            break;
        }
        for w in page.json["webhooks"].as_array().into_iter().flatten() {
            if !seen.insert(w["id"].as_str().unwrap_or_default().to_owned()) {
                repeated += 1;
            }
        }
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let list_s = started.elapsed().as_secs_f64();
    let ours_listed = made.iter().filter(|id| seen.contains(*id)).count();
    checks.expect(ours_listed == made.len() && repeated == 0, || {
        format!(
            "list: {ours_listed} of {} listed, {repeated} twice",
            made.len()
        )
    });
    json!({
        "pages": page_ms.len(),
        "page_size": 100,
        "webhooks_listed": seen.len(),
        "ours_listed": ours_listed,
        "listed_twice": repeated,
        "page_latency": summary(page_ms),
        "total_seconds": list_s,
    })
}

/// Webhook `i`, active, subscribed to [`EVENT_TYPE`], as admin-api makes it (its secret
/// sealed by KMS under its id).
async fn webhook(adapters: &Adapters, i: usize) -> WebhookRecord {
    let id = ids::new_webhook_id();
    let secret = SigningSecret::generate();
    let sealed = adapters
        .secrets
        .seal(&id, &secret)
        .await
        .unwrap_or_else(|err| panic!("webhook {i}: sealing its secret: {err}"));
    let new = NewWebhook {
        name: format!("subscriber {i}"),
        url: format!("https://subscriber-{i}.example.invalid/hook"),
        events: vec![EVENT_TYPE.to_owned()],
        active: true,
    };
    let sealed = StoredSecret {
        ciphertext: sealed,
        hint: secret.hint(),
    };
    WebhookRecord::created(id, new, sealed, Timestamp::now())
}

/// The webhooks' items and their subscriptions' items, 25 a `BatchWriteItem`.
async fn write_webhooks(ddb: &aws_sdk_dynamodb::Client, webhooks: &[WebhookRecord]) {
    let h = Harness::get();
    let (webhooks_table, subscriptions_table) =
        (h.env("WEBHOOKS_TABLE"), h.env("SUBSCRIPTIONS_TABLE"));
    let mut puts: Vec<(String, Item)> = Vec::new();
    for w in webhooks {
        puts.push((
            webhooks_table.clone(),
            serde_dynamo::to_item(w).expect("item"),
        ));
        let subscription = SubscriptionRecord {
            event_type: EVENT_TYPE.to_owned(),
            webhook_id: w.id.clone(),
            active: true,
        };
        puts.push((
            subscriptions_table.clone(),
            serde_dynamo::to_item(subscription).expect("item"),
        ));
    }
    let batches: Vec<_> = puts.chunks(25).map(<[_]>::to_vec).collect();
    stream::iter(batches)
        .for_each_concurrent(CONCURRENT_CREATES, |batch| async move {
            let mut requests: std::collections::HashMap<String, Vec<WriteRequest>> =
                std::collections::HashMap::new();
            for (table, item) in batch {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .expect("put");
                requests
                    .entry(table)
                    .or_default()
                    .push(WriteRequest::builder().put_request(put).build());
            }
            for _ in 0..20 {
                let out = ddb
                    .batch_write_item()
                    .set_request_items(Some(requests))
                    .send()
                    .await
                    .expect("batch write");
                requests = out.unprocessed_items.unwrap_or_default();
                if requests.values().all(Vec::is_empty) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("webhooks not written after 20 tries");
        })
        .await;
}

/// `POST path` with `body`, as API Gateway hands it to fanout: the status and the JSON.
async fn post(router: &axum::Router, path: &str, body: &Value) -> (i64, Value) {
    let text = body.to_string();
    let request: ApiGatewayV2httpRequest =
        serde_json::from_value(http_api_request("POST", path, Some(&text), None)).expect("request");
    let response = http_api::handle(router.clone(), request).await;
    let answer = match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        }
        _ => Value::Null,
    };
    (response.status_code, answer)
}

/// An events table of the bench's own (no stream: nothing fans its events out but the
/// bench's calls).
async fn own_events_table(ddb: &aws_sdk_dynamodb::Client) -> String {
    let name = unique("bench-subscribers-events");
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("key"),
        )
        .send()
        .await
        .expect("create events table");
    name
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// The event's item and its pages' items.
async fn stored_items(ddb: &aws_sdk_dynamodb::Client, table: &str, id: &str) -> (Item, Vec<Item>) {
    let get = |key: String| async move {
        ddb.get_item()
            .table_name(table)
            .key("id", AttributeValue::S(key))
            .consistent_read(true)
            .send()
            .await
            .expect("get item")
            .item
    };
    let item = get(id.to_owned()).await.expect("event stored");
    let pages: u32 = item
        .get("webhook_pages")
        .and_then(|n| n.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut found = Vec::new();
    for n in 1..=pages {
        found.push(
            get(format!("{id}#webhooks#{n}"))
                .await
                .unwrap_or_else(|| panic!("{id}: page {n} of {pages} missing")),
        );
    }
    (item, found)
}

/// The `INSERT` record the events table's stream makes of `item`, as Lambda hands it over.
fn stream_record(item: &Item, sequence: &str) -> Value {
    let image: serde_json::Map<String, Value> = item
        .iter()
        .map(|(k, v)| (k.clone(), dynamodb_json(v)))
        .collect();
    json!({
        "eventID": sequence, "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2026-12-01T00:00:00.000",
        "dynamodb": {
            "ApproximateCreationDateTime": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs(),
            "Keys": {"id": image.get("id").cloned().unwrap_or(Value::Null)},
            "NewImage": image,
            "SequenceNumber": sequence, "SizeBytes": 1, "StreamViewType": "NEW_IMAGE"
        }
    })
}

/// An attribute value in DynamoDB JSON (binary as base64), as Lambda's records carry it.
fn dynamodb_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => {
            json!({"B": base64::engine::general_purpose::STANDARD.encode(b.as_ref())})
        }
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::L(l) => json!({"L": l.iter().map(dynamodb_json).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": m
            .iter()
            .map(|(k, v)| (k.clone(), dynamodb_json(v)))
            .collect::<serde_json::Map<_, _>>()}),
        AttributeValue::Ss(ss) => json!({ "SS": ss }),
        AttributeValue::Ns(ns) => json!({ "NS": ns }),
        other => panic!("no DynamoDB JSON for {other:?}"),
    }
}

/// The messages waiting on a queue (exact in moto).
async fn messages_on(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
