//! The admin console of SPEC §8: the guide's pages (`/admin/webhooks`, `/admin/webhooks/new`,
//! `/admin/webhooks/{id}`) as one static HTML shell, a stylesheet and a script in ES modules
//! (no build step), compiled into the binary. The shells carry no data and need no token:
//! the script signs the admin in and reads everything from `/api/v1` with the admin's token.
//!
//! The assets are served under a path naming their version,
//! `/admin/webhooks/assets/<version>/<file>`, so the modules' relative imports (`./api.js`)
//! stay within one version: a page never pairs a module of one build with another's.
//!
//! Every answer carries a strict Content-Security-Policy: scripts only from this origin
//! (none inline), so text a receiver controls (a response body, a header) can never run
//! even if it were ever put into the page as markup; the script writes it as text only.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use webhooks_shared::config::ConsoleConfig;
use webhooks_shared::Config;

const SHELL: &str = include_str!("../console/index.html");

/// The console's assets by file name: the stylesheet, and the script's modules (`main.js`
/// is the entry; the shell preloads the others, so the browser need not find them import by
/// import).
const ASSETS: [(&str, &str); 14] = [
    ("console.css", include_str!("../console/console.css")),
    ("main.js", include_str!("../console/main.js")),
    ("dom.js", include_str!("../console/dom.js")),
    ("format.js", include_str!("../console/format.js")),
    ("auth.js", include_str!("../console/auth.js")),
    ("api.js", include_str!("../console/api.js")),
    ("badges.js", include_str!("../console/badges.js")),
    ("dialogs.js", include_str!("../console/dialogs.js")),
    ("forms.js", include_str!("../console/forms.js")),
    ("router.js", include_str!("../console/router.js")),
    ("list.js", include_str!("../console/list.js")),
    ("new-webhook.js", include_str!("../console/new-webhook.js")),
    ("webhook.js", include_str!("../console/webhook.js")),
    ("history.js", include_str!("../console/history.js")),
];

/// Where the assets of this build are: the version is part of the path (see the module's
/// documentation).
const ASSETS_PATH: &str = "/admin/webhooks/assets";

/// An asset's type, by its file name.
fn content_type(name: &str) -> &'static str {
    if name.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    }
}

/// Where the console lives; its assets are under `assets/` (no webhook id is `assets`: ids are `wh_…`).
pub const CONSOLE_PATH: &str = "/admin/webhooks";

/// How the console signs an admin in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "sign_in", rename_all = "snake_case")]
pub enum SignIn {
    /// Locally: the token comes in the address's fragment (`#token=…`, what `make dev`
    /// prints) or is pasted into the sign-in form.
    Token,
    /// On AWS: OpenID Connect authorization code with PKCE against the JWT issuer.
    Oidc {
        issuer: String,
        client_id: String,
        scope: String,
    },
}

/// The console's settings, made of the `Config` (`WEBHOOKS_CONSOLE_OIDC_*`,
/// `WEBHOOKS_ADMIN_SCOPE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub sign_in: SignIn,
    /// Origins besides this one the script may call: the issuer's, and where its discovery
    /// document sends the token request (Cognito's hosted domain differs from its issuer).
    pub connect_origins: Vec<String>,
}

impl ConsoleSettings {
    /// The settings `config` holds: with an OIDC issuer and client id, OIDC sign-in asking
    /// for `openid` and the admin scope; otherwise the token sign-in.
    pub fn from_config(config: &Config) -> Self {
        Self::new(&config.console, &config.admin_scope)
    }

    /// The settings of `console`, signing in for `admin_scope` (the scope admin-api itself
    /// requires, scope.rs). The script may call the issuer's origin and the extra origins
    /// that are http(s) origins.
    pub fn new(console: &ConsoleConfig, admin_scope: &str) -> Self {
        let Some(oidc) = &console.oidc else {
            return ConsoleSettings {
                sign_in: SignIn::Token,
                connect_origins: Vec::new(),
            };
        };
        let issuer = oidc.issuer.trim_end_matches('/').to_owned();
        let mut connect_origins: Vec<String> = origin_of(&issuer).into_iter().collect();
        for extra in console.oidc_origins.iter().filter_map(|o| origin_of(o)) {
            if !connect_origins.contains(&extra) {
                connect_origins.push(extra);
            }
        }
        ConsoleSettings {
            sign_in: SignIn::Oidc {
                issuer,
                client_id: oidc.client_id.clone(),
                scope: format!("openid {admin_scope}"),
            },
            connect_origins,
        }
    }

    /// The policy of every console answer.
    fn content_security_policy(&self) -> String {
        let mut connect = String::from("'self'");
        for origin in &self.connect_origins {
            connect.push(' ');
            connect.push_str(origin);
        }
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    }
}

