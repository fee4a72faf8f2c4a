//! `make bench-isolation`: does one endpoint's failure or slowness delay another's
//! deliveries? Measured from outside, through the real stack (the handlers in the local
//! gateway, moto, HTTPS receivers), as `make bench` measures.
//!
//! Two webhooks subscribed to `order.completed`: one to a healthy receiver (it answers 200
//! at once, as a real server does: `Reply::realistic`), one to a neighbour. Events of about
//! 1 KB are posted one per request, paced (`--rate` a second, each post's time recorded),
//! and for the healthy receiver the time from each post to the event's first arrival there
//! is summarised (p50, p95, max, count). One scenario per kind of neighbour, each on fresh
//! webhooks and receivers (the same harness):
//!
//! - `alone`: no neighbour, the baseline;
//! - `silent`: the neighbour accepts the connection and never answers (every attempt waits
//!   the 10 s delivery timeout; a probe checks it holds a request longer than that);
//! - `slow`: the neighbour answers 200 after 2 s;
//! - `fail503`: the neighbour answers 503 at once.
//!
//! The healthy receiver is waited for until it has every event (`--deadline` seconds after
//! the last post; what is missing is reported). The neighbour's deliveries are not waited
//! for: when a scenario ends both its webhooks are deleted through the admin API (pending
//! deliveries to them are cancelled) and the bench waits until neither receiver has had a
//! request for longer than the delivery timeout, so one scenario's leftovers do not weigh
//! on the next one's numbers (how many arrived after the deletion is reported).
//!
//! The target: the healthy endpoint's p95 beside a neighbour is at most twice its p95 alone
//! plus a second. A benchmark, not a test: it reports whether the target is met and never
//! fails on timings. Results: `bench-results/<name>-latest.json` (and a timestamped copy;
//! `--name`, default `isolation`) and a Markdown table. `make bench-isolation` runs each
//! neighbour in a process (a stack) of its own, beside its own `alone`.
//!
//!     isolation [--events 150] [--rate 10] [--deadline 300]
//!               [--scenarios alone,silent,slow,fail503] [--name isolation]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use integration_tests::api::Webhook;
use integration_tests::bench_support::{order_of_about_1_kb, percentile, summary, write_results};
use integration_tests::{cli_arg, unique, Api, Harness, Receiver, Reply};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

const EVENT_TYPE: &str = "order.completed";
/// deliver's timeout for one attempt (`http_client::REQUEST_TIMEOUT`).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the silent neighbour holds a request before answering: longer than any run.
const SILENT_FOR: Duration = Duration::from_secs(6 * 3600);
/// How long the slow neighbour takes to answer.
const SLOW_FOR: Duration = Duration::from_secs(2);
/// After a scenario, the receivers must be quiet this long (past the delivery timeout, so
/// an attempt in flight to the silent neighbour has ended)...
const QUIET: Duration = Duration::from_secs(12);
/// ...waiting at most this long for it.
const SETTLE_AT_MOST: Duration = Duration::from_secs(180);
/// The target, as the JSON and the table state it.
const TARGET: &str = "healthy p95 beside the neighbour <= 2 x healthy p95 alone + 1 s";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Neighbour {
    Alone,
    Silent,
    Slow,
    Fail503,
}

impl Neighbour {
    const ALL: [Neighbour; 4] = [
        Neighbour::Alone,
        Neighbour::Silent,
        Neighbour::Slow,
        Neighbour::Fail503,
    ];

    fn name(self) -> &'static str {
        match self {
            Neighbour::Alone => "alone",
            Neighbour::Silent => "silent",
            Neighbour::Slow => "slow",
            Neighbour::Fail503 => "fail503",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Neighbour::Alone => "none",
            Neighbour::Silent => "accepts the connection, never answers (10 s timeout)",
            Neighbour::Slow => "answers 200 after 2 s",
            Neighbour::Fail503 => "answers 503 at once",
        }
    }

    /// How the neighbour's receiver answers, if there is one.
    fn reply(self) -> Option<Reply> {
        match self {
            Neighbour::Alone => None,
            Neighbour::Silent => Some(Reply::hang(SILENT_FOR)),
            Neighbour::Slow => Some(Reply::realistic().with_delay(SLOW_FOR)),
            Neighbour::Fail503 => Some(Reply::status(503).with_body("Service Unavailable")),
        }
    }
}

