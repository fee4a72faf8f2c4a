//! An event whose webhooks are too many for its item: they are written in page items with
//! it, in one transaction, and the stream's fan-out reads them back. The real threshold is
//! 1,000 webhooks, too many to make here; a fanout of the test's own stores its events with
//! pages of two (`Fanout::with_paging`), under fanout's own role, and the gateway's fanout
//! (the real one, from the events table's stream) delivers them. (`make bench-subscribers`
//! measures 10,000 webhooks with the real threshold.)

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{delivery_id, unique, Api, Harness, Receiver, Reply};
use serde_json::json;
use webhooks_shared::adapters::store::Paging;

/// Used by few other tests: their webhooks of this type get this test's event too.
const TYPE: &str = "winner.prize_choice_made";

/// A fanout storing events with pages of `per_page` webhooks once there are more than
/// `max_inline`, signed in as fanout's role.
async fn fanout_with_pages(max_inline: usize, per_page: usize) -> fanout::Fanout {
    let h = Harness::get();
    let credentials = h.function_credentials("fanout").await;
    let sdk = h
        .sdk_config()
        .await
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    let config = h.config(&[]);
    fanout::wire(&sdk, &config).with_paging(Paging {
        max_inline,
        per_page,
    })
}

/// The event's item and its pages' webhook ids, as stored.
async fn stored(event_id: &str) -> (HashMap<String, AttributeValue>, Vec<String>) {
    let h = Harness::get();
    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk_config().await);
    let get = |id: String| {
        let ddb = ddb.clone();
        async move {
            ddb.get_item()
                .table_name(h.env("EVENTS_TABLE"))
                .key("id", AttributeValue::S(id))
                .consistent_read(true)
                .send()
                .await
                .expect("get item")
                .item
        }
    };
    let event = get(event_id.to_owned()).await.expect("event stored");
    let pages: u32 = event["webhook_pages"]
        .as_n()
        .expect("webhook_pages")
        .parse()
        .expect("number");
    let mut webhooks = Vec::new();
    for n in 1..=pages {
        let page = get(format!("{event_id}#webhooks#{n}"))
            .await
            .unwrap_or_else(|| panic!("page {n} of {pages}"));
        for id in page["webhooks"].as_l().expect("list") {
            webhooks.push(id.as_s().expect("id").clone());
        }
    }
    (event, webhooks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_its_webhooks_in_pages_reaches_each_once() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let mut ours = Vec::new();
    for _ in 0..5 {
        ours.push(api.webhook_for(&receiver.url, &[TYPE]).await);
    }
    let paused = api.paused_webhook_for(&receiver.url, &[TYPE]).await;

    let fanout = fanout_with_pages(2, 2).await;
    let event_id = unique("evt-paged");
    let body = json!({"id": event_id, "type": TYPE, "data": {"id": "prz_1", "choice": "cash"}});
    let accepted = fanout
        .ingest(body.to_string().as_bytes())
        .await
        .expect("accepted");
    let deliveries = accepted.deliveries as usize;
    assert!(deliveries >= ours.len(), "{accepted:?}");

    // One item for the event (no list in it), and pages of two that list every active
    // subscriber once: ours among them, the paused one not.
    let (item, listed) = stored(&event_id).await;
    assert!(!item.contains_key("webhooks"), "{item:?}");
    assert_eq!(
        item["deliveries"].as_n().map(String::as_str),
        Ok(deliveries.to_string().as_str())
    );
    assert_eq!(
        item["webhook_pages"].as_n().map(String::as_str),
        Ok(deliveries.div_ceil(2).to_string().as_str())
    );
    let distinct: BTreeSet<&String> = listed.iter().collect();
    assert_eq!((listed.len(), distinct.len()), (deliveries, deliveries));
    for id in &ours {
        assert!(distinct.contains(id), "{id} not in the pages");
    }
    assert!(!distinct.contains(&paused.as_str().to_owned()));

    // The stream's fan-out sends one delivery per webhook: each of ours gets it once.
    let mut expected = BTreeSet::new();
    for id in &ours {
        api.wait_for_event(id, &event_id, &["succeeded"]).await;
        expected.insert(delivery_id(&event_id, id).await);
    }
    // Sent again, through the gateway (its own fanout keeps lists of this size inline) and
    // the paged one: the same answer, no second fan-out. Other data under the id: a 409.
    let again = api.post_event(body.clone()).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.json["deliveries"], deliveries, "{}", again.text);
    let again = fanout
        .ingest(body.to_string().as_bytes())
        .await
        .expect("accepted");
    assert_eq!(again.deliveries as usize, deliveries);
    let other = json!({"id": event_id, "type": TYPE, "data": {"id": "prz_2"}});
    api.post_event(other).await.assert_problem(409);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let arrived: Vec<String> = receiver
        .requests_for(&event_id)
        .iter()
        .map(|r| r.header("x-comps-delivery").to_owned())
        .collect();
    let arrived_once: BTreeSet<String> = arrived.iter().cloned().collect();
    assert_eq!(arrived.len(), ours.len(), "{arrived:?}");
    assert_eq!(arrived_once, expected);

    for id in ours.iter().chain([&paused.into_string()]) {
        assert_eq!(api.delete_webhook(id).await.status, 204);
    }
}

/// The batch path pages too, and an event whose type has no webhook stores none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_stores_each_event_with_its_pages() {
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    let mut ours = Vec::new();
    for _ in 0..3 {
        ours.push(api.webhook_for(&receiver.url, &[TYPE]).await);
    }
    let fanout = fanout_with_pages(1, 2).await;
    let ids: Vec<String> = (0..3).map(|_| unique("evt-paged-batch")).collect();
    let events: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "type": TYPE, "data": {"id": id}}))
        .collect();
    let body = json!({ "events": events }).to_string();
    let outcome = fanout
        .ingest_batch(body.as_bytes())
        .await
        .expect("accepted");
    assert_eq!(outcome.events.len(), 3);
    for id in &ids {
        let (_, listed) = stored(id).await;
        for webhook in &ours {
            assert!(listed.contains(webhook), "{webhook} not in {id}'s pages");
            api.wait_for_event(webhook, id, &["succeeded"]).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        assert_eq!(receiver.requests_for(id).len(), ours.len(), "{id}");
    }
    for id in &ours {
        assert_eq!(api.delete_webhook(id).await.status, 204);
    }
}
