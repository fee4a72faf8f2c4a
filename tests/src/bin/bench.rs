//! `make bench`: measures the pipeline on this machine — ingest latency, end-to-end delivery
//! latency and throughput through the real handlers, moto and HTTPS receivers, plus the
//! signing hot path — and writes the results to `bench-results/`.
//!
//! Numbers include the emulator's own cost (moto is far slower than DynamoDB/SQS); compare
//! runs with each other on the same machine, not with production.
//!
//! Then what a delivery costs on AWS: 1 KB events to one and to five webhooks, every AWS
//! call metered as AWS bills it (`cost.rs`), priced at list prices, written to
//! `bench-results/cost-latest.json` and printed as the tables the README and docs/measurements.md show.
//!
//! First, each function's cold start: its init (release build, process start to its first
//! Runtime API `next`, with no AWS call before it) and, when `make package` has built them,
//! its arm64 zip's size: `bench-results/init-latest.json`.
//!
//!     bench [--init-runs 20] [--events 200] [--webhooks 3] [--posters 1] [--cost-events 100]
//!           [--cost-posters 4]
//!
//! Every receiver answers as a real one does (`Reply::realistic`: ten headers, about 400
//! bytes, and a 200-byte JSON body), as the delivery log records responses.
//!
//! A part given 0 (`--events 0`, say) is skipped.

use std::time::{Duration, Instant, SystemTime};

use futures::stream::{self, StreamExt};
use integration_tests::bench_support::{order_of_about_1_kb, summary, write_results};
use integration_tests::cost::{Cost, Usage, EVENTBRIDGE_API_DESTINATIONS_PER_MILLION, LIST_PRICES};
use integration_tests::{cli_arg, functions, unique, Api, Harness, Receiver, Reply};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use serde_json::{json, Value};
use webhooks_shared::domain::signing::SigningSecret;

fn signing_ns_per_op(iterations: u32) -> f64 {
    let secret = SigningSecret::generate();
    let body = vec![b'x'; 1024];
    let started = Instant::now();
    let mut sink = 0usize;
    for i in 0..iterations {
        sink += secret.comps_signature(&body).len();
        sink += secret
            .standard_signature("evt_1", i64::from(i), &body)
            .len();
    }
    assert!(sink > 0);
    started.elapsed().as_nanos() as f64 / f64::from(iterations)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let h = Harness::get();
    cold_starts(h, cli_arg("--init-runs", 20)).await;
    latency(
        h,
        cli_arg("--events", 200),
        cli_arg("--webhooks", 3),
        cli_arg("--posters", 1),
    )
    .await;
    cost(
        h,
        cli_arg("--cost-events", 100),
        cli_arg("--cost-posters", 4),
    )
    .await;
}

/// Ingest and end-to-end latency and throughput: `latest.json`. Events are posted by
/// `posters` clients at once (one by default, as the baseline was measured; 8 loaded the
/// single emulator process more and delivered no faster, 2026-11-28).
async fn latency(h: &Harness, events: usize, webhooks: usize, posters: usize) {
    if events == 0 {
        return;
    }
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::realistic()]).await;
    for _ in 0..webhooks {
        api.create_webhook(&unique("bench"), &receiver.url, &["competition.created"])
            .await;
    }

    // Ingest: each poster sends one event at a time.
    h.proxy.take_counts();
    h.invocations.take();
    let run_started = Instant::now();
    let sent: Vec<(f64, (String, SystemTime))> = stream::iter(0..events)
        .map(|_| {
            let api = &api;
            async move {
                let event_id = unique("bench-evt");
                let started = Instant::now();
                let answer = api
                    .post_event(json!({"id": event_id, "type": "competition.created", "data": {"id": "cmp_1", "title": "bench"}}))
                    .await;
                assert_eq!(answer.status, 202, "{}", answer.text);
                let took = started.elapsed();
                (took.as_secs_f64() * 1000.0, (event_id, SystemTime::now() - took))
            }
        })
        .buffer_unordered(posters.max(1))
        .collect()
        .await;
    let (ingest, posted): (Vec<f64>, Vec<(String, SystemTime)>) = sent.into_iter().unzip();

    // Delivery: wait until every receiver request arrived.
    let expected = events * webhooks;
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.requests().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = run_started.elapsed().as_secs_f64();
    let time_goes = where_the_time_goes(h, (events * webhooks) as f64);
    let requests = receiver.requests();
    let mut end_to_end = Vec::new();
    for (event_id, sent_at) in &posted {
        for r in requests
            .iter()
            .filter(|r| r.header("x-comps-event-id") == event_id)
        {
            end_to_end.push(
                r.at.duration_since(*sent_at)
                    .unwrap_or_default()
                    .as_secs_f64()
                    * 1000.0,
            );
        }
    }
    let result = json!({
        "at": webhooks_shared::domain::clock::rfc3339_seconds(SystemTime::now()),
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "events": events,
        "webhooks_per_event": webhooks,
        "posters": posters,
        "deliveries_expected": expected,
        "deliveries_received": requests.len(),
        "ingest_latency": summary(ingest),
        "end_to_end_latency": summary(end_to_end),
        "deliveries_per_second": requests.len() as f64 / total,
        "signing_ns_per_delivery_1kib": signing_ns_per_op(20_000),
        "per_delivery": time_goes,
    });
    let text = serde_json::to_string_pretty(&result).expect("json");
    write_results(&h.root, "", &text);
    println!("{text}");
    assert_eq!(requests.len(), expected, "every delivery arrived");
}