/// `scheme://host[:port]` of an http(s) URL, as a CSP source; anything else: none.
fn origin_of(text: &str) -> Option<String> {
    let url = url::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return None;
    }
    // A CSP source may not contain `;`, `,` or spaces; an origin serialised by `url` has none.
    Some(url.origin().ascii_serialization())
}

struct Console {
    settings: ConsoleSettings,
    policy: HeaderValue,
    shell: String,
}

/// A short fingerprint of the assets, put in their URLs so browsers may cache them for good.
fn assets_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = DefaultHasher::new();
        ASSETS.hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    })
}

/// The shell, naming this build's assets: `{{version}}` in their paths, and `{{preload}}`
/// replaced by a `modulepreload` link for each module but the entry.
fn shell_text() -> String {
    let version = assets_version();
    let preload: Vec<String> = ASSETS
        .iter()
        .filter(|(name, _)| name.ends_with(".js") && *name != "main.js")
        .map(|(name, _)| {
            format!(r#"<link rel="modulepreload" href="{ASSETS_PATH}/{version}/{name}">"#)
        })
        .collect();
    SHELL
        .replace("{{preload}}", &preload.join("\n"))
        .replace("{{version}}", version)
}

/// The console's routes with `settings`.
pub fn router(settings: ConsoleSettings) -> Router {
    let policy = HeaderValue::from_str(&settings.content_security_policy())
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
    let console = Arc::new(Console {
        shell: shell_text(),
        settings,
        policy,
    });
    Router::new()
        .route(CONSOLE_PATH, get(shell))
        .route("/admin/webhooks/", get(shell))
        .route("/admin/webhooks/new", get(shell))
        .route("/admin/webhooks/{id}", get(shell))
        .route("/admin/webhooks/assets/config.json", get(config))
        .route("/admin/webhooks/assets/{version}/{name}", get(asset))
        .route("/admin/webhooks/assets/{other}", get(no_asset))
        .with_state(console)
}

/// The headers of every console answer.
fn secured(
    console: &Console,
    content_type: &'static str,
    cache: &'static str,
) -> [(header::HeaderName, HeaderValue); 6] {
    [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::CONTENT_SECURITY_POLICY, console.policy.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

/// Assets are asked for under `<version>/`; a new build changes their URLs.
const CACHE_ASSET: &str = "public, max-age=31536000, immutable";
/// The shell is small and names the current assets: always checked again.
const CACHE_SHELL: &str = "no-cache";

async fn shell(State(console): State<Arc<Console>>) -> Response {
    (
        secured(&console, "text/html; charset=utf-8", CACHE_SHELL),
        console.shell.clone(),
    )
        .into_response()
}

/// An asset of this build. Another version's is not here: a 404, never this build's text
/// under that version's path (which a browser would then cache for good).
async fn asset(
    State(console): State<Arc<Console>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let found = path.ok().and_then(|Path((version, name))| {
        (version == assets_version())
            .then(|| ASSETS.iter().find(|(known, _)| *known == name))
            .flatten()
    });
    match found {
        Some((name, text)) => {
            (secured(&console, content_type(name), CACHE_ASSET), *text).into_response()
        }
        None => no_asset(State(console)).await,
    }
}

async fn config(State(console): State<Arc<Console>>) -> Response {
    (
        secured(&console, "application/json", CACHE_SHELL),
        Json(&console.settings.sign_in),
    )
        .into_response()
}

async fn no_asset(State(console): State<Arc<Console>>) -> Response {
    (
        StatusCode::NOT_FOUND,
        secured(&console, "text/plain; charset=utf-8", CACHE_SHELL),
        "no such console asset",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use webhooks_shared::config::ConsoleOidc;

    #[test]
    fn without_an_issuer_the_console_signs_in_with_a_token() {
        let settings = ConsoleSettings::new(&ConsoleConfig::default(), "webhooks/admin");
        assert_eq!(settings.sign_in, SignIn::Token);
        assert_eq!(
            settings.content_security_policy(),
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
    }

    #[test]
    fn with_an_issuer_its_origins_may_be_called() {
        let console = ConsoleConfig {
            url: None,
            oidc: Some(ConsoleOidc {
                issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc/".into(),
                client_id: "client-1".into(),
            }),
            oidc_origins: vec![
                "https://comps.auth.eu-west-1.amazoncognito.com/x".into(),
                "not a url".into(),
                "javascript:alert(1)".into(),
            ],
        };
        let settings = ConsoleSettings::new(&console, "webhooks/admin");
        assert_eq!(
            settings.sign_in,
            SignIn::Oidc {
                issuer: "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc".into(),
                client_id: "client-1".into(),
                scope: "openid webhooks/admin".into(),
            }
        );
        assert_eq!(
            settings.connect_origins,
            [
                "https://cognito-idp.eu-west-1.amazonaws.com",
                "https://comps.auth.eu-west-1.amazoncognito.com"
            ]
        );
        assert!(settings
            .content_security_policy()
            .contains("connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com https://comps.auth.eu-west-1.amazoncognito.com;"));
    }

    async fn get(path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
        let app = router(ConsoleSettings::new(
            &ConsoleConfig::default(),
            "webhooks/admin",
        ));
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn every_page_is_the_same_shell_with_no_data_and_a_strict_policy() {
        for path in [
            "/admin/webhooks",
            "/admin/webhooks/",
            "/admin/webhooks/new",
            "/admin/webhooks/wh_01jabc",
        ] {
            let (status, headers, body) = get(path).await;
            assert_eq!(status, 200, "{path}");
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
            let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(policy.contains("script-src 'self';"), "{policy}");
            assert!(!policy.contains("unsafe"), "{policy}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            let version = assets_version();
            assert!(body.contains(&format!(
                r#"<script type="module" src="/admin/webhooks/assets/{version}/main.js"></script>"#
            )));
            assert!(body.contains(&format!(
                r#"<link rel="stylesheet" href="/admin/webhooks/assets/{version}/console.css">"#
            )));
            for (name, _) in ASSETS
                .iter()
                .filter(|(n, _)| n.ends_with(".js") && *n != "main.js")
            {
                assert!(
                    body.contains(&format!(
                        r#"<link rel="modulepreload" href="/admin/webhooks/assets/{version}/{name}">"#
                    )),
                    "{name} is preloaded"
                );
            }
            assert!(!body.contains("{{"));
            // No inline script or style, nothing fetched from elsewhere.
            assert!(!body.contains("<script>") && !body.contains("style="));
            assert!(!body.contains("//fonts.") && !body.contains("cdn"));
        }
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_type_and_cached_for_good() {
        let version = assets_version();
        for (name, text) in ASSETS {
            let (status, headers, body) =
                get(&format!("/admin/webhooks/assets/{version}/{name}")).await;
            assert_eq!(status, 200, "{name}");
            let expected_type = if name.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/javascript; charset=utf-8"
            };
            assert_eq!(headers[header::CONTENT_TYPE], expected_type, "{name}");
            assert_eq!(headers[header::CACHE_CONTROL], CACHE_ASSET, "{name}");
            let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(policy.contains("script-src 'self';"), "{policy}");
            assert!(!policy.contains("unsafe"), "{policy}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
            assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
            assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
            assert_eq!(body, text, "{name}");
        }
        let (_, headers, body) = get("/admin/webhooks/assets/config.json").await;
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(body, r#"{"sign_in":"token"}"#);
    }

    #[tokio::test]
    async fn an_unknown_asset_or_another_version_is_not_found() {
        let version = assets_version();
        for path in [
            "/admin/webhooks/assets/nothing.js".to_owned(),
            // The paths before modules: no longer served.
            "/admin/webhooks/assets/console.js".to_owned(),
            "/admin/webhooks/assets/console.css".to_owned(),
            format!("/admin/webhooks/assets/{version}/nothing.js"),
            format!("/admin/webhooks/assets/{version}/index.html"),
            // Another build's version: its text is not this build's.
            "/admin/webhooks/assets/0123456789abcdef/main.js".to_owned(),
            format!("/admin/webhooks/assets/{version}/%FF.js"),
        ] {
            let (status, headers, body) = get(&path).await;
            assert_eq!(status, 404, "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], CACHE_SHELL, "{path}");
            assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY));
            assert_eq!(body, "no such console asset");
        }
    }

    /// The script's modules: the entry first, each one's relative imports.
    fn modules() -> impl Iterator<Item = (&'static str, &'static str)> {
        ASSETS.into_iter().filter(|(name, _)| name.ends_with(".js"))
    }

    #[test]
    fn every_import_is_a_served_module_and_every_module_is_imported() {
        let mut imported = vec!["main.js"];
        for (name, text) in modules() {
            for import in text.split(" from \"").skip(1) {
                let target = import.split('"').next().unwrap_or_default();
                let file = target
                    .strip_prefix("./")
                    .unwrap_or_else(|| panic!("{name} imports {target}: only modules beside it"));
                assert!(
                    modules().any(|(known, _)| known == file),
                    "{name} imports {target}, which is not served"
                );
                imported.push(file);
            }
        }
        for (name, _) in modules() {
            assert!(
                imported.contains(&name),
                "{name} is served but never imported"
            );
        }
    }

    #[test]
    fn no_module_writes_text_as_markup() {
        for (name, text) in modules() {
            for html_api in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(
                    !text.contains(html_api),
                    "{name}: receiver text is written as text only: {html_api}"
                );
            }
        }
    }
}
