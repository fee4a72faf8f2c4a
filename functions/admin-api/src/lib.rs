//! `admin-api`: what an admin does in the user guide's "Managing Webhooks", "Delivery Log"
//! and "Redelivery" sections, as the JSON API of SPEC §6, and the console that calls it.
//!
//! One module per feature, each with its request types and their checks, its answers, its
//! route handlers and its [`AdminApi`] calls: [`webhooks`] (create, list, read, change,
//! delete), [`secrets`] (rotate), [`attempts`] (the log, an attempt, a delivery,
//! redelivery), [`recovery`], [`test_events`], [`event_types`] and [`console`]. [`http`]
//! lists the routes; the small shared modules are [`problems`], [`paging`], [`path_ids`],
//! [`manual`] (queueing a manual delivery) and [`scope`] (the admin-scope check); [`wire`]
//! builds it all from the settings. A feature may use another's calls (every one finds its
//! webhook through `webhooks`), never in a circle.

pub mod attempts;
pub mod console;
pub mod event_types;
pub mod http;
pub mod manual;
pub mod openapi;
pub mod paging;
pub mod path_ids;
pub mod problems;
pub mod recovery;
pub mod scope;
pub mod secrets;
pub mod test_events;
pub mod webhooks;
pub mod wire;

#[cfg(test)]
mod properties;

use std::time::Duration;

use webhooks_shared::adapters::queue::Queue;
use webhooks_shared::adapters::secret_box::SecretBox;
use webhooks_shared::adapters::store::Store;
use webhooks_shared::adapters::Adapters;
use webhooks_shared::Config;

pub use http::{public_router, router};
pub use wire::{wire, Handler};

/// The admin calls, over the stores they read and write; each feature module adds its own.
pub struct AdminApi {
    store: Store,
    secrets: SecretBox,
    queue: Queue,
    retention: Duration,
    /// The local switch that lets webhook URLs name private hosts (see `webhooks::Targets`).
    allow_private_targets: bool,
}

impl AdminApi {
    /// Built by [`wire`] (and the crate's own tests).
    pub(crate) fn new(adapters: Adapters, config: &Config) -> Self {
        AdminApi {
            store: adapters.store,
            secrets: adapters.secrets,
            queue: adapters.queue,
            retention: config.retention,
            allow_private_targets: config.allow_private_targets,
        }
    }
}
