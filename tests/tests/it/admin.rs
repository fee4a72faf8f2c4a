//! The admin API basics: create, read, list, delete, the event catalogue, 404s.

use integration_tests::{unique, Api, Harness, Receiver, Reply};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_lifecycle() {
    let api = Api::new();
    let name = unique("crm");
    let created = api
        .create_webhook(
            &name,
            "https://crm.example.com/hooks/comps",
            &["order.completed", "user.registered"],
        )
        .await;
    let id = created.id.as_str();
    assert!(id.starts_with("wh_"));
    let secret = created.secret.as_str();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &secret[6..])
            .map(|k| k.len())
            .ok(),
        Some(32)
    );
    let created = &created.json;
    let hint = created["secret_hint"].as_str().expect("hint");
    assert!(hint.starts_with("whsec_…") && secret.ends_with(&hint["whsec_…".len()..]));
    assert_eq!(created["status"], "active");
    assert_eq!(created["last_delivery"], serde_json::Value::Null);
    assert_eq!(
        created["events"],
        json!(["order.completed", "user.registered"])
    );

    let one = api.webhook(id).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json["name"], name.as_str());
    assert!(one.json.get("secret").is_none() && !one.text.contains(secret));

    let listed = api.all_webhooks(None).await;
    assert!(listed.iter().any(|w| w["id"] == id));
    assert!(!serde_json::to_string(&listed)
        .expect("json")
        .contains(secret));

    let deleted = api.delete_webhook(id).await;
    assert_eq!(deleted.status, 204);
    api.webhook(id).await.assert_problem(404);
    api.delete_webhook(id).await.assert_problem(404);
}

