//! Changes that race, and answers whose follow-up fails: nothing orphaned, nothing lost.

use aws_sdk_dynamodb::config::SharedCredentialsProvider;
use integration_tests::{Api, Harness};
use serde_json::json;
use webhooks_shared::adapters::Adapters;

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
    let admin = admin_api::AdminApi::new(Adapters::new(&sdk, &config), &config);
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
