//! Runs of the whole pipeline under faults, and the checks after each run: nothing lost,
//! nothing sent twice, nothing sent after a 2xx, every permanent failure in exactly one alert
//! email, and a log that agrees with what the receivers saw.
//!
//! The fault tests (`tests/tests/faults`) make short runs of each kind; `make chaos` long ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use webhooks_shared::adapters::store::Store;
use webhooks_shared::domain::ids::{DeliveryId, WebhookId};
use webhooks_shared::domain::model::{AttemptRecord, DeliveryMessage, DeliveryRef, DeliveryState};

use crate::fault_proxy::{CallCount, Faults};
use crate::receiver::{Captured, Flaky};
use crate::{delivery_id_in, unique, Api, Harness, Receiver};

/// deliver's HTTP client gives up after this long (`http_client::REQUEST_TIMEOUT`).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// The event type of the runs: no other test posts it.
pub const EVENT_TYPE: &str = "withdrawal.paid";

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// A short name for the fault, e.g. `dynamodb+sqs 500/throttling`.
    pub fault: String,
    pub events: usize,
    pub webhooks: usize,
    pub faults: Faults,
    /// How the receivers answer: `None` is always 200.
    pub receivers: Option<Flaky>,
    /// Also put copies of every delivery's message into the deliveries queue: one sent as
    /// the services send (same deduplication id), one as a copy sent much later would be.
    pub duplicate_messages: bool,
    pub seed: u64,
    /// Every delivery must be final by then.
    pub deadline: Duration,
}

/// What a run found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub fault: String,
    pub rate: f64,
    pub after_share: f64,
    pub events: usize,
    pub deliveries: usize,
    pub succeeded: usize,
    pub permanently_failed: usize,
    /// Deliveries not final by the deadline, and events never accepted.
    pub lost: Vec<String>,
    /// `delivery#attempt` that reached a receiver more than once.
    pub sent_twice: Vec<String>,
    /// Deliveries that reached a receiver again after a 2xx.
    pub sent_after_success: Vec<String>,
    /// Permanent failures not in exactly one email, and emails that do not add up.
    pub alert_mismatches: Vec<String>,
    /// Log lines that disagree with what the receivers saw.
    pub log_mismatches: Vec<String>,
    /// Ingest answers other than 202 that the platform retried.
    pub posts_retried: u64,
    pub aws_calls: u64,
    pub injected_before: u64,
    pub injected_after: u64,
    pub seconds: f64,
    /// When a check failed: what the handlers logged about the deliveries it names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

impl Outcome {
    /// Panics with the whole outcome unless nothing was lost, sent twice or mis-logged.
    pub fn assert_clean(&self) {
        let clean = self.lost.is_empty()
            && self.sent_twice.is_empty()
            && self.sent_after_success.is_empty()
            && self.alert_mismatches.is_empty()
            && self.log_mismatches.is_empty();
        assert!(
            clean,
            "{}",
            serde_json::to_string_pretty(self).unwrap_or_default()
        );
    }

    /// Panics unless faults were really injected (a run that injects nothing proves nothing).
    pub fn assert_faults_injected(&self) {
        assert!(
            self.injected_before + self.injected_after > 0,
            "no fault was injected: {self:?}"
        );
    }
}

/// A webhook of the run and its receiver.
struct Subscriber {
    id: String,
    name: String,
    receiver: Receiver,
}

