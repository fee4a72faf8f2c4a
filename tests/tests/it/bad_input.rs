//! Bad input gets a clear problem+json answer and changes nothing.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{unique, Api, Harness};
use reqwest::Method;
use serde_json::{json, Value};

async fn event_is_stored(id: &str) -> bool {
    let h = Harness::get();
    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk_config().await);
    ddb.get_item()
        .table_name(h.env("EVENTS_TABLE"))
        .key("id", AttributeValue::S(id.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
        .is_some()
}

async fn webhook_named_exists(name: &str) -> bool {
    let h = Harness::get();
    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk_config().await);
    // Every page of the scan: a filter is applied per 1 MB page, and a shared table grows.
    let pages: Vec<_> = ddb
        .scan()
        .table_name(h.env("WEBHOOKS_TABLE"))
        .filter_expression("#n = :n")
        .expression_attribute_names("#n", "name")
        .expression_attribute_values(":n", AttributeValue::S(name.to_owned()))
        .consistent_read(true)
        .into_paginator()
        .send()
        .collect()
        .await;
    pages
        .into_iter()
        .map(|page| page.expect("scan").count())
        .sum::<i32>()
        > 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_events_are_refused_and_not_stored() {
    let api = Api::new();
    let id = unique("bad");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            format!(r#"{{"id":"{id}","type":"order.completed","data":{{"#).into_bytes(),
            400,
            "not valid",
        ),
        (
            json!({"id": id, "type": "order.deleted", "data": {}})
                .to_string()
                .into_bytes(),
            400,
            "unknown event type",
        ),
        (
            json!({"id": id, "type": "order.completed", "data": "x"})
                .to_string()
                .into_bytes(),
            400,
            "data must be a JSON object",
        ),
        (
            json!({"id": id, "type": "order.completed"})
                .to_string()
                .into_bytes(),
            400,
            "data",
        ),
        (
            json!({"id": "has spaces", "type": "order.completed", "data": {}})
                .to_string()
                .into_bytes(),
            400,
            "id must be",
        ),
        (
            json!({"id": id, "type": "order.completed", "data": {}, "occurred_at": "noon"})
                .to_string()
                .into_bytes(),
            400,
            "RFC 3339",
        ),
        (
            // Valid RFC 3339, but the year 10000 in UTC: it used to panic the handler.
            json!({"id": id, "type": "order.completed", "data": {}, "occurred_at": "9999-12-31T23:59:59-23:59"})
                .to_string()
                .into_bytes(),
            422,
            "outside the years 0000 to 9999",
        ),
        (
            json!({"id": id, "type": "order.completed", "data": {}, "extra": true})
                .to_string()
                .into_bytes(),
            400,
            "unknown field",
        ),
        (
            json!({"id": id, "type": "order.completed", "data": {"pad": "x".repeat(300 * 1024)}})
                .to_string()
                .into_bytes(),
            413,
            "256 KiB",
        ),
        (vec![b'x'; 2 * 1024 * 1024], 413, "length limit"),
    ];
    for (body, status, needle) in cases {
        let answer = api.post_event_bytes(body).await;
        answer.assert_problem(status);
        assert!(
            answer.detail().contains(needle),
            "{needle:?} not in {}",
            answer.text
        );
    }
    assert!(!event_is_stored(&id).await, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_are_refused_naming_the_field_and_not_stored() {
    let api = Api::new();
    let name = unique("bad-webhook");
    // A webhook that would be valid but for `url` or `events`.
    let webhook = |url: &str, events: Value| json!({"name": name, "url": url, "events": events});
    let long_url = format!("https://example.com/{}", "a".repeat(2100));
    let bad_urls = [
        "http://example.com/hook",
        "https://u:p@example.com/",
        long_url.as_str(),
        "not a url",
    ];
    let bad_events = [
        json!(["order.exploded"]),
        json!([]),
        json!(["user.registered", "user.registered"]),
    ];
    let mut cases: Vec<(Value, u16, Option<&str>)> = Vec::new();
    cases.extend(bad_urls.map(|url| (webhook(url, json!(["order.completed"])), 422, Some("url"))));
    cases.extend(
        bad_events.map(|events| (webhook("https://example.com/", events), 422, Some("events"))),
    );
    cases.extend([
        (
            json!({"name": "", "url": "https://example.com/", "events": ["user.registered"]}),
            422,
            Some("name"),
        ),
        (
            json!({"name": name, "url": "https://example.com/", "events": ["user.registered"], "secret": "mine"}),
            400,
            None,
        ),
        (
            webhook("https://example.com/", json!("user.registered")),
            400,
            None,
        ),
        (
            json!({"name": name, "events": ["user.registered"]}),
            400,
            None,
        ),
    ]);
    for (body, status, field) in cases {
        let answer = api
            .admin(Method::POST, "/api/v1/webhooks", Some(body.clone()))
            .await;
        answer.assert_problem(status);
        if let Some(field) = field {
            assert_eq!(answer.json["field"], field, "{body} -> {}", answer.text);
            assert!(answer.detail().contains(field), "{}", answer.text);
        }
    }
    let malformed = api
        .raw(
            Method::POST,
            "/api/v1/webhooks",
            Some(&Harness::get().admin_token),
            Some(b"{\"name\":".to_vec()),
        )
        .await;
    malformed.assert_problem(400);
    assert!(!webhook_named_exists(&name).await, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_longer_than_any_id_are_not_found_not_an_outage() {
    let api = Api::new();
    let long = "w".repeat(3000);
    for path in [
        format!("/api/v1/webhooks/{long}"),
        format!("/api/v1/webhooks/{long}/attempts"),
        format!("/api/v1/webhooks/wh_1/deliveries/{long}"),
        format!("/api/v1/webhooks/wh_1/attempts/{long}"),
    ] {
        let answer = api.get(&path).await;
        answer.assert_problem(404);
        assert!(
            answer.json["detail"]
                .as_str()
                .is_some_and(|d| d.contains("at most 64 characters")),
            "{}",
            answer.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_malformed_ids_are_not_found_not_an_outage() {
    let api = Api::new();
    let id = api
        .create_paused_webhook(
            &unique("ids"),
            "https://example.com/h",
            &["user.registered"],
        )
        .await
        .id;
    // They used to reach DynamoDB, which refuses an empty key: 503 and an ERROR logged.
    let cases = [
        (Method::GET, "/api/v1/webhooks//attempts".to_owned()),
        (Method::POST, "/api/v1/webhooks//rotate-secret".to_owned()),
        (Method::POST, "/api/v1/webhooks//recover".to_owned()),
        (Method::PATCH, "/api/v1/webhooks/%20".to_owned()),
        (Method::DELETE, "/api/v1/webhooks/WH_01ABC".to_owned()),
        (Method::GET, "/api/v1/webhooks/wh_a%2Fb".to_owned()),
        (Method::GET, format!("/api/v1/webhooks/{id}/deliveries/%FF")),
        (
            Method::GET,
            format!("/api/v1/webhooks/{id}/attempts/dlv_01abc.0"),
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/{id}/attempts/x.1/redeliver"),
        ),
        (Method::POST, "/api/v1/webhooks/%00/test-event".to_owned()),
    ];
    for (method, path) in cases {
        let answer = api
            .admin(
                method,
                &path,
                Some(json!({"since": "2026-01-01T00:00:00Z"})),
            )
            .await;
        answer.assert_problem(404);
        assert!(answer.detail().contains(" ids are "), "{}", answer.text);
    }
    let empty = api.get("/api/v1/webhooks//attempts").await;
    assert!(
        empty
            .detail()
            .starts_with("the webhook id in the path is empty; webhook ids are wh_"),
        "{}",
        empty.text
    );
    // Nothing changed: the webhook is as it was made.
    let shown = api.webhook(&id).await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.json["status"], "paused");
}

/// The HTTP API throttles as `template.yaml` says, the public routes hardest: a flood of the
/// console's pages (no token needed) is refused with API Gateway's 429 before any function
/// runs, while the token-guarded routes go on. (No other test of this process asks for the
/// console's pages, so the flood cannot disturb one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_the_public_routes_is_throttled_and_the_api_goes_on() {
    let h = Harness::get();
    let limits =
        h.stack_json["http_api_throttling"]["routes"]["GET /admin/webhooks/{proxy+}"].clone();
    let burst = limits["burst"]
        .as_u64()
        .expect("the console's pages are throttled");
    let api = Api::new();
    // All at once: the bucket refills at its steady rate, so a slow machine must not spread
    // them out.
    let statuses = futures::future::join_all(
        (0..burst * 5).map(|_| api.raw(Method::GET, "/admin/webhooks/new", None, None)),
    )
    .await;
    let throttled: Vec<_> = statuses.iter().filter(|a| a.status == 429).collect();
    assert!(
        !throttled.is_empty(),
        "{} requests at once, none throttled: {:?}",
        statuses.len(),
        statuses.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(throttled[0].json, json!({"message": "Too Many Requests"}));
    assert!(statuses.iter().all(|a| a.status == 200 || a.status == 429));
    // The admin API has its own (far larger) bucket.
    assert_eq!(api.get("/api/v1/event-types").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_characters_in_names_are_refused_naming_the_code_point() {
    let api = Api::new();
    let name = unique("visible");
    for (c, named) in [
        ('\u{202E}', "U+202E (right-to-left override)"),
        ('\u{2067}', "U+2067 (right-to-left isolate)"),
        ('\u{200B}', "U+200B (zero width space)"),
        (
            '\u{FEFF}',
            "U+FEFF (zero width no-break space, the byte order mark)",
        ),
        ('\u{2028}', "U+2028 (line separator)"),
        ('\u{FFFF}', "U+FFFF (a noncharacter)"),
    ] {
        let hidden = format!("{name}{c}");
        let answer = api
            .admin(
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"name": hidden, "url": "https://example.com/", "events": ["user.registered"]})),
            )
            .await;
        answer.assert_problem(422);
        assert_eq!(answer.json["field"], "name", "{}", answer.text);
        assert!(answer.detail().contains(named), "{}", answer.text);
        assert!(!webhook_named_exists(&hidden).await, "nothing was written");
    }
    // PATCH refuses them too, and the name stays as it was.
    let id = api
        .create_paused_webhook(&name, "https://example.com/h", &["user.registered"])
        .await
        .id;
    let answer = api
        .patch_webhook(&id, json!({"name": format!("{name}\u{200F}")}))
        .await;
    answer.assert_problem(422);
    assert_eq!(answer.json["field"], "name");
    assert!(
        answer.detail().contains("U+200F (right-to-left mark)"),
        "{}",
        answer.text
    );
    assert_eq!(api.webhook(&id).await.json["name"], name.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_nested_deeper_than_receivers_can_parse_is_refused_and_not_stored() {
    let api = Api::new();
    let (single, in_batch) = (unique("deep"), unique("deep"));
    // 10,000 arrays deep fits in 20 KB; it used to be accepted (202) and sent to receivers.
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(9_999), "]".repeat(9_999));
    let event = |id: &str, data: &str| {
        format!(r#"{{"id":"{id}","type":"order.completed","data":{data}}}"#).into_bytes()
    };
    let answer = api.post_event_bytes(event(&single, &deep)).await;
    answer.assert_problem(422);
    assert_eq!(answer.json["field"], "data", "{}", answer.text);
    assert!(
        answer
            .detail()
            .starts_with("data nests arrays and objects 10000 levels deep; at most 32"),
        "{}",
        answer.text
    );
    let body = format!(
        r#"{{"events":[{},{}]}}"#,
        String::from_utf8(event(&unique("fine"), r#"{"a":[[1]]}"#)).expect("text"),
        String::from_utf8(event(&in_batch, &deep)).expect("text")
    );
    let answer = api.post_events_batch_bytes(body.into_bytes()).await;
    answer.assert_problem(422);
    assert_eq!(answer.json["field"], "events[1].data", "{}", answer.text);
    assert!(!event_is_stored(&single).await && !event_is_stored(&in_batch).await);
    // 32 levels, data's own object included, are accepted.
    let deepest = format!("{{\"a\":{}{}}}", "[".repeat(31), "]".repeat(31));
    let accepted = api.post_event_bytes(event(&unique("deep"), &deepest)).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
}
