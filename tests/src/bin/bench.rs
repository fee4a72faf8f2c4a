//! `make bench`: measures the pipeline on this machine — ingest latency, end-to-end delivery
//! latency and throughput through the real handlers, moto and HTTPS receivers, plus the
//! signing hot path — and writes the results to `bench-results/`.
//!
//! Numbers include the emulator's own cost (moto is far slower than DynamoDB/SQS); compare
//! runs with each other on the same machine, not with production.

use std::time::{Duration, Instant, SystemTime};

use integration_tests::{cli_arg, unique, Api, Harness, Receiver, Reply};
use serde_json::json;
use webhooks_shared::domain::signing::SigningSecret;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(mut samples: Vec<f64>) -> serde_json::Value {
    samples.sort_by(|a, b| a.total_cmp(b));
    json!({
        "count": samples.len(),
        "p50_ms": percentile(&samples, 50.0),
        "p95_ms": percentile(&samples, 95.0),
        "p99_ms": percentile(&samples, 99.0),
        "max_ms": samples.last().copied().unwrap_or(f64::NAN),
    })
}

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
    let events = cli_arg("--events", 200);
    let webhooks = cli_arg("--webhooks", 3);
    let h = Harness::get();
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    for _ in 0..webhooks {
        api.create_webhook(&unique("bench"), &receiver.url, &["competition.created"])
            .await;
    }

    // Ingest: one event at a time, as the platform would post them.
    let mut ingest = Vec::with_capacity(events);
    let mut posted = Vec::with_capacity(events);
    let run_started = Instant::now();
    for _ in 0..events {
        let event_id = unique("bench-evt");
        let started = Instant::now();
        let answer = api
            .post_event(json!({"id": event_id, "type": "competition.created", "data": {"id": "cmp_1", "title": "bench"}}))
            .await;
        ingest.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(answer.status, 202, "{}", answer.text);
        posted.push((event_id, SystemTime::now() - started.elapsed()));
    }

    // Delivery: wait until every receiver request arrived.
    let expected = events * webhooks;
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.requests().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = run_started.elapsed().as_secs_f64();
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
        "deliveries_expected": expected,
        "deliveries_received": requests.len(),
        "ingest_latency": summary(ingest),
        "end_to_end_latency": summary(end_to_end),
        "deliveries_per_second": requests.len() as f64 / total,
        "signing_ns_per_delivery_1kib": signing_ns_per_op(20_000),
    });
    let dir = h.root.join("bench-results");
    std::fs::create_dir_all(&dir).expect("bench-results dir");
    let text = serde_json::to_string_pretty(&result).expect("json");
    let stamp = webhooks_shared::domain::clock::rfc3339_seconds(SystemTime::now()).replace(':', "");
    std::fs::write(dir.join(format!("{stamp}.json")), &text).expect("write results");
    std::fs::write(dir.join("latest.json"), &text).expect("write results");
    println!("{text}");
    assert_eq!(requests.len(), expected, "every delivery arrived");
}