/// Runs `plan` through the harness's stack and checks the result. The run's webhooks are
/// deleted at the end, so later runs do not deliver to them.
pub async fn run(plan: &Plan) -> Outcome {
    let h = Harness::get();
    let api = Api::new();
    let store = h.adapters(&h.config(&[])).await.store;
    h.proxy.set(Faults::NONE, plan.seed);

    let mut subscribers = Vec::new();
    for _ in 0..plan.webhooks {
        let receiver = match plan.receivers {
            Some(flaky) => Receiver::flaky(flaky).await,
            None => Receiver::start(vec![]).await,
        };
        let name = unique("chaos");
        let webhook = api
            .create_webhook(&name, &receiver.url, &[EVENT_TYPE])
            .await;
        subscribers.push(Subscriber {
            id: webhook.id,
            name,
            receiver,
        });
    }

    let started = Instant::now();
    h.proxy.take_counts();
    h.proxy.set(plan.faults, plan.seed);
    let (accepted, refused, posts_retried) = post_events(&api, plan.events).await;
    if plan.duplicate_messages {
        send_copies(h, &accepted, &subscribers).await;
    }
    let mut deliveries: Vec<(usize, DeliveryId)> = Vec::new();
    for event in &accepted {
        for (i, s) in subscribers.iter().enumerate() {
            deliveries.push((i, delivery_id_in(&store, event, &s.id).await));
        }
    }
    let webhooks: Vec<WebhookId> = subscribers.iter().map(|s| s.id.clone().into()).collect();
    let logs = wait_until_final(&store, &webhooks, &deliveries, started + plan.deadline).await;
    // Per webhook, the events whose delivery failed for good (a digest names the event).
    let failed: BTreeMap<usize, BTreeSet<String>> = deliveries
        .iter()
        .filter_map(|(i, d)| {
            let log = logs.get(d)?;
            let last = log.iter().max_by_key(|a| a.attempt)?;
            (last.delivery_state == DeliveryState::PermanentlyFailed)
                .then(|| (*i, last.delivery.event_id.to_string()))
        })
        .fold(BTreeMap::new(), |mut by, (i, event)| {
            by.entry(i).or_default().insert(event);
            by
        });
    let emails = wait_for_alerts(h, &subscribers, &failed).await;
    h.proxy.set(Faults::NONE, plan.seed);
    let counts = h.proxy.take_counts();
    let seconds = started.elapsed().as_secs_f64();

    let mut outcome = Outcome {
        fault: plan.fault.clone(),
        rate: plan.faults.rate,
        after_share: plan.faults.after_share,
        events: plan.events,
        deliveries: plan.events * plan.webhooks,
        posts_retried,
        seconds,
        ..Outcome::default()
    };
    outcome
        .lost
        .extend(refused.iter().map(|e| format!("event {e} never accepted")));
    add_counts(&mut outcome, &counts);
    for (i, subscriber) in subscribers.iter().enumerate() {
        let requests = subscriber.receiver.requests();
        let mut by_delivery: HashMap<&str, Vec<&Captured>> = HashMap::new();
        for r in &requests {
            let d = r
                .headers
                .get("x-comps-delivery")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            by_delivery.entry(d).or_default().push(r);
        }
        for (_, d) in deliveries.iter().filter(|(j, _)| *j == i) {
            let log = logs.get(d).map(Vec::as_slice).unwrap_or_default();
            let seen = by_delivery
                .get(d.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            check_delivery(&mut outcome, d, log, seen);
        }
        check_alerts(
            &mut outcome,
            &subscriber.name,
            failed.get(&i).cloned().unwrap_or_default(),
            &emails,
        );
    }
    outcome.evidence = evidence(&outcome, &h.logs.text());
    for subscriber in &subscribers {
        api.delete_webhook(&subscriber.id).await;
    }
    outcome
}

/// The log lines (at most 300) that name a delivery a failed check names.
fn evidence(outcome: &Outcome, logs: &str) -> Vec<String> {
    let named: BTreeSet<&str> = outcome
        .lost
        .iter()
        .chain(&outcome.sent_twice)
        .chain(&outcome.sent_after_success)
        .chain(&outcome.log_mismatches)
        .filter_map(|problem| {
            problem
                .split(['#', ':', ' '])
                .find(|w| w.starts_with(DeliveryId::PREFIX))
        })
        .collect();
    if named.is_empty() {
        return Vec::new();
    }
    logs.lines()
        .filter(|line| named.iter().any(|d| line.contains(d)))
        .take(300)
        .map(str::to_owned)
        .collect()
}

fn add_counts(outcome: &mut Outcome, counts: &BTreeMap<String, CallCount>) {
    for count in counts.values() {
        outcome.aws_calls += count.calls;
        outcome.injected_before += count.failed_before;
        outcome.injected_after += count.failed_after;
    }
}

/// Posts `events` events as the platform would: a few at a time, each retried with the same
/// id and body until it is accepted (a 5xx means "try again"). Returns the accepted ids,
/// the ids given up on, and how many answers were retried.
async fn post_events(api: &Api, events: usize) -> (Vec<String>, Vec<String>, u64) {
    let in_flight = Arc::new(Semaphore::new(8));
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..events {
        let api = api.clone();
        let in_flight = Arc::clone(&in_flight);
        posts.spawn(async move {
            let _permit = in_flight.acquire_owned().await;
            let id = unique("evt-chaos");
            let event =
                json!({"id": id, "type": EVENT_TYPE, "data": {"id": format!("wdr_{n}"), "n": n}});
            let mut retried = 0;
            for _ in 0..30 {
                let answer = api.post_event(event.clone()).await;
                if answer.status == 202 {
                    return (id, true, retried);
                }
                retried += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            (id, false, retried)
        });
    }
    let (mut accepted, mut refused, mut retried) = (Vec::new(), Vec::new(), 0);
    while let Some(Ok((id, ok, tries))) = posts.join_next().await {
        retried += tries;
        if ok {
            accepted.push(id);
        } else {
            refused.push(id);
        }
    }
    (accepted, refused, retried)
}

/// Copies of every delivery's message: one as the services send it (SQS drops it within
/// its deduplication interval) and one with a deduplication id of its own, as a copy sent
/// after that interval would be (it waits in its message group). Each is sent once its
/// delivery has a line: a fan-out delivery is on the queue only from then on (its first
/// attempt is the stream's).
async fn send_copies(h: &Harness, events: &[String], subscribers: &[Subscriber]) {
    let adapters = h.adapters(&h.config(&[])).await;
    let queue = adapters.queue;
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);
    let queue_url = h.env("DELIVERY_QUEUE_URL");
    for event in events {
        for s in subscribers {
            let delivery_id = delivery_id_in(&adapters.store, event, &s.id).await;
            let webhook_id: WebhookId = s.id.clone().into();
            crate::eventually(
                "a delivery's first line",
                Duration::from_secs(180),
                || async {
                    let lines = adapters.store.attempts_of(&webhook_id, &delivery_id).await;
                    lines.ok().filter(|l| !l.is_empty()).map(|_| ())
                },
            )
            .await;
            let message = DeliveryMessage {
                delivery: DeliveryRef {
                    delivery_id,
                    webhook_id: s.id.clone().into(),
                    event_id: event.clone().into(),
                    event_type: EVENT_TYPE.into(),
                    resource_id: None,
                    manual: false,
                },
                created_at: None,
                body: None,
                fresh: false,
            };
            queue
                .send(std::slice::from_ref(&message))
                .await
                .expect("send a copy");
            let id = message.delivery.delivery_id.as_str();
            sqs.send_message()
                .queue_url(&queue_url)
                .message_body(serde_json::to_string(&message).expect("json"))
                .message_group_id(id)
                .message_deduplication_id(format!("{id}-late-copy"))
                .send()
                .await
                .expect("send a late copy");
        }
    }
}

fn state_of(log: Option<&Vec<AttemptRecord>>) -> Option<DeliveryState> {
    log?.iter()
        .max_by_key(|a| a.attempt)
        .map(|a| a.delivery_state)
}

/// How long no delivery may become final, past the deadline, before the wait gives up.
const STALLED: Duration = Duration::from_secs(300);

/// Reads the log of every delivery until each is final, or `deadline` has passed and no
/// delivery became final for [`STALLED`] (a busy machine is slow, a lost delivery never
/// ends), then once more (so the checks see every line). A round stops reading after 50
/// deliveries still under way: those after them are most likely under way too, and a long
/// run would otherwise spend the emulator on reading.
async fn wait_until_final(
    store: &Store,
    webhooks: &[WebhookId],
    deliveries: &[(usize, DeliveryId)],
    deadline: Instant,
) -> HashMap<DeliveryId, Vec<AttemptRecord>> {
    let mut logs: HashMap<DeliveryId, Vec<AttemptRecord>> = HashMap::new();
    let (mut open_before, mut progressed, mut reported) =
        (usize::MAX, Instant::now(), Instant::now());
    loop {
        let open: Vec<&(usize, DeliveryId)> = deliveries
            .iter()
            .filter(|(_, d)| !state_of(logs.get(d)).is_some_and(DeliveryState::is_final))
            .collect();
        if open.len() < open_before {
            (open_before, progressed) = (open.len(), Instant::now());
        }
        if reported.elapsed() > Duration::from_secs(60) {
            eprintln!(
                "chaos: {} of {} deliveries not final yet",
                open.len(),
                deliveries.len()
            );
            reported = Instant::now();
        }
        if open.is_empty() || (Instant::now() > deadline && progressed.elapsed() > STALLED) {
            break;
        }
        let mut still_open = 0;
        for (i, d) in open {
            if let Ok(log) = store.attempts_of(&webhooks[*i], d).await {
                if !state_of(Some(&log)).is_some_and(DeliveryState::is_final) {
                    still_open += 1;
                }
                logs.insert(d.clone(), log);
            }
            if still_open >= 50 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for (i, d) in deliveries {
        if let Ok(log) = store.attempts_of(&webhooks[*i], d).await {
            logs.insert(d.clone(), log);
        }
    }
    logs
}

/// The emails about the run's webhooks, once every failure of `failed` is counted in one
/// (or after a generous wait: then the checks say what is missing).
async fn wait_for_alerts(
    h: &Harness,
    subscribers: &[Subscriber],
    failed: &BTreeMap<usize, BTreeSet<String>>,
) -> Vec<Value> {
    let owed: usize = failed.values().map(BTreeSet::len).sum();
    // A notice whose retry could not be hidden comes back after the alerts queue's
    // visibility timeout (180 s): a delay, not a loss.
    let deadline =
        Instant::now() + Duration::from_secs(180 + crate::harness::ALERT_GATHER_SECS * 2 + 60);
    let about_run = |emails: Vec<Value>| -> Vec<Value> {
        emails
            .into_iter()
            .filter(|m| {
                let subject = m["subject"].as_str().unwrap_or_default();
                subscribers.iter().any(|s| subject.contains(&s.name))
            })
            .collect()
    };
    loop {
        let emails = about_run(h.sent_emails().await);
        let counted: usize = emails.iter().map(counted_in).sum();
        if counted >= owed || Instant::now() > deadline {
            if owed > 0 {
                // A second digest would come a window later; give a stray one time to show.
                tokio::time::sleep(Duration::from_secs(3)).await;
                return about_run(h.sent_emails().await);
            }
            return emails;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The number of failures a digest's subject counts ("…: 3 deliveries permanently failed").
pub fn counted_in(email: &Value) -> usize {
    let subject = email["subject"].as_str().unwrap_or_default();
    subject
        .rsplit_once(": ")
        .and_then(|(_, tail)| tail.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Compares one delivery's log with the requests its receiver got.
fn check_delivery(
    outcome: &mut Outcome,
    d: &DeliveryId,
    log: &[AttemptRecord],
    seen: &[&Captured],
) {
    match log
        .iter()
        .max_by_key(|a| a.attempt)
        .map(|a| a.delivery_state)
    {
        Some(DeliveryState::Succeeded) => outcome.succeeded += 1,
        Some(DeliveryState::PermanentlyFailed) => outcome.permanently_failed += 1,
        Some(DeliveryState::Cancelled) => {}
        state => outcome.lost.push(format!("{d}: {state:?} at the deadline")),
    }
    let attempt_of = |r: &Captured| -> u32 {
        r.headers
            .get("x-comps-attempt")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut per_attempt: BTreeMap<u32, Vec<&Captured>> = BTreeMap::new();
    for r in seen {
        per_attempt.entry(attempt_of(r)).or_default().push(r);
    }
    for (attempt, requests) in &per_attempt {
        if requests.len() > 1 {
            outcome.sent_twice.push(format!("{d}#{attempt}"));
        }
    }
    // What the client saw as a 2xx: an answer in time, not a reset.
    let answered_2xx = |r: &Captured| {
        !r.reply.reset && r.reply.delay < CLIENT_TIMEOUT && (200..300).contains(&r.reply.status)
    };
    if let Some(first_success) = seen.iter().filter(|r| answered_2xx(r)).map(|r| r.at).min() {
        if seen.iter().any(|r| r.at > first_success) {
            outcome.sent_after_success.push(d.to_string());
        }
    }
    for line in log.iter().filter(|l| l.request.is_some()) {
        let Some(requests) = per_attempt.get(&line.attempt) else {
            outcome
                .log_mismatches
                .push(format!("{d}#{}: logged, never received", line.attempt));
            continue;
        };
        let reply = &requests[0].reply;
        let expected = (!reply.reset && reply.delay < CLIENT_TIMEOUT).then_some(reply.status);
        if line.response_status != expected {
            outcome.log_mismatches.push(format!(
                "{d}#{}: logged status {:?}, the receiver answered {expected:?}",
                line.attempt, line.response_status
            ));
        }
    }
    for attempt in per_attempt.keys() {
        if !log.iter().any(|l| l.attempt == *attempt) {
            outcome
                .log_mismatches
                .push(format!("{d}#{attempt}: received, not in the log"));
        }
    }
}

/// Every permanent failure of a webhook (`failed`: their event ids) is counted in exactly
/// one email, and listed in at most one.
fn check_alerts(outcome: &mut Outcome, name: &str, failed: BTreeSet<String>, emails: &[Value]) {
    let about: Vec<&Value> = emails
        .iter()
        .filter(|m| m["subject"].as_str().unwrap_or_default().contains(name))
        .collect();
    let counted: usize = about.iter().map(|m| counted_in(m)).sum();
    if counted != failed.len() {
        outcome.alert_mismatches.push(format!(
            "{name}: {} permanent failures, emails count {counted}",
            failed.len()
        ));
    }
    let mut listed: BTreeMap<&str, usize> = BTreeMap::new();
    for email in &about {
        let body = email["body"].as_str().unwrap_or_default();
        for event in &failed {
            if body.contains(event.as_str()) {
                *listed.entry(event.as_str()).or_default() += 1;
            }
        }
    }
    for (event, times) in &listed {
        if *times > 1 {
            outcome
                .alert_mismatches
                .push(format!("{name}: event {event} listed in {times} emails"));
        }
    }
    // A digest lists its first 50 failures.
    if listed.len() < failed.len().min(50) {
        outcome.alert_mismatches.push(format!(
            "{name}: {} failures, {} listed",
            failed.len(),
            listed.len()
        ));
    }
}
