//! Test support: a moto server started for the test process, the stack created from
//! `template.yaml` in it, the local gateway running the real handlers, HTTPS receivers
//! signed by a test CA made at test time, and a Lambda Runtime API emulator.

pub mod api;
pub mod bench_support;
pub mod chaos;
pub mod cost;
pub mod fault_proxy;
pub mod functions;
pub mod harness;
pub mod lambda_events;
pub mod openapi;
pub mod receiver;
pub mod runtime_api;
pub mod tls;

pub use api::Api;
pub use harness::Harness;
pub use receiver::{Receiver, Reply};

use std::time::{Duration, Instant};

/// How long a test waits for the pipeline to get somewhere: generous, as the tests share a
/// small machine with each other and the emulator.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            let problems = Harness::recent_problems(40).join("\n");
            let saved = Harness::save_log()
                .map_or_else(|| "not saved".to_owned(), |path| path.display().to_string());
            panic!("timed out after {timeout:?} waiting for {what}; the whole log: {saved}; the last warnings and errors logged:\n{problems}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// The id of the delivery of `event_id` to `webhook_id`, as fan-out made it: from the time
/// the event was received, read from the stored event.
pub async fn delivery_id(event_id: &str, webhook_id: &str) -> String {
    let h = Harness::get();
    let store = h.adapters(&h.config(&[])).await.store;
    delivery_id_in(&store, event_id, webhook_id)
        .await
        .into_string()
}

/// [`delivery_id`] with a store at hand.
pub async fn delivery_id_in(
    store: &webhooks_shared::adapters::store::Store,
    event_id: &str,
    webhook_id: &str,
) -> webhooks_shared::domain::ids::DeliveryId {
    let event = store
        .get_event(&event_id.into())
        .await
        .expect("read the event")
        .unwrap_or_else(|| panic!("event {event_id} is not stored"));
    webhooks_shared::domain::ids::delivery_id(
        &event_id.into(),
        &webhook_id.into(),
        event.received_at.into(),
    )
}

/// The number after `name` on the command line (`--events 200`), or `default`.
pub fn cli_arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
