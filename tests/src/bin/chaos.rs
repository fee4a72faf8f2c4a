//! `make chaos`: the pipeline under faults at scale (not in CI). By default 2,000 events to 3
//! webhooks per run, for each kind of fault: DynamoDB and SQS calls failing 25 % of the time
//! (half of them after the call took effect), copies of every delivery message, and flaky
//! receivers. Each run is checked as the fault tests check theirs (nothing lost, nothing sent
//! twice or after a 2xx, every permanent failure in one alert email, the log agreeing with
//! the receivers). Results go to `bench-results/chaos-<time>.json` and `chaos-latest.json`,
//! and a Markdown table for docs/measurements.md is printed.
//!
//!     chaos [--events 2000] [--webhooks 3] [--rate 25] [--only N (run only the Nth kind)]

use std::time::Duration;

use integration_tests::chaos::{self, Outcome, Plan};
use integration_tests::fault_proxy::Faults;
use integration_tests::receiver::Flaky;
use integration_tests::{cli_arg, Harness};
use serde_json::json;

/// Receivers that fail now and then, and a few deliveries that never succeed (so alerts
/// are made under the faults too).
const SOMETIMES_FAILING: Flaky = Flaky {
    seed: 3,
    fail: 0.1,
    hang: 0.0,
    reset: 0.0,
    hang_for: Duration::ZERO,
    dead: 0.02,
};

fn table(outcomes: &[Outcome]) -> String {
    let mut text = String::from(
        "| fault | rate | deliveries | lost | sent twice | sent after a 2xx | alerts wrong | log wrong | failed for good | time |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let rate = if o.rate > 0.0 {
            format!(
                "{:.0} % ({:.0} % after effect)",
                o.rate * 100.0,
                o.after_share * 100.0
            )
        } else {
            "-".to_owned()
        };
        text.push_str(&format!(
            "| {} | {rate} | {} | {} | {} | {} | {} | {} | {} | {:.0} s |\n",
            o.fault,
            o.deliveries,
            o.lost.len(),
            o.sent_twice.len(),
            o.sent_after_success.len(),
            o.alert_mismatches.len(),
            o.log_mismatches.len(),
            o.permanently_failed,
            o.seconds,
        ));
    }
    text
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = cli_arg("--events", 2000);
    let webhooks = cli_arg("--webhooks", 3);
    let rate = cli_arg("--rate", 25) as f64 / 100.0;
    let h = Harness::get();
    // A long run waits for the slowest delivery: generous, scaled to the run's size.
    let deadline = Duration::from_secs(300 + (events * webhooks) as u64 / 4);
    let base = Plan {
        fault: String::new(),
        events,
        webhooks,
        faults: Faults::NONE,
        receivers: Some(SOMETIMES_FAILING),
        duplicate_messages: false,
        seed: 2026,
        deadline,
    };
    let plans = [
        Plan {
            fault: "DynamoDB and SQS calls fail (500 or throttling)".into(),
            faults: Faults {
                rate,
                after_share: 0.5,
            },
            ..base.clone()
        },
        Plan {
            fault: "a copy of every delivery message, and calls fail".into(),
            faults: Faults {
                rate,
                after_share: 0.5,
            },
            duplicate_messages: true,
            ..base.clone()
        },
        Plan {
            fault: "receivers fail 30 %, hang 2 %, reset 5 %".into(),
            receivers: Some(Flaky {
                seed: 11,
                fail: 0.3,
                hang: 0.02,
                reset: 0.05,
                hang_for: Duration::from_secs(11),
                dead: 0.02,
            }),
            ..base.clone()
        },
    ];
    let only = cli_arg("--only", 0);
    let mut outcomes = Vec::new();
    for (n, plan) in plans.iter().enumerate() {
        if only != 0 && only != n + 1 {
            continue;
        }
        eprintln!(
            "chaos: {} ({} events x {} webhooks)...",
            plan.fault, events, webhooks
        );
        let outcome = chaos::run(plan).await;
        eprintln!("{}", table(std::slice::from_ref(&outcome)));
        outcomes.push(outcome);
    }

    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let results = json!({
        "events": events,
        "webhooks": webhooks,
        "runs": outcomes,
    });
    let dir = h.root.join("bench-results");
    std::fs::create_dir_all(&dir).expect("bench-results dir");
    let text = serde_json::to_string_pretty(&results).expect("json");
    std::fs::write(dir.join(format!("chaos-{stamp}.json")), &text).expect("write results");
    std::fs::write(dir.join("chaos-latest.json"), &text).expect("write results");
    // What the handlers logged, to find out why if a check failed.
    std::fs::write(dir.join("chaos-latest.log"), h.logs.text()).expect("write logs");
    println!("{}", table(&outcomes));
    let clean = outcomes.iter().all(|o| {
        o.lost.is_empty()
            && o.sent_twice.is_empty()
            && o.sent_after_success.is_empty()
            && o.alert_mismatches.is_empty()
            && o.log_mismatches.is_empty()
    });
    if !clean {
        eprintln!("chaos: something was lost, sent twice or mis-logged: see bench-results/chaos-latest.json");
        std::process::exit(1);
    }
}