/// Per delivery: each function's handler time, and each AWS call's count and the time the
/// emulator took to answer it (the local stack's bottleneck), busiest first; also printed.
fn where_the_time_goes(h: &Harness, deliveries: f64) -> Value {
    let mut calls: Vec<(String, f64, f64)> = h
        .proxy
        .take_counts()
        .into_iter()
        .map(|(action, c)| {
            (
                action,
                c.calls as f64 / deliveries,
                c.emulator_time.as_secs_f64() * 1000.0 / deliveries,
            )
        })
        .collect();
    calls.sort_by(|a, b| b.2.total_cmp(&a.2));
    let handlers: Vec<(String, f64)> = h
        .invocations
        .take()
        .functions
        .into_iter()
        .map(|(f, i)| (f, i.busy.as_secs_f64() * 1000.0 / deliveries))
        .collect();
    let mut table = String::from("| per delivery | calls | ms |\n|---|---|---|\n");
    for (function, ms) in &handlers {
        table.push_str(&format!("| {function} handler | | {ms:.1} |\n"));
    }
    for (action, n, ms) in &calls {
        if action == "sqs:ReceiveMessage" {
            // Long polls: mostly waiting for messages, not work.
            table.push_str(&format!(
                "| emulator: {action} (long polls) | {n:.2} | - |\n"
            ));
        } else {
            table.push_str(&format!("| emulator: {action} | {n:.2} | {ms:.1} |\n"));
        }
    }
    eprintln!("{table}");
    json!({
        "handler_ms": handlers.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        "emulator": calls.iter().map(|(a, n, ms)| json!({"action": a, "calls": n, "ms": ms})).collect::<Vec<_>>(),
    })
}

/// Events per request in the cost part's batch scenarios.
const BATCH: usize = 100;

/// How events reach the service in a cost scenario.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
enum Ingest {
    OneEventPerRequest,
    /// `POST /api/v1/events/batch`, this many events per request.
    Batches(usize),
}

struct Scenario {
    ingest: Ingest,
    subscribers: usize,
    event_type: &'static str,
}

