//! admin-api built from its settings, one way: for the Lambda's `main`, the local gateway and
//! the tests.

use std::sync::Arc;

use axum::middleware::from_fn_with_state;
use axum::Router;
use webhooks_shared::adapters::{Adapters, SdkConfig};
use webhooks_shared::Config;

use crate::console::ConsoleSettings;
use crate::http::no_store;
use crate::scope::{require_admin_scope, AdminScope};
use crate::AdminApi;

/// admin-api, built: the API, and what its routes take from the settings.
pub struct Handler {
    pub api: Arc<AdminApi>,
    scope: AdminScope,
    console: ConsoleSettings,
}

/// Builds admin-api on `sdk`'s clients with `config`.
pub fn wire(sdk: &SdkConfig, config: &Config) -> Handler {
    Handler {
        api: Arc::new(AdminApi::new(Adapters::new(sdk, config), config)),
        scope: AdminScope::from_config(config),
        console: ConsoleSettings::from_config(config),
    }
}

impl Handler {
    /// What the function serves behind API Gateway: the public routes, and the admin routes
    /// behind the admin-scope check.
    pub fn router(&self) -> Router {
        // API Gateway authenticates (JWT authorizer with the admin scope; none for the OpenAPI
        // document); the admin routes check the scope again in case a route lacks it. Every
        // answer of the admin routes, the scope check's 403 included, says `no-store`.
        let admin = self
            .admin_routes()
            .layer(from_fn_with_state(self.scope.clone(), require_admin_scope));
        self.public_routes().merge(no_store(admin))
    }

    /// Routes anyone may read: the API document and the console.
    pub fn public_routes(&self) -> Router {
        crate::public_router(self.console.clone())
    }

    /// The admin routes without the scope check, for a server that authenticates admins
    /// itself and passes no JWT authorizer context (the local gateway's bearer token).
    pub fn admin_routes(&self) -> Router {
        crate::router(Arc::clone(&self.api))
    }
}
