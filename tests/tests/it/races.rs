//! Changes that race, and answers whose follow-up fails: nothing orphaned, nothing lost.

use std::time::Duration;

use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use integration_tests::{delivery_id, eventually, Api, Harness, Receiver, Reply, WAIT};
use serde_json::json;
use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_that_read_a_webhook_before_a_patch_changes_nothing() {
    let h = Harness::get();
    let api = Api::new();
    let store = h.adapters(&h.config(&[])).await.store;
    let id = api
        .paused_webhook_for("https://race.example.com/h", &["competition.created"])
        .await;
    // The delete reads the webhook; a PATCH lands and subscribes another event type.
    let read_by_delete = store.get_webhook(&id).await.expect("get").expect("webhook");
    let patched = api
        .patch_webhook(id.as_str(), json!({"events": ["user.registered"]}))
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);

    // Deleting with what it read is refused, so no subscription is left without its webhook.
    let deleted = store.delete_webhook(&read_by_delete).await.expect("delete");
    assert!(!deleted, "a stale delete must not go through");
    assert_eq!(api.webhook(id.as_str()).await.status, 200);
    let subscribers = store
        .subscribers("user.registered")
        .await
        .expect("subscribers");
    assert!(subscribers.iter().any(|s| s.webhook_id == id));

    // Through the API the delete reads the current revision and succeeds, taking the new
    // subscription with it.
    assert_eq!(api.delete_webhook(id.as_str()).await.status, 204);
    let subscribers = store
        .subscribers("user.registered")
        .await
        .expect("subscribers");
    assert!(!subscribers.iter().any(|s| s.webhook_id == id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_answered_even_if_the_log_cannot_be_read() {
    let h = Harness::get();
    let api = Api::new();
    let id = api
        .paused_webhook_for("https://rotate.example.com/h", &["competition.created"])
        .await;
    // admin-api's role without dynamodb:Query: the rotation commits, the follow-up read of
    // the delivery log (for last_delivery) fails.
    let role = h
        .derive_role("admin-api", &[], Some("dynamodb:Query"))
        .await;
    let credentials = h.role_credentials(&role).await;
    let sdk = h
        .sdk_config()
        .await
        .to_builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    let config = h.config(&[]);
    let admin = admin_api::wire(&sdk, &config).api;
    assert!(
        admin.attempts(&id, 1).await.is_err(),
        "the log cannot be read"
    );

    let rotated = admin
        .rotate_secret(&id)
        .await
        .expect("the committed secret is answered");
    assert!(rotated.secret.starts_with("whsec_"), "{}", rotated.secret);
    assert!(rotated.webhook.last_delivery.is_none());
    let stored = api.webhook(id.as_str()).await;
    assert_eq!(
        stored.json["secret_hint"],
        json!(rotated.webhook.secret_hint),
        "the answered secret is the one stored"
    );
}

/// Copies of the message a retried delivery continues as (an SDK retry of a send whose
/// first try went through, the stream handing its record over again, a copy sent again much
/// later) make one request per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_of_a_delivery_message_send_each_attempt_once() {
    let h = Harness::get();
    let api = Api::new();
    // Attempt 1 fails; attempt 2 is slow (the copies arrive while it is under way) and
    // fails; attempt 3 succeeds.
    let receiver = Receiver::start(vec![
        Reply::status(500),
        Reply {
            delay: Duration::from_secs(3),
            ..Reply::status(500)
        },
        Reply::status(200),
    ])
    .await;
    let wh = api.webhook_for(&receiver.url, &["order.refunded"]).await;
    let posted = api.post("order.refunded", json!({"id": "r-1"})).await;
    let dlv = delivery_id(&posted.id, &wh).await;
    eventually("attempt 2 to reach the receiver", WAIT, || async {
        (receiver.requests_for(&posted.id).len() >= 2).then_some(())
    })
    .await;

    let message = DeliveryMessage {
        delivery: DeliveryRef {
            delivery_id: dlv.clone().into(),
            webhook_id: wh.clone().into(),
            event_id: posted.id.clone().into(),
            event_type: "order.refunded".into(),
            resource_id: Some("r-1".into()),
            manual: false,
        },
        created_at: None,
        body: None,
        fresh: false,
    };
    // Two copies sent the way the services send (within SQS's deduplication interval)...
    let queue = h.adapters(&h.config(&[])).await.queue;
    queue
        .send(&[message.clone(), message.clone()])
        .await
        .expect("send copies");
    // ...and one as a copy sent after that interval would be: another deduplication id.
    let sqs = aws_sdk_sqs::Client::new(&h.sdk_config().await);
    sqs.send_message()
        .queue_url(h.env("DELIVERY_QUEUE_URL"))
        .message_body(serde_json::to_string(&message).expect("json"))
        .message_group_id(dlv.as_str())
        .message_deduplication_id(format!("{dlv}-late"))
        .send()
        .await
        .expect("send late copy");

    let delivery = api.wait_for_state(&wh, &dlv, &["succeeded"], WAIT).await;
    assert_eq!(delivery["attempts"], 3, "{delivery}");
    // The late copy is handled after the delivery ended: it must not send again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let attempts: Vec<String> = receiver
        .requests_for(&posted.id)
        .iter()
        .map(|r| r.header("x-comps-attempt").to_owned())
        .collect();
    assert_eq!(
        attempts,
        ["1", "2", "3"],
        "each attempt reached the receiver once"
    );
}