/// What a delivery costs: `cost-latest.json` and a Markdown table. Events are posted
/// `posters` requests at a time (the platform posts as orders come, not one after another);
/// batches hold 100 events.
async fn cost(h: &Harness, events: usize, posters: usize) {
    if events == 0 {
        return;
    }
    let posters = posters.max(1);
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::realistic()]).await;
    let scenarios = [
        Scenario {
            ingest: Ingest::OneEventPerRequest,
            subscribers: 1,
            event_type: "order.completed",
        },
        Scenario {
            ingest: Ingest::OneEventPerRequest,
            subscribers: 5,
            event_type: "order.refunded",
        },
        Scenario {
            ingest: Ingest::Batches(BATCH),
            subscribers: 1,
            event_type: "winner.drawn",
        },
        Scenario {
            ingest: Ingest::Batches(BATCH),
            subscribers: 5,
            event_type: "withdrawal.paid",
        },
    ];
    let mut rng = StdRng::seed_from_u64(10);
    let mut rows = Vec::new();
    for scenario in &scenarios {
        for _ in 0..scenario.subscribers {
            api.create_webhook(&unique("cost"), &receiver.url, &[scenario.event_type])
                .await;
        }
        let bodies: Vec<Value> = (0..events + 5)
            .map(|_| {
                let mut event = order_of_about_1_kb(&mut rng, &unique("cost-evt"));
                event["type"] = json!(scenario.event_type);
                event
            })
            .collect();
        // A few first, so each container is warm (its signing secret opened, its clients
        // connected) before the meters start: the cost of a warm delivery.
        let (warm_up, measured) = bodies.split_at(5);
        post_all(&api, warm_up, scenario.ingest, posters).await;
        wait_for(&receiver, warm_up, scenario.subscribers).await;
        h.reset_meters().await;
        let mean_event_bytes =
            measured.iter().map(|e| e.to_string().len()).sum::<usize>() / measured.len().max(1);
        post_all(&api, measured, scenario.ingest, posters).await;
        wait_for(&receiver, measured, scenario.subscribers).await;
        // The last batches' deletes follow their handlers.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let deliveries = (measured.len() * scenario.subscribers) as f64;
        let per_delivery = h.usage().await.per(deliveries);
        let cost = per_delivery.cost_per_million(&LIST_PRICES);
        rows.push(Row {
            ingest: scenario.ingest,
            posters,
            subscribers: scenario.subscribers,
            events: measured.len(),
            mean_event_bytes,
            cost_per_million: cost.requests(),
            cost_per_million_with_compute: cost.with_compute(),
            per_delivery,
            cost,
        });
        eprintln!("{}", cost_table(&rows));
    }
    let result = json!({
        "at": webhooks_shared::domain::clock::rfc3339_seconds(SystemTime::now()),
        "posters": posters,
        "receiver_answer": receiver_answer(),
        "prices": LIST_PRICES,
        "eventbridge_api_destinations_per_million": EVENTBRIDGE_API_DESTINATIONS_PER_MILLION,
        "scenarios": rows,
    });
    let dir = h.root.join("bench-results");
    std::fs::create_dir_all(&dir).expect("bench-results dir");
    let text = serde_json::to_string_pretty(&result).expect("json");
    std::fs::write(dir.join("cost-latest.json"), &text).expect("write results");
    println!("{}", cost_table(&rows));
}

/// `posters` requests at a time.
async fn post_all(api: &Api, events: &[Value], ingest: Ingest, posters: usize) {
    let per_request = match ingest {
        Ingest::OneEventPerRequest => 1,
        Ingest::Batches(n) => n,
    };
    let answers: Vec<u16> = stream::iter(events.chunks(per_request))
        .map(|chunk| async move {
            match ingest {
                Ingest::OneEventPerRequest => api.post_event(chunk[0].clone()).await.status,
                Ingest::Batches(_) => api.post_events_batch(chunk.to_vec()).await.status,
            }
        })
        .buffer_unordered(posters)
        .collect()
        .await;
    assert!(
        answers.iter().all(|s| *s == 202),
        "ingest answers: {answers:?}"
    );
}