/// The scenarios `--scenarios a,b` names (all four by default), in the order given.
/// `--name NAME`: results go to `bench-results/NAME-latest.json` (default `isolation`).
fn results_name() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--name")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "isolation".to_owned())
}

fn chosen_scenarios() -> Vec<Neighbour> {
    let args: Vec<String> = std::env::args().collect();
    let Some(list) = args
        .iter()
        .position(|a| a == "--scenarios")
        .and_then(|i| args.get(i + 1))
    else {
        return Neighbour::ALL.to_vec();
    };
    list.split(',')
        .map(|name| {
            Neighbour::ALL
                .into_iter()
                .find(|n| n.name() == name.trim())
                .unwrap_or_else(|| {
                    panic!("--scenarios: no scenario {name:?} (alone, silent, slow, fail503)")
                })
        })
        .collect()
}

/// One event as posted.
struct Post {
    id: String,
    at: SystemTime,
    ingest_ms: f64,
    status: u16,
    answer: String,
}

/// One scenario's numbers.
struct Outcome {
    neighbour: Neighbour,
    /// Post-to-arrival at the healthy receiver, in milliseconds.
    latencies: Vec<f64>,
    expected: usize,
    json: Value,
}

impl Outcome {
    fn p95(&self) -> f64 {
        percentile(&sorted(&self.latencies), 95.0)
    }

    fn p50(&self) -> f64 {
        percentile(&sorted(&self.latencies), 50.0)
    }

    fn max(&self) -> f64 {
        sorted(&self.latencies).last().copied().unwrap_or(f64::NAN)
    }

    fn complete(&self) -> bool {
        self.latencies.len() == self.expected
    }
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut samples = samples.to_vec();
    samples.sort_by(|a, b| a.total_cmp(b));
    samples
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let h = Harness::get();
    // Before the run: the code measured is what was built, at about this time.
    let code = code_state(h);
    let events = cli_arg("--events", 150);
    let rate = cli_arg("--rate", 10).max(1);
    let deadline = Duration::from_secs(cli_arg("--deadline", 300) as u64);
    let scenarios = chosen_scenarios();
    let api = Api::new();
    let mut rng = StdRng::seed_from_u64(11);

    warm_up(&api, &mut rng).await;
    let mut outcomes: Vec<Outcome> = Vec::new();
    for neighbour in scenarios {
        eprintln!(
            "isolation: {} ({events} events at {rate}/s)",
            neighbour.name()
        );
        let outcome = scenario(&api, &mut rng, neighbour, events, rate, deadline).await;
        outcomes.push(outcome);
        eprintln!("{}", table(&outcomes));
    }

    let alone_p95 = outcomes
        .iter()
        .find(|o| o.neighbour == Neighbour::Alone)
        .map(Outcome::p95);
    let limit_ms = alone_p95.map(|p95| 2.0 * p95 + 1000.0);
    let scenarios: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let mut json = o.json.clone();
            json["p95_ratio_to_alone"] = json!(alone_p95.map(|alone| o.p95() / alone));
            json["target_p95_ms"] = json!(limit_ms);
            json["target_met"] = json!(target_met(o, limit_ms));
            json
        })
        .collect();
    let result = json!({
        "at": webhooks_shared::domain::clock::rfc3339_seconds(SystemTime::now()),
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)},
        "code": code,
        "event_type": EVENT_TYPE,
        "events": events,
        "rate_per_second": rate,
        "deadline_s": deadline.as_secs(),
        "delivery_timeout_s": DELIVERY_TIMEOUT.as_secs(),
        "healthy_receiver": "Reply::realistic: 200 at once, ten headers (~400 bytes), ~200-byte JSON body",
        "target": TARGET,
        "scenarios": scenarios,
    });
    let text = serde_json::to_string_pretty(&result).expect("json");
    let path = write_results(&h.root, &results_name(), &text);
    println!("{}", table(&outcomes));
    println!("written to {}", path.display());
}

/// Whether the scenario met the target: every event delivered within the deadline, and the
/// p95 within `limit_ms`. None for `alone` (the baseline) or without one.
fn target_met(outcome: &Outcome, limit_ms: Option<f64>) -> Option<bool> {
    if outcome.neighbour == Neighbour::Alone {
        return None;
    }
    limit_ms.map(|limit| outcome.complete() && outcome.p95() <= limit)
}

