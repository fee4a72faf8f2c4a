//! The OpenAPI document: valid, served without auth, in step with the router both ways, and
//! real answers validate against its schemas.

use std::collections::BTreeSet;
use std::time::Duration;

use integration_tests::delivery_id;
use integration_tests::{unique, Api, Harness, Receiver, Reply};
use jsonschema::{Draft, Registry};
use reqwest::Method;
use serde_json::{json, Value};

const BASE: &str = "https://comps-webhooks.invalid/openapi.json";

fn document() -> Value {
    let text =
        std::fs::read_to_string(Harness::get().root.join("functions/admin-api/openapi.json"))
            .expect("openapi.json");
    serde_json::from_str(&text).expect("valid JSON")
}

/// (METHOD, path) of every `.route(...)` in the handlers' source.
fn routes_in_source() -> BTreeSet<(String, String)> {
    let root = &Harness::get().root;
    let route =
        regex::Regex::new(r#"(?s)\.route\(\s*"([^"]+)",\s*((?:\s*\.?[a-z]+\([a-z_:]+\))+)"#)
            .expect("regex");
    let method = regex::Regex::new(r"([a-z]+)\(").expect("regex");
    let mut routes = BTreeSet::new();
    for file in [
        "functions/admin-api/src/http.rs",
        "functions/fanout/src/lib.rs",
    ] {
        let source = std::fs::read_to_string(root.join(file)).expect("source");
        for found in route.captures_iter(&source) {
            for m in method.captures_iter(&found[2]) {
                routes.insert((m[1].to_uppercase(), found[1].to_owned()));
            }
        }
    }
    routes
}

fn routes_in_document(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "put", "post", "patch", "delete"].contains(&method.as_str()) {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_served_without_auth() {
    let api = Api::new();
    let answer = api
        .raw(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(answer.json, document());
    assert_eq!(answer.json["openapi"], "3.1.0");
}

/// The derived document is a valid OpenAPI 3.1 document by a validator other than the tools
/// that make and read it (utoipa, schemathesis).
#[test]
fn the_document_is_valid_openapi_3_1() {
    let root = &Harness::get().root;
    let validator = root.join(".venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run `bash infra/venv.sh` (make test does)",
        validator.display()
    );
    let output = std::process::Command::new(validator)
        .arg(root.join("functions/admin-api/openapi.json"))
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        output.status.success(),
        "openapi.json is not a valid OpenAPI document:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_served_is_documented_and_the_other_way_round() {
    let doc = document();
    let served = routes_in_source();
    assert!(served.len() >= 14, "found only {served:?}");
    let documented = routes_in_document(&doc);
    assert_eq!(served, documented, "router and OpenAPI document differ");

    // And each documented route really answers (a 404 about the id, never "no such route").
    let api = Api::new();
    for (method, path) in documented {
        let concrete = path
            .replace("{id}", "wh_nope")
            .replace("{attempt_id}", "dlv_nope.1")
            .replace("{delivery_id}", "dlv_nope");
        let token = if path.starts_with("/api/v1/events") {
            Harness::get().ingest_token.clone()
        } else {
            Harness::get().admin_token.clone()
        };
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let answer = api
            .raw(
                method.clone(),
                &concrete,
                Some(&token),
                Some(b"{}".to_vec()),
            )
            .await;
        assert_ne!(answer.status, 405, "{method} {path}: {}", answer.text);
        assert!(
            !answer.detail().contains("no such route"),
            "{method} {path}: {}",
            answer.text
        );
    }
}

struct Checker {
    doc: Value,
    registry: Registry<'static>,
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl Checker {
    fn new() -> Checker {
        let doc = document();
        let registry = Registry::new()
            .add(BASE, doc.clone())
            .expect("add document")
            .prepare()
            .expect("registry");
        Checker { doc, registry }
    }

    /// Follows a `$ref` to a place in the document; returns its JSON pointer.
    fn follow(&self, mut pointer: String) -> String {
        while let Some(reference) = self.doc.pointer(&pointer).and_then(|v| v["$ref"].as_str()) {
            if self
                .doc
                .pointer(&pointer)
                .and_then(Value::as_object)
                .is_some_and(|o| o.len() > 1)
            {
                break;
            }
            pointer = reference.trim_start_matches('#').to_owned();
        }
        pointer
    }

    /// Asserts `answer` is what the document promises for `method path` and its status.
    fn check(&self, method: &str, path: &str, answer: &integration_tests::api::Answer) {
        let errors = self.errors(method, path, answer);
        assert!(
            errors.is_empty(),
            "{method} {path} {}: {errors:?}\n{}",
            answer.status,
            answer.text
        );
    }

    /// What is wrong with `answer` according to the document.
    fn errors(
        &self,
        method: &str,
        path: &str,
        answer: &integration_tests::api::Answer,
    ) -> Vec<String> {
        let responses = format!(
            "/paths/{}/{}/responses",
            escape(path),
            method.to_lowercase()
        );
        let response = self.follow(format!("{responses}/{}", answer.status));
        assert!(
            self.doc.pointer(&response).is_some(),
            "{method} {path} answered {} which the document does not list: {}",
            answer.status,
            answer.text
        );
        if answer.status == 204 {
            return vec![];
        }
        let schema = format!("{response}/content/{}/schema", escape(&answer.content_type));
        assert!(
            self.doc.pointer(&schema).is_some(),
            "{method} {path} {}: no schema for content type {:?}",
            answer.status,
            answer.content_type
        );
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            // In a URI fragment, the braces of path templates must be percent-encoded.
            .build(&json!({"$ref": format!("{BASE}#{}", schema.replace('{', "%7B").replace('}', "%7D"))}))
            .expect("schema compiles");
        validator
            .iter_errors(&answer.json)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_answers_validate_against_the_schemas() {
    let api = Api::new();
    let checker = Checker::new();
    let receiver = Receiver::start(vec![Reply::status(200).with_body("thanks")]).await;
    let webhooks = "/api/v1/webhooks";
    let one = "/api/v1/webhooks/{id}";

    let created = api
        .admin(Method::POST, webhooks, Some(json!({"name": unique("schema"), "url": receiver.url, "events": ["order.completed"]})))
        .await;
    checker.check("POST", webhooks, &created);
    let id = created.json["id"].as_str().expect("id").to_owned();
    let path = |p: &str| p.replace("{id}", &id);

    checker.check("GET", webhooks, &api.get(webhooks).await);
    let shown = api.get(&path(one)).await;
    checker.check("GET", one, &shown);
    // The check can fail: a webhook that leaked its secret does not match the schema.
    let mut leaked = shown.clone();
    leaked.json["secret"] = created.json["secret"].clone();
    assert!(!checker.errors("GET", one, &leaked).is_empty());
    let renamed = api
        .patch_webhook(&id, json!({"name": "Schema check"}))
        .await;
    checker.check("PATCH", one, &renamed);
    let bad_url = json!({"name": "x", "url": "http://x", "events": ["order.completed"]});
    let refused = api.admin(Method::POST, webhooks, Some(bad_url)).await;
    checker.check("POST", webhooks, &refused);
    checker.check("GET", one, &api.get("/api/v1/webhooks/wh_missing").await);
    checker.check(
        "GET",
        "/api/v1/event-types",
        &api.get("/api/v1/event-types").await,
    );

    let event_id = unique("evt");
    let ingested = api
        .post_event(json!({"id": event_id, "type": "order.completed", "data": {"id": 1}}))
        .await;
    checker.check("POST", "/api/v1/events", &ingested);
    checker.check(
        "POST",
        "/api/v1/events",
        &api.post_event_bytes(b"{".to_vec()).await,
    );
    // A 422 of ingest (data nested deeper than 32 levels) is a documented answer too.
    let deep = json!({"type": "order.completed", "data": {"a": (0..40).fold(json!(1), |v, _| json!([v]))}});
    let refused = api.post_event(deep.clone()).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    checker.check("POST", "/api/v1/events", &refused);
    let refused = api.post_events_batch(vec![deep]).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    checker.check("POST", "/api/v1/events/batch", &refused);
    let batch = "/api/v1/events/batch";
    let (first, second) = (unique("evt"), unique("evt"));
    let accepted = api
        .post_events_batch(vec![
            json!({"id": first, "type": "order.completed", "data": {"id": 2}}),
            json!({"id": second, "type": "competition.ended", "data": {"id": 3}}),
        ])
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    checker.check("POST", batch, &accepted);
    let refused = api
        .post_events_batch(vec![json!({"type": "order.deleted", "data": {}})])
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text);
    checker.check("POST", batch, &refused);
    let clash = api
        .post_events_batch(vec![
            json!({"id": first, "type": "order.completed", "data": {"id": 2}}),
            json!({"id": second, "type": "competition.ended", "data": {"id": 4}}),
        ])
        .await;
    assert_eq!(clash.status, 409, "{}", clash.text);
    checker.check("POST", batch, &clash);
    // The check can fail: a 409 whose results lack the conflict flag does not match.
    let mut unflagged = clash.clone();
    unflagged.json["events"][1] = json!({"id": second});
    assert!(!checker.errors("POST", batch, &unflagged).is_empty());

    let dlv = delivery_id(&event_id, &id).await;
    api.wait_for_state(&id, &dlv, &["succeeded"], Duration::from_secs(60))
        .await;

    let delivery = "/api/v1/webhooks/{id}/deliveries/{delivery_id}";
    let shown = api.delivery(&id, &dlv).await;
    checker.check("GET", delivery, &shown);
    let attempts = "/api/v1/webhooks/{id}/attempts";
    let log = api.get(&path(attempts)).await;
    checker.check("GET", attempts, &log);
    checker.check(
        "GET",
        attempts,
        &api.get(&format!("{}?limit=1000", path(attempts))).await,
    );
    let attempt_id = log.json["attempts"][0]["id"].as_str().expect("attempt");
    let attempt = "/api/v1/webhooks/{id}/attempts/{attempt_id}";
    checker.check("GET", attempt, &api.attempt(&id, attempt_id).await);
    let redeliver = "/api/v1/webhooks/{id}/attempts/{attempt_id}/redeliver";
    checker.check("POST", redeliver, &api.redeliver(&id, attempt_id).await);
    let recover = "/api/v1/webhooks/{id}/recover";
    for window in [
        json!({"since": "2026-01-01T00:00:00Z"}),
        json!({"since": "soon"}),
    ] {
        let answer = api.recover(&id, window).await;
        checker.check("POST", recover, &answer);
    }
    let rotate = "/api/v1/webhooks/{id}/rotate-secret";
    checker.check("POST", rotate, &api.rotate_secret(&id).await);
    checker.check("DELETE", one, &api.delete_webhook(&id).await);
    checker.check(
        "GET",
        "/api/v1/openapi.json",
        &api.raw(Method::GET, "/api/v1/openapi.json", None, None)
            .await,
    );
}

/// The document's name rule (its `pattern`, read by the JSON Schema validator schemathesis
/// uses too) and the API's agree, character by character: a name the pattern allows is
/// accepted, one it refuses gets a 422 naming `name`. The one difference is documented:
/// noncharacters beyond the first plane (U+1FFFE, …, U+10FFFF), which the API refuses but
/// the pattern cannot state (ECMA-262 and Python's `re` share no spelling for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_name_pattern_and_the_api_agree_on_every_character() {
    let doc = document();
    let astral_noncharacter = |c: char| u32::from(c) > 0xFFFF && u32::from(c) & 0xFFFE == 0xFFFE;
    let characters: Vec<char> = (0..=0x10FFFF_u32)
        .filter(|n| *n <= 0xFFFF || n % 0x101 == 0 || n & 0xFFFE == 0xFFFE)
        .filter_map(char::from_u32)
        .collect();
    for schema in ["CreateWebhook", "UpdateWebhook"] {
        let rule = &doc["components"]["schemas"][schema]["properties"]["name"];
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(rule)
            .expect("the name schema compiles");
        let mut disagree = Vec::new();
        for &c in &characters {
            for name in [c.to_string(), format!("a{c}b"), format!("{c} Orders")] {
                let documented = validator.is_valid(&json!(name));
                let api = admin_api::webhooks::validate_name(&name);
                if let Err(p) = &api {
                    assert_eq!((p.status, p.field.as_deref()), (422, Some("name")));
                }
                if documented != api.is_ok() && !astral_noncharacter(c) {
                    disagree.push(format!(
                        "U+{:04X} in {name:?}: document {documented}",
                        u32::from(c)
                    ));
                }
                if astral_noncharacter(c) {
                    assert!(api.is_err(), "U+{:04X} is refused", u32::from(c));
                }
            }
        }
        assert!(
            disagree.is_empty(),
            "{schema}: {} disagreements, e.g. {:?}",
            disagree.len(),
            &disagree[..disagree.len().min(10)]
        );
    }
}

/// `value`, or what its `$ref`s lead to in `doc`.
fn resolved<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    while let Some(reference) = value["$ref"].as_str() {
        value = doc
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} is not in the document"));
    }
    value
}

/// Where a JSON pointer into a body that `schema` describes lands, if the schema describes
/// that place: a property by its name, an array's item by its index.
fn place<'a>(doc: &'a Value, schema: &'a Value, pointer: &str) -> Option<&'a Value> {
    let mut at = resolved(doc, schema);
    for segment in pointer.split('/').skip(1) {
        at = if segment.parse::<usize>().is_ok() {
            resolved(doc, at.get("items")?)
        } else {
            resolved(doc, at.get("properties")?.get(segment)?)
        };
    }
    Some(at)
}

/// The document's links, which schemathesis's stateful phase follows (tests/tests/contract)
/// with the values real answers gave: each names an operation of the document, fills only
/// parameters it has, and reads values its source has (`$request.path.<name>` one of its
/// path parameters, `$response.body#/…` a place its answer's schema describes). A value
/// schemathesis cannot find is skipped without a word, so a link that rotted would quietly
/// test nothing. The lifecycle create → read → patch → rotate → delete is linked, and so
/// are a webhook's test event, its delivery log and redelivery.
#[test]
fn every_link_leads_to_a_real_operation_with_real_values() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../functions/admin-api/openapi.json");
    let text = std::fs::read_to_string(path).expect("openapi.json");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    // operationId -> how to name it, every (location, name) it takes, the operation.
    let mut operations = std::collections::BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let shared = item["parameters"].as_array().cloned().unwrap_or_default();
        for (method, operation) in item.as_object().expect("path item") {
            let Some(id) = operation["operationId"].as_str() else {
                continue;
            };
            let own = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let parameters: BTreeSet<(String, String)> = shared
                .iter()
                .chain(&own)
                .map(|p| {
                    let p = resolved(&doc, p);
                    (
                        p["in"].as_str().expect("in").to_owned(),
                        p["name"].as_str().expect("name").to_owned(),
                    )
                })
                .collect();
            let label = format!("{} {path}", method.to_uppercase());
            operations.insert(id, (label, parameters, operation));
        }
    }
    let mut linked = BTreeSet::new();
    for (source, (label, source_parameters, operation)) in &operations {
        for (status, response) in operation["responses"].as_object().expect("responses") {
            let response = resolved(&doc, response);
            for (name, link) in response["links"].as_object().into_iter().flatten() {
                let at = format!("{label} {status}, link {name}");
                let target = link["operationId"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}: no operationId"));
                let (_, target_parameters, _) = operations
                    .get(target)
                    .unwrap_or_else(|| panic!("{at}: no operation {target}"));
                for (parameter, expression) in link["parameters"].as_object().expect("parameters") {
                    let (location, parameter) = parameter
                        .split_once('.')
                        .unwrap_or_else(|| panic!("{at}: {parameter}: not location.name"));
                    assert!(
                        target_parameters.contains(&(location.to_owned(), parameter.to_owned())),
                        "{at}: {target} has no {location} parameter {parameter}"
                    );
                    let expression = expression.as_str().expect("a runtime expression");
                    if let Some(name) = expression.strip_prefix("$request.path.") {
                        assert!(
                            source_parameters.contains(&("path".to_owned(), name.to_owned())),
                            "{at}: {expression}: {label} has no such path parameter"
                        );
                    } else if let Some(pointer) = expression.strip_prefix("$response.body#") {
                        let schema = &response["content"]["application/json"]["schema"];
                        assert!(
                            place(&doc, schema, pointer).is_some(),
                            "{at}: {expression}: the answer's schema describes no such place"
                        );
                    } else {
                        panic!("{at}: {expression}: not a value this test can check");
                    }
                }
                linked.insert((*source, target));
            }
        }
    }
    for (from, to) in [
        ("createWebhook", "getWebhook"),
        ("getWebhook", "updateWebhook"),
        ("updateWebhook", "rotateWebhookSecret"),
        ("rotateWebhookSecret", "deleteWebhook"),
        ("deleteWebhook", "getWebhook"),
        ("createWebhook", "sendTestEvent"),
        ("sendTestEvent", "getDelivery"),
        ("sendTestEvent", "listAttempts"),
        ("listAttempts", "getAttempt"),
        ("getAttempt", "redeliverAttempt"),
        ("redeliverAttempt", "getDelivery"),
    ] {
        assert!(linked.contains(&(from, to)), "no link from {from} to {to}");
    }
}
