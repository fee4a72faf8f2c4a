//! The API against its own OpenAPI document, checked by a peer tool: schemathesis (PyPI,
//! pinned in infra/requirements.txt) generates requests from the document served at
//! `GET /api/v1/openapi.json` — schema-valid ones, which must be accepted, and invalid ones,
//! which must be refused with a 4xx — and checks every answer against the document (status
//! codes, bodies, content types, no 5xx). Once with the admin token on the admin routes, once
//! with the ingest token on the ingest routes. Its settings are in
//! `tests/contract/schemathesis.toml`.
//!
//! A test process of its own: it creates and deletes webhooks by the hundred, and events it
//! posts would fan out to them; the other integration tests must not see those.

use std::process::Command;

use integration_tests::Harness;

fn schemathesis(token: &str, routes: (&str, &str)) {
    let h = Harness::get();
    let st = h.root.join(".venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run `bash infra/venv.sh` (make test does)",
        st.display()
    );
    let reports = tempfile::tempdir().expect("report dir");
    let output = Command::new(&st)
        .arg("--config-file")
        .arg(h.root.join("tests/contract/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", h.gateway))
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all", routes.0, routes.1, "--no-color"])
        .current_dir(reports.path())
        .output()
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&output.stdout);
    let summary = text
        .rsplit_once("SUMMARY")
        .map(|(_, summary)| summary)
        .unwrap_or(&text);
    assert!(
        output.status.success(),
        "schemathesis found places where the API and its OpenAPI document disagree:\n{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that tested nothing would pass too.
    assert!(
        summary.contains("passed") && !summary.contains(" 0 generated"),
        "schemathesis ran no test case:\n{text}"
    );
    eprintln!("schemathesis {} {}:{summary}", routes.0, routes.1);
}

/// Ingest first, then the admin API, one after the other: the admin run creates webhooks by
/// the hundred, and ingest's events fanned out to all of them at once loaded the one
/// emulator process past schemathesis's time limit (a slow emulator is not a defect of the
/// API).
#[test]
fn ingest_and_the_admin_api_do_what_their_openapi_document_says() {
    let h = Harness::get();
    schemathesis(&h.ingest_token, ("--include-path-regex", "^/api/v1/events"));
    schemathesis(&h.admin_token, ("--exclude-path-regex", "^/api/v1/events"));
}