/// A few events first, so the handlers are warm (their clients connected, the signing
/// secret opened) before `alone` is measured; not reported.
async fn warm_up(api: &Api, rng: &mut StdRng) {
    let receiver = Receiver::start(vec![Reply::realistic()]).await;
    let webhook = api
        .create_webhook(&unique("isolation-warm-up"), &receiver.url, &[EVENT_TYPE])
        .await;
    let mut ids = HashSet::new();
    for _ in 0..5 {
        let id = unique("warm-up-evt");
        let answer = api.post_event(order_of_about_1_kb(rng, &id)).await;
        if answer.status == 202 {
            ids.insert(id);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while first_arrivals(&receiver, &ids).len() < ids.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    api.delete_webhook(&webhook.id).await;
    settle(&[&receiver]).await;
}

/// One scenario, step by step: the receivers and their webhooks, the paced posts, the
/// healthy receiver's arrivals, what the neighbour saw, and both removed.
async fn scenario(
    api: &Api,
    rng: &mut StdRng,
    neighbour: Neighbour,
    events: usize,
    rate: usize,
    deadline: Duration,
) -> Outcome {
    let started = Instant::now();
    let stage = Stage::set_up(api, neighbour).await;
    // The silent receiver is checked while the events go: a request to it must go
    // unanswered for longer than the delivery timeout, the connection held open.
    let probe = match (&stage.neighbour, neighbour) {
        (Some((receiver, _)), Neighbour::Silent) => {
            Some(tokio::spawn(probe_silence(receiver.url.clone())))
        }
        _ => None,
    };

    let posting = Instant::now();
    let posts = post_paced(api, rng, events, rate).await;
    let posting_s = posting.elapsed().as_secs_f64();
    let refused: Vec<Value> = posts
        .iter()
        .filter(|p| p.status != 202)
        .map(|p| json!({"id": p.id, "status": p.status, "answer": p.answer}))
        .collect();
    let accepted: Vec<&Post> = posts.iter().filter(|p| p.status == 202).collect();
    let ids: HashSet<String> = accepted.iter().map(|p| p.id.clone()).collect();

    let arrivals = await_arrivals(&stage.healthy, &ids, deadline).await;
    let all_in_s = started.elapsed().as_secs_f64();
    let (latencies, missing) = latencies(&accepted, &arrivals);
    if !missing.is_empty() {
        eprintln!(
            "isolation: {}: {} of {} events never reached the healthy receiver within {deadline:?}: {missing:?}",
            neighbour.name(),
            missing.len(),
            ids.len()
        );
    }
    let neighbour_json = stage.neighbour_report(api, &ids).await;
    let removal = stage.tear_down(api).await;
    let probe = match probe {
        Some(task) => task.await.expect("the probe's task"),
        None => Value::Null,
    };

    let json = json!({
        "scenario": neighbour.name(),
        "neighbour": neighbour.describe(),
        "events_posted": posts.len(),
        "events_refused": refused,
        "posting_s": posting_s,
        "ingest_latency": summary(posts.iter().map(|p| p.ingest_ms).collect()),
        "healthy": summary(latencies.clone()),
        "healthy_expected": ids.len(),
        "healthy_missing": missing,
        "healthy_all_in_s": all_in_s,
        "neighbour_requests": neighbour_json,
        "silent_probe": probe,
        "removal": removal,
    });
    Outcome {
        neighbour,
        latencies,
        expected: ids.len(),
        json,
    }
}

/// A scenario's receivers and webhooks: the healthy one, and the neighbour if there is one.
struct Stage {
    healthy: Receiver,
    healthy_webhook: Webhook,
    neighbour: Option<(Receiver, Webhook)>,
}

impl Stage {
    async fn set_up(api: &Api, neighbour: Neighbour) -> Stage {
        let healthy = Receiver::start(vec![Reply::realistic()]).await;
        let healthy_webhook = api
            .create_webhook(
                &unique(&format!("isolation-{}-healthy", neighbour.name())),
                &healthy.url,
                &[EVENT_TYPE],
            )
            .await;
        let mut other = None;
        if let Some(reply) = neighbour.reply() {
            let receiver = Receiver::start(vec![reply]).await;
            let webhook = api
                .create_webhook(
                    &unique(&format!("isolation-{}-neighbour", neighbour.name())),
                    &receiver.url,
                    &[EVENT_TYPE],
                )
                .await;
            other = Some((receiver, webhook));
        }
        Stage {
            healthy,
            healthy_webhook,
            neighbour: other,
        }
    }

    /// What the neighbour got meanwhile, and what its delivery log says.
    async fn neighbour_report(&self, api: &Api, ids: &HashSet<String>) -> Value {
        match &self.neighbour {
            Some((receiver, webhook)) => {
                let log = api.attempts(&webhook.id).await;
                json!({
                    "received": requests_seen(receiver, ids),
                    "log_first_page": log_summary(&log),
                })
            }
            None => Value::Null,
        }
    }

    /// Out of the way of the next scenario: both webhooks deleted (pending deliveries to
    /// them are cancelled), then quiet receivers; what each received after.
    async fn tear_down(&self, api: &Api) -> Value {
        let removed_at = SystemTime::now();
        let mut deleted = vec![api.delete_webhook(&self.healthy_webhook.id).await.status];
        if let Some((_, webhook)) = &self.neighbour {
            deleted.push(api.delete_webhook(&webhook.id).await.status);
        }
        let mut receivers = vec![&self.healthy];
        if let Some((receiver, _)) = &self.neighbour {
            receivers.push(receiver);
        }
        let settled_s = settle(&receivers).await;
        let after = |receiver: &Receiver| {
            receiver
                .requests()
                .iter()
                .filter(|r| r.at >= removed_at)
                .count()
        };
        json!({
            "delete_statuses": deleted,
            "settled_s": settled_s,
            "healthy_requests_after": after(&self.healthy),
            "neighbour_requests_after": self.neighbour.as_ref().map(|(r, _)| after(r)),
        })
    }
}

/// `events` orders of about 1 KB, one every 1/rate s, each on its own task, so a slow
/// answer to one does not hold back the next.
async fn post_paced(api: &Api, rng: &mut StdRng, events: usize, rate: usize) -> Vec<Post> {
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = Vec::with_capacity(events);
    for _ in 0..events {
        let id = unique("isolation-evt");
        let body = order_of_about_1_kb(rng, &id);
        ticks.tick().await;
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            let at = SystemTime::now();
            let clock = Instant::now();
            let answer = api.post_event(body).await;
            Post {
                id,
                at,
                ingest_ms: clock.elapsed().as_secs_f64() * 1000.0,
                status: answer.status,
                answer: answer.text,
            }
        }));
    }
    let mut posts = Vec::with_capacity(events);
    for task in tasks {
        posts.push(task.await.expect("a post's task"));
    }
    posts
}