/// The list comes a page at a time: `limit` webhooks at most, `next_cursor` to the next page
/// until it is null, every webhook on exactly one page (the stack holds other tests'
/// webhooks too, made and deleted meanwhile: ours are there once each, none twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_list_comes_in_pages_that_cover_every_webhook_once() {
    let api = Api::new();
    let mut ours = Vec::new();
    for _ in 0..5 {
        let webhook = api
            .create_paused_webhook(
                &unique("paged"),
                "https://example.com/h",
                &["user.registered"],
            )
            .await;
        ours.push(webhook.id);
    }
    let listed = api.all_webhooks(Some(2)).await;
    let ids: Vec<&str> = listed.iter().filter_map(|w| w["id"].as_str()).collect();
    let distinct: std::collections::HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "a webhook was on two pages");
    for id in &ours {
        assert!(distinct.contains(id.as_str()), "{id} on no page");
    }
    // Every webhook has its view on its page: the same as the webhook alone.
    let one = listed
        .iter()
        .find(|w| w["id"] == ours[0].as_str())
        .expect("listed");
    assert_eq!(one, &api.webhook(&ours[0]).await.json);

    // A full first page says where to go on, and the next starts after it.
    let first = api.webhooks_page(Some(1), None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.json["webhooks"].as_array().map(Vec::len), Some(1));
    let cursor = first.json["next_cursor"].as_str().expect("a next page");
    let second = api.webhooks_page(Some(1), Some(cursor)).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_ne!(
        second.json["webhooks"][0]["id"], first.json["webhooks"][0]["id"],
        "the cursor moved on"
    );

    for bad in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=bm90LW91cnM",
        "cursor=",
        "after=x",
    ] {
        let answer = api.get(&format!("/api/v1/webhooks?{bad}")).await;
        answer.assert_problem(400);
    }
    assert!(api
        .get("/api/v1/webhooks?cursor=bm90LW91cnM")
        .await
        .detail()
        .contains("next_cursor"));
    for id in &ours {
        assert_eq!(api.delete_webhook(id).await.status, 204);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_webhook_gets_no_new_deliveries() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let id = api.webhook_for(&receiver.url, &["order.refunded"]).await;
    assert_eq!(api.delete_webhook(&id).await.status, 204);
    let event_id = api.post("order.refunded", json!({})).await.id;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert!(receiver.requests_for(&event_id).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_types_are_listed_with_descriptions_and_examples() {
    let api = Api::new();
    let answer = api.get("/api/v1/event-types").await;
    assert_eq!(answer.status, 200);
    let types = answer.json["event_types"].as_array().expect("list");
    let names: Vec<_> = types
        .iter()
        .map(|t| t["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names.len(), 9);
    for expected in [
        "order.completed",
        "winner.drawn",
        "withdrawal.paid",
        "user.registered",
    ] {
        assert!(names.contains(&expected), "{expected}");
    }
    for t in types {
        assert!(t["description"].as_str().is_some_and(|d| !d.is_empty()));
        assert!(t["example"].is_object());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_and_routes_are_404_problems() {
    let api = Api::new();
    for path in [
        "/api/v1/webhooks/wh_nope",
        "/api/v1/webhooks/wh_nope/attempts",
        "/api/v1/webhooks/wh_nope/deliveries/dlv_nope",
        "/api/v1/nothing-here",
    ] {
        api.get(path).await.assert_problem(404);
    }
    let id = api
        .create_paused_webhook(&unique("x"), "https://example.com/h", &["user.registered"])
        .await
        .id;
    // The webhook is there; what is asked of it is not, or out of range.
    for (of_webhook, status) in [
        ("deliveries/dlv_nope", 404),
        ("attempts/dlv_nope.1", 404),
        ("attempts/garbage", 404),
        ("attempts?limit=0", 400),
        ("attempts?limit=101", 400),
    ] {
        api.get(&format!("/api/v1/webhooks/{id}/{of_webhook}"))
            .await
            .assert_problem(status);
    }
    let ok = api
        .get(&format!("/api/v1/webhooks/{id}/attempts?limit=5"))
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json, json!({"attempts": []}));
    api.admin(Method::PUT, "/api/v1/event-types", None)
        .await
        .assert_problem(405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_right_token_are_refused() {
    let api = Api::new();
    let h = Harness::get();
    for (method, path, token) in [
        (Method::GET, "/api/v1/webhooks", None),
        (Method::GET, "/api/v1/webhooks", Some("wrong")),
        (
            Method::GET,
            "/api/v1/webhooks",
            Some(h.ingest_token.as_str()),
        ),
        (Method::POST, "/api/v1/events", Some(h.admin_token.as_str())),
        (Method::POST, "/api/v1/events", None),
    ] {
        let answer = api.raw(method, path, token, Some(b"{}".to_vec())).await;
        answer.assert_problem(401);
    }
    let health = api.raw(Method::GET, "/health", None, None).await;
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_answer_says_no_store() {
    let h = Harness::get();
    let api = Api::new();
    let id = api
        .create_paused_webhook(
            &unique("cache"),
            "https://example.com/h",
            &["user.registered"],
        )
        .await
        .id;
    let http = reqwest::Client::new();
    // Secrets (create, rotate-secret), the log, and problems: none may be kept by a cache.
    let created = json!({"name": unique("cache"), "url": "https://example.com/h", "events": ["user.registered"], "active": false});
    let cases = [
        (
            Method::POST,
            "/api/v1/webhooks".to_owned(),
            Some(created),
            201,
        ),
        (Method::GET, "/api/v1/webhooks".to_owned(), None, 200),
        (
            Method::POST,
            format!("/api/v1/webhooks/{id}/rotate-secret"),
            None,
            200,
        ),
        (
            Method::GET,
            format!("/api/v1/webhooks/{id}/attempts"),
            None,
            200,
        ),
        (
            Method::GET,
            "/api/v1/webhooks/wh_nope".to_owned(),
            None,
            404,
        ),
        (
            Method::GET,
            "/api/v1/webhooks//attempts".to_owned(),
            None,
            404,
        ),
        (
            Method::POST,
            "/api/v1/webhooks".to_owned(),
            Some(json!({})),
            400,
        ),
        (Method::PUT, "/api/v1/event-types".to_owned(), None, 405),
        (Method::GET, "/api/v1/nothing-here".to_owned(), None, 404),
    ];
    for (method, path, body, status) in cases {
        let mut request = http
            .request(method.clone(), format!("{}{path}", h.gateway))
            .bearer_auth(&h.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.expect("gateway answers");
        assert_eq!(answer.status().as_u16(), status, "{method} {path}");
        let cache: Vec<_> = answer
            .headers()
            .get_all("cache-control")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        assert_eq!(cache, ["no-store"], "{method} {path}");
    }
}

/// The document allows `since` = `until`; the API used to refuse it (422) and schemathesis
/// found the disagreement. A window of one instant is answered like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_takes_a_window_of_one_instant() {
    let api = Api::new();
    let id = api
        .webhook_for("https://example.com/h", &["user.registered"])
        .await;
    let at = "2026-11-27T02:00:00Z";
    let answer = api.recover(&id, json!({"since": at, "until": at})).await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.json["deliveries"], 0);
    assert_eq!(answer.json["found"], 0);
    assert_eq!(answer.json["next_cursor"], serde_json::Value::Null);
    // Backwards is still refused, naming the field.
    let backwards = api
        .recover(&id, json!({"since": "2026-11-27T02:00:01Z", "until": at}))
        .await;
    backwards.assert_problem(422);
    assert_eq!(backwards.json["field"], "since");
    assert!(
        backwards.detail().contains("not be later than until"),
        "{}",
        backwards.text
    );
    assert_eq!(api.delete_webhook(&id).await.status, 204);
}
