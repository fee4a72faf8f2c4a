//! The API against its own OpenAPI document, checked by a peer tool: schemathesis (PyPI,
//! pinned in infra/requirements.txt) generates requests from the document served at
//! `GET /api/v1/openapi.json` — schema-valid ones, which must be accepted, and invalid ones,
//! which must be refused with a 4xx — and checks every answer against the document (status
//! codes, bodies, content types, headers, no 5xx). Its stateful phase follows the document's
//! links with the ids real answers gave: create → read → patch → rotate the secret →
//! delete, a webhook's test event → its delivery and attempts → redeliver. Once with the
//! ingest token on the ingest routes, then with the admin token on the admin routes. Its
//! settings are in `tests/contract/schemathesis.toml`; `tests/contract/hooks.py` keeps out
//! of the generated requests a rule of the document that JSON Schema cannot state.
//!
//! Several seeds, each a run of its own: fixed ones, the same cases every time, and one
//! drawn afresh and printed, so every run also covers new ground. A failure names its seed
//! and how to replay it: `SCHEMATHESIS_SEEDS=<seed> cargo test -p integration-tests --test
//! contract -- --nocapture` runs just those seeds (comma-separated). Each admin run starts
//! with no webhooks, as its replay does.
//!
//! A test process of its own: it creates and deletes webhooks by the hundred, and events it
//! posts would fan out to them; the other integration tests must not see those.

use std::process::Command;
use std::time::Instant;

use integration_tests::{Api, Harness};

/// The seeds every run uses, before the one it draws.
const FIXED_SEEDS: [u64; 3] = [2026, 7, 31337];

/// The seeds of this run: `SCHEMATHESIS_SEEDS` (a replay), or the fixed ones and a fresh one.
fn seeds() -> Vec<u64> {
    match std::env::var("SCHEMATHESIS_SEEDS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|seed| {
                seed.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("SCHEMATHESIS_SEEDS: {seed:?} is not a seed"))
            })
            .collect(),
        _ => {
            let mut seeds = FIXED_SEEDS.to_vec();
            seeds.push(u64::from(rand::random::<u32>()));
            seeds
        }
    }
}

/// One schemathesis run: a token and the routes it may use, a seed, and its phases.
struct Run<'a> {
    what: &'a str,
    token: &'a str,
    routes: (&'a str, &'a str),
    seed: u64,
    phases: &'a str,
}

/// What a run left to report: its summary, or everything it printed when it failed.
struct Outcome {
    /// The run and how to replay it, when it failed.
    failed: Option<String>,
    report: String,
}

fn schemathesis(run: &Run) -> Outcome {
    let h = Harness::get();
    let st = h.root.join(".venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run `bash infra/venv.sh` (make test does)",
        st.display()
    );
    let reports = tempfile::tempdir().expect("report dir");
    let mut command = Command::new(&st);
    command
        .env("SCHEMATHESIS_HOOKS", h.root.join("tests/contract/hooks.py"))
        .arg("--config-file")
        .arg(h.root.join("tests/contract/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", h.gateway))
        .args(["-H", &format!("Authorization: Bearer {}", run.token)])
        .args([run.routes.0, run.routes.1, "--no-color"])
        .args(["--seed", &run.seed.to_string(), "--phases", run.phases])
        .current_dir(reports.path());
    let started = Instant::now();
    let output = command.output().expect("run schemathesis");
    let title = format!(
        "schemathesis on the {} routes, seed {}, {} ({:.0} s)",
        run.what,
        run.seed,
        run.phases,
        started.elapsed().as_secs_f64()
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text
        .rsplit_once("SUMMARY")
        .map(|(_, summary)| summary)
        .unwrap_or(&text);
    let replay = format!(
        "replay: SCHEMATHESIS_SEEDS={} cargo test -p integration-tests --test contract -- --nocapture",
        run.seed
    );
    if !output.status.success() {
        return Outcome {
            failed: Some(format!(
                "{title}: the API and its OpenAPI document disagree ({replay})"
            )),
            report: format!(
                "{title}: FAILED ({replay})\n{text}\n{}",
                String::from_utf8_lossy(&output.stderr)
            ),
        };
    }
    // A run that tested nothing would pass too.
    if !summary.contains("passed") || summary.contains(" 0 generated") {
        return Outcome {
            failed: Some(format!("{title}: ran no test case")),
            report: format!("{title}: ran no test case\n{text}"),
        };
    }
    Outcome {
        failed: None,
        report: format!("{title}:{summary}"),
    }
}

/// Deletes every webhook, so the next admin run starts as its replay would.
fn delete_all_webhooks() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let api = Api::new();
        loop {
            let list = api.get("/api/v1/webhooks").await;
            assert_eq!(list.status, 200, "{}: {}", list.request, list.text);
            let ids: Vec<String> = list.json["webhooks"]
                .as_array()
                .expect("webhooks")
                .iter()
                .filter_map(|w| w["id"].as_str().map(str::to_owned))
                .collect();
            if ids.is_empty() {
                return;
            }
            for id in ids {
                let deleted = api.delete_webhook(&id).await;
                assert!(
                    [204, 404].contains(&deleted.status),
                    "{}: {}",
                    deleted.request,
                    deleted.text
                );
            }
        }
    });
}

/// Ingest first, then the admin API, one after the other: the admin runs create webhooks
/// by the hundred, and ingest's events fanned out to all of them at once loaded the one
/// emulator process past schemathesis's time limit (a slow emulator is not a defect of the
/// API). For each, the coverage phase (the document's boundary values, much the same for
/// any seed) runs once, then the generated cases, and for the admin API the stateful phase
/// (ingest has no links to follow), once per seed.
#[test]
fn ingest_and_the_admin_api_do_what_their_openapi_document_says() {
    let h = Harness::get();
    let seeds = seeds();
    eprintln!("schemathesis seeds: {seeds:?}");
    let ingest = ("--include-path-regex", "^/api/v1/events");
    let admin = ("--exclude-path-regex", "^/api/v1/events");
    let mut outcomes = Vec::new();
    for (what, token, routes, phases) in [
        ("ingest", h.ingest_token.as_str(), ingest, "fuzzing"),
        ("admin", h.admin_token.as_str(), admin, "fuzzing,stateful"),
    ] {
        let runs =
            std::iter::once(("coverage", seeds[0])).chain(seeds.iter().map(|&seed| (phases, seed)));
        for (phases, seed) in runs {
            if what == "admin" {
                delete_all_webhooks();
            }
            let outcome = schemathesis(&Run {
                what,
                token,
                routes,
                seed,
                phases,
            });
            eprintln!("{}", outcome.report);
            outcomes.push(outcome);
        }
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.failed.as_deref())
        .collect();
    assert!(
        failed.is_empty(),
        "{} (their output is above)",
        failed.join("\n")
    );
}