/// The first arrival of each of `ids` at `receiver`, waiting until all are in or `deadline`.
async fn await_arrivals(
    receiver: &Receiver,
    ids: &HashSet<String>,
    deadline: Duration,
) -> HashMap<String, SystemTime> {
    let until = Instant::now() + deadline;
    let mut arrivals = first_arrivals(receiver, ids);
    while arrivals.len() < ids.len() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        arrivals = first_arrivals(receiver, ids);
    }
    arrivals
}

/// Post-to-arrival in milliseconds of each accepted post that arrived, and the ids of
/// those that did not.
fn latencies(
    accepted: &[&Post],
    arrivals: &HashMap<String, SystemTime>,
) -> (Vec<f64>, Vec<String>) {
    let mut latencies = Vec::with_capacity(arrivals.len());
    let mut missing = Vec::new();
    for post in accepted {
        match arrivals.get(&post.id) {
            Some(at) => latencies
                .push(at.duration_since(post.at).unwrap_or_default().as_secs_f64() * 1000.0),
            None => missing.push(post.id.clone()),
        }
    }
    (latencies, missing)
}

/// Each event's first arrival at `receiver`, of those in `ids`.
fn first_arrivals(receiver: &Receiver, ids: &HashSet<String>) -> HashMap<String, SystemTime> {
    let mut first: HashMap<String, SystemTime> = HashMap::new();
    for request in receiver.requests() {
        let Some(id) = request
            .headers
            .get("x-comps-event-id")
            .and_then(|v| v.to_str().ok())
        else {
            continue;
        };
        if !ids.contains(id) {
            continue;
        }
        first
            .entry(id.to_owned())
            .and_modify(|at| *at = (*at).min(request.at))
            .or_insert(request.at);
    }
    first
}

