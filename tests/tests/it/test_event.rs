//! `POST /api/v1/webhooks/{id}/test-event` (beyond the guide): the catalogue's example of a
//! type to one webhook only, signed as usual, marked `test` in the log.

use hmac::{Hmac, Mac};
use integration_tests::{unique, Api, Receiver, Reply, WAIT};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;

fn test_event_path(webhook_id: &str) -> String {
    format!("/api/v1/webhooks/{webhook_id}/test-event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_reaches_its_webhook_only_signed_and_marked() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let bystander = Receiver::start(vec![Reply::status(200)]).await;
    // Subscribed to another type: a test event may be of any catalogue type.
    let webhook = api
        .create_webhook(&unique("test-target"), &receiver.url, &["order.refunded"])
        .await;
    let other = api
        .create_webhook(&unique("bystander"), &bystander.url, &["winner.drawn"])
        .await;

    let sent = api
        .admin(
            Method::POST,
            &test_event_path(&webhook.id),
            Some(json!({"event_type": "winner.drawn"})),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let event_id = sent.json["event_id"].as_str().expect("event id").to_owned();
    let delivery_id = sent.json["delivery_id"].as_str().expect("delivery id");
    assert!(event_id.starts_with("test~"), "{event_id}");
    assert_eq!(sent.json["event_type"], "winner.drawn");

    let delivery = api
        .wait_for_state(&webhook.id, delivery_id, &["succeeded"], WAIT)
        .await;
    assert_eq!(delivery["test"], true);
    assert_eq!(delivery["manual"], true);
    assert_eq!(delivery["event_id"], event_id.as_str());

    let requests = receiver.requests_for(&event_id);
    assert_eq!(requests.len(), 1, "one request for one successful attempt");
    let request = &requests[0];
    let body: Value = serde_json::from_slice(&request.body).expect("JSON body");
    let catalogue = api.get("/api/v1/event-types").await;
    let example = catalogue.json["event_types"]
        .as_array()
        .and_then(|types| types.iter().find(|t| t["type"] == "winner.drawn"))
        .map(|t| t["example"].clone())
        .expect("catalogue example");
    assert_eq!(body["id"], event_id.as_str());
    assert_eq!(body["type"], "winner.drawn");
    assert_eq!(body["data"], example);
    assert!(body["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert_eq!(request.header("x-comps-event"), "winner.drawn");
    assert_eq!(request.header("x-comps-event-id"), event_id);
    let mut mac = Hmac::<Sha256>::new_from_slice(webhook.secret.as_bytes()).expect("key");
    mac.update(&request.body);
    assert_eq!(
        request.header("x-comps-signature"),
        hex::encode(mac.finalize().into_bytes()),
        "signed with this webhook's secret"
    );

    let lines = api.attempts_of_event(&webhook.id, &event_id).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["test"], true);
    assert_eq!(lines[0]["manual"], true);
    assert_eq!(lines[0]["resource_id"], example["id"]);
    // Inspect shows the exact bytes sent.
    let detail = api
        .attempt(&webhook.id, lines[0]["id"].as_str().expect("id"))
        .await;
    assert_eq!(
        detail.json["request"]["body"].as_str().map(str::as_bytes),
        Some(&request.body[..])
    );

    // Nobody else: the other webhook, subscribed to the type, got nothing.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(bystander.requests_for(&event_id).is_empty());
    assert!(api.attempts_of_event(&other.id, &event_id).await.is_empty());

    // An ordinary delivery is no test.
    let posted = api.post("order.refunded", json!({"id": "ord_1"})).await;
    let ordinary = api
        .wait_for_event(&webhook.id, &posted.id, &["succeeded"])
        .await;
    assert_eq!(ordinary["test"], false);
    assert_eq!(ordinary["manual"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_needs_a_known_type_and_an_active_webhook() {
    let api = Api::new();
    let webhook = api
        .create_webhook(
            &unique("test-refusals"),
            "https://example.com/hooks",
            &["competition.created"],
        )
        .await;
    let path = test_event_path(&webhook.id);
    let unknown = api
        .admin(
            Method::POST,
            &path,
            Some(json!({"event_type": "order.deleted"})),
        )
        .await;
    unknown.assert_problem(422);
    assert_eq!(unknown.json["field"], "event_type");
    assert!(
        unknown.detail().contains("order.completed"),
        "names the known types"
    );
    for body in [
        json!({}),
        json!({"event_type": 3}),
        json!(["order.completed"]),
    ] {
        api.admin(Method::POST, &path, Some(body))
            .await
            .assert_problem(400);
    }
    api.raw(
        Method::POST,
        &path,
        Some(&api_token()),
        Some(b"not json".to_vec()),
    )
    .await
    .assert_problem(400);
    api.admin(
        Method::POST,
        &test_event_path("wh_nope"),
        Some(json!({"event_type": "order.completed"})),
    )
    .await
    .assert_problem(404);

    assert_eq!(
        api.patch_webhook(&webhook.id, json!({"active": false}))
            .await
            .status,
        200
    );
    let paused = api
        .admin(
            Method::POST,
            &path,
            Some(json!({"event_type": "order.completed"})),
        )
        .await;
    paused.assert_problem(409);
    assert!(paused.detail().contains("paused"));
    assert!(
        api.attempts(&webhook.id).await.is_empty(),
        "nothing was sent"
    );
}

fn api_token() -> String {
    integration_tests::Harness::get().admin_token.clone()
}