async fn wait_for(receiver: &Receiver, events: &[Value], subscribers: usize) {
    let ids: std::collections::HashSet<String> = events
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_owned))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let arrived = receiver
            .requests()
            .iter()
            .filter(|r| ids.contains(r.header("x-comps-event-id")))
            .count();
        if arrived >= ids.len() * subscribers {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{arrived} of {} deliveries arrived",
            ids.len() * subscribers
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One scenario's result.
#[derive(Serialize)]
struct Row {
    ingest: Ingest,
    /// Requests in flight at once.
    posters: usize,
    subscribers: usize,
    events: usize,
    mean_event_bytes: usize,
    /// Dollars per million deliveries: every request and unit, compute apart.
    cost_per_million: f64,
    cost_per_million_with_compute: f64,
    per_delivery: Usage,
    cost: Cost,
}

/// What the receivers answer, as the cost JSON records it.
fn receiver_answer() -> Value {
    let reply = Reply::realistic();
    json!({
        "status": reply.status,
        "headers": reply.headers.len(),
        "header_bytes": reply.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>(),
        "body_bytes": reply.body.len(),
        "note": "hyper adds date and content-length (about 60 bytes more)",
    })
}

fn cost_table(rows: &[Row]) -> String {
    let mut text = String::from(
        "| ingest | subscribers | write units | read units | SQS requests | invocations | KMS calls | $/M deliveries | + compute measured here |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let usage = &row.per_delivery;
        let ingest = match row.ingest {
            Ingest::OneEventPerRequest => "one event per request".to_owned(),
            Ingest::Batches(n) => format!("batches of {n}"),
        };
        text.push_str(&format!(
            "| {ingest} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} | ${:.2} | ${:.2} |\n",
            row.subscribers,
            usage.total_write_units(),
            usage.total_read_units(),
            usage.total_sqs_requests(),
            usage.invocations(),
            usage.kms_calls,
            row.cost.requests(),
            row.cost.with_compute(),
        ));
    }
    text.push_str(&format!(
        "| EventBridge API destinations | - | - | - | - | - | - | ${EVENTBRIDGE_API_DESTINATIONS_PER_MILLION:.2} | |\n"
    ));
    text
}

/// Each function's init and zip size: `init-latest.json` and a Markdown table.
async fn cold_starts(h: &Harness, runs: usize) {
    if runs == 0 {
        return;
    }
    let target =
        std::env::var("CARGO_TARGET_DIR").map_or_else(|_| h.root.join("target"), Into::into);
    let mut rows = Vec::new();
    for (name, function) in [
        ("admin-api", "AdminApiFunction"),
        ("fanout", "FanoutFunction"),
        ("deliver", "DeliverFunction"),
        ("alerter", "AlerterFunction"),
    ] {
        let binary = target.join("release").join(name);
        assert!(
            binary.exists(),
            "{} is missing: `make bench` builds it (cargo build --release -p {name})",
            binary.display()
        );
        let credentials = h.function_credentials(name).await;
        h.reset_meters().await;
        let mut inits = Vec::with_capacity(runs);
        for _ in 0..runs {
            let mut started =
                functions::spawn_built(&binary, name, Some(credentials.clone()), &[]).await;
            let deadline = Instant::now() + Duration::from_secs(10);
            let ready = loop {
                if let Some(at) = started.runtime.first_next() {
                    break at;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} never asked for an event:\n{}",
                    started.output()
                );
                tokio::time::sleep(Duration::from_micros(200)).await;
            };
            inits.push(ready.duration_since(started.started).as_secs_f64() * 1000.0);
            let _ = started.child.kill().await;
        }
        // Any AWS call made during those inits shows on the emulator's meter. Empty long
        // polls are left out: they are the gateway's SQS pollers (no function receives from
        // a queue itself; Lambda's event source does), still running meanwhile.
        let usage = h.usage().await;
        let aws_calls = usage.total_sqs_requests()
            + usage.kms_calls
            + usage.total_read_units()
            + usage.total_write_units()
            + usage.emails;
        let zip = h.root.join("build/sam").join(format!("{function}.zip"));
        let zip_bytes = std::fs::metadata(&zip).ok().map(|m| m.len());
        rows.push(json!({
            "function": name,
            "init": summary(inits),
            "aws_calls_during_init": aws_calls,
            // What was metered meanwhile, to tell a function's own call from other traffic.
            "metered_during_init": usage,
            "zip_bytes": zip_bytes,
        }));
    }
    let mut table = String::from("| function | init p50 | init p95 | AWS calls before the first event | arm64 zip |\n|---|---|---|---|---|\n");
    for row in &rows {
        let zip = row["zip_bytes"]
            .as_u64()
            .map_or("not packaged".to_owned(), |b| {
                format!("{:.2} MB", b as f64 / 1e6)
            });
        table.push_str(&format!(
            "| {} | {:.1} ms | {:.1} ms | {} | {zip} |\n",
            row["function"].as_str().unwrap_or("?"),
            row["init"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
            row["init"]["p95_ms"].as_f64().unwrap_or(f64::NAN),
            row["aws_calls_during_init"],
        ));
    }
    let result = json!({
        "at": webhooks_shared::domain::clock::rfc3339_seconds(SystemTime::now()),
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "build": "release, this machine's architecture (init); arm64 (zips, from make package)",
        "functions": rows,
    });
    let dir = h.root.join("bench-results");
    std::fs::create_dir_all(&dir).expect("bench-results dir");
    let text = serde_json::to_string_pretty(&result).expect("json");
    std::fs::write(dir.join("init-latest.json"), &text).expect("write results");
    println!("{table}");
}