/// How many requests for `ids` reached `receiver`: in all, distinct events, by attempt.
fn requests_seen(receiver: &Receiver, ids: &HashSet<String>) -> Value {
    let mut events = HashSet::new();
    let mut by_attempt: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for request in receiver.requests() {
        let header = |name: &str| {
            request
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let id = header("x-comps-event-id");
        if !ids.contains(&id) {
            continue;
        }
        total += 1;
        events.insert(id);
        *by_attempt.entry(header("x-comps-attempt")).or_default() += 1;
    }
    json!({"requests": total, "events": events.len(), "by_attempt": by_attempt})
}

/// The outcomes and errors on the first page of a webhook's delivery log, and the mean time
/// its attempts took.
fn log_summary(log: &[Value]) -> Value {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut durations = Vec::new();
    for line in log {
        let outcome = line["outcome"].as_str().unwrap_or("?");
        let what = match (line["response_status"].as_u64(), line["error"].as_str()) {
            (Some(status), _) => format!("{outcome}: {status}"),
            (None, Some(error)) => format!("{outcome}: {}", without_numbers(error)),
            (None, None) => outcome.to_owned(),
        };
        *kinds.entry(what).or_default() += 1;
        if let Some(ms) = line["duration_ms"].as_f64() {
            durations.push(ms);
        }
    }
    json!({
        "lines": log.len(),
        "kinds": kinds,
        "duration": summary(durations),
    })
}

/// `text` with each run of digits written N, so that errors differing only in a count or a
/// time are counted as one kind.
fn without_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// Sends one request to the silent receiver and checks it goes unanswered, the connection
/// open, for longer than the delivery timeout.
async fn probe_silence(url: String) -> Value {
    let wait = DELIVERY_TIMEOUT + Duration::from_secs(2);
    let ca = std::fs::read(&Harness::get().ca.pem_path).expect("the test CA");
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("the test CA"))
        .timeout(wait)
        .build()
        .expect("a client");
    let started = Instant::now();
    let sent = client
        .post(&url)
        .header("x-comps-event-id", "isolation-probe")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await;
    let waited_ms = started.elapsed().as_millis() as u64;
    let (held, what) = match sent {
        Err(e) if e.is_timeout() => (
            true,
            format!("no answer within {wait:?}, the connection open"),
        ),
        Err(e) => (false, format!("failed otherwise: {}", error_chain(&e))),
        Ok(answer) => (false, format!("answered {}", answer.status())),
    };
    json!({
        "held_open_without_answer": held,
        "waited_ms": waited_ms,
        "what": what,
    })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Waits until none of `receivers` has had a request for [`QUIET`] (at most
/// [`SETTLE_AT_MOST`]); returns the seconds it took.
async fn settle(receivers: &[&Receiver]) -> f64 {
    let started = Instant::now();
    let count = || receivers.iter().map(|r| r.requests().len()).sum::<usize>();
    let mut seen = count();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < QUIET && started.elapsed() < SETTLE_AT_MOST {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count();
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
    }
    started.elapsed().as_secs_f64()
}

/// The commit checked out, and how many files differed from it (work in progress).
fn code_state(h: &Harness) -> Value {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(&h.root)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    json!({
        "commit": git(&["rev-parse", "--short", "HEAD"]).map(|c| c.trim().to_owned()),
        "uncommitted_files": git(&["status", "--porcelain"]).map(|s| s.lines().count()),
    })
}

fn seconds(ms: f64) -> String {
    if ms.is_nan() {
        "-".to_owned()
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn table(outcomes: &[Outcome]) -> String {
    let alone = outcomes
        .iter()
        .find(|o| o.neighbour == Neighbour::Alone)
        .map(Outcome::p95);
    let limit = alone.map(|p95| 2.0 * p95 + 1000.0);
    let mut text = String::from(
        "| scenario | neighbour | healthy delivered | p50 | p95 | max | p95 / alone | p95 <= 2 x alone + 1 s |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let ratio = alone.map_or("-".to_owned(), |a| format!("{:.1}x", o.p95() / a));
        let target = match (target_met(o, limit), limit) {
            (Some(true), Some(limit)) => format!("pass (limit {})", seconds(limit)),
            (Some(false), Some(limit)) => format!("FAIL (limit {})", seconds(limit)),
            _ => "-".to_owned(),
        };
        text.push_str(&format!(
            "| {} | {} | {}/{} | {} | {} | {} | {ratio} | {target} |\n",
            o.neighbour.name(),
            o.neighbour.describe(),
            o.latencies.len(),
            o.expected,
            seconds(o.p50()),
            seconds(o.p95()),
            seconds(o.max()),
        ));
    }
    text
}
