//! Configuration, read once per container from the environment that `template.yaml` sets
//! (plus the local-only switches of SPEC §7).

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::domain::retry::RetrySchedule;

/// Attempts are kept this long by default before DynamoDB's TTL reaps them.
pub const DEFAULT_RETENTION_DAYS: u32 = 30;

/// The scope admin calls require when `WEBHOOKS_ADMIN_SCOPE` is unset or blank.
pub const DEFAULT_ADMIN_SCOPE: &str = "webhooks/admin";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(
        "{name} is a local-only switch and is refused inside Lambda \
         (AWS_LAMBDA_FUNCTION_NAME is set); remove it from the function's environment"
    )]
    LocalOnlySwitch { name: &'static str },
}

/// Switches that loosen delivery for local runs and tests (SPEC §7). Inside Lambda they would
/// let deliveries reach private addresses, trust an extra CA or shorten the retry schedule, so
/// they are refused there. Checked in this order; the first one set is reported.
const LOCAL_ONLY_SWITCHES: [&str; 3] = [
    "WEBHOOKS_ALLOW_PRIVATE_TARGETS",
    "WEBHOOKS_EXTRA_CA_FILE",
    "WEBHOOKS_RETRY_DELAYS",
];

/// Names of the AWS resources the functions use.
#[derive(Debug, Clone)]
pub struct Resources {
    pub webhooks_table: String,
    pub subscriptions_table: String,
    pub events_table: String,
    pub deliveries_table: String,
    pub attempts_table: String,
    pub delivery_queue_url: String,
    pub secrets_key_id: String,
    pub alerts_table: String,
    pub alert_queue_url: String,
}

/// Who gets the alert emails, and how often at most (SPEC §5: a digest per webhook).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertSettings {
    pub recipients: Vec<String>,
    pub from: Option<String>,
    /// At most one email per webhook per window.
    pub window: Duration,
    /// How long the first failure of a window waits for others before its email goes out.
    pub gather: Duration,
}

/// The admin console: where admins open it, and how it signs them in. Plain values; admin-api
/// makes its sign-in and its Content-Security-Policy of them, alerter its links.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// `WEBHOOKS_CONSOLE_URL`: the console's base URL, which alert digests link into. Unset,
    /// empty or not an http(s) URL: none (a digest names the page's path only).
    pub url: Option<String>,
    /// `WEBHOOKS_CONSOLE_OIDC_ISSUER` and `WEBHOOKS_CONSOLE_OIDC_CLIENT_ID`, both set: the
    /// console signs in with OpenID Connect; otherwise with a token.
    pub oidc: Option<ConsoleOidc>,
    /// `WEBHOOKS_CONSOLE_OIDC_ORIGINS` (comma-separated): origins besides the issuer's the
    /// console may call while signing in, as given (admin-api keeps the http(s) origins).
    pub oidc_origins: Vec<String>,
}

/// The identity provider the console signs admins in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleOidc {
    pub issuer: String,
    pub client_id: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub resources: Resources,
    pub retention: Duration,
    pub retry_schedule: RetrySchedule,
    pub alerts: AlertSettings,
    /// Local-only: let deliveries reach loopback and private addresses.
    pub allow_private_targets: bool,
    /// Local-only: one more root CA (PEM file) trusted for deliveries.
    pub extra_ca_file: Option<PathBuf>,
    /// `WEBHOOKS_ADMIN_SCOPE`: the OAuth scope admin calls require. Never empty.
    pub admin_scope: String,
    pub console: ConsoleConfig,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Config::from_env`] for the functions' `main`: a failure is also logged once, so the
    /// reason (e.g. which switch was refused) is in the function's log stream as a structured
    /// error line and not only in the runtime's exit message.
    pub fn from_env_or_log_error() -> Result<Self, ConfigError> {
        Self::from_env().inspect_err(|err| {
            tracing::error!(error = %err, "configuration is invalid; the function cannot start");
        })
    }

    /// Reads the configuration through `lookup`, so the local gateway and tests use the very
    /// same parsing as the Lambda environment. The first bad setting is the error, in this
    /// order: a local-only switch inside Lambda, a missing resource, then the others.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        refuse_local_only_switches_in_lambda(&env)?;
        // Fields in the order their errors take precedence.
        Ok(Config {
            resources: Resources::read(&env)?,
            alerts: AlertSettings::read(&env)?,
            retention: retention(&env)?,
            retry_schedule: retry_schedule(&env)?,
            allow_private_targets: allow_private_targets(&env)?,
            extra_ca_file: env.non_empty("WEBHOOKS_EXTRA_CA_FILE").map(PathBuf::from),
            admin_scope: env
                .trimmed("WEBHOOKS_ADMIN_SCOPE")
                .unwrap_or_else(|| DEFAULT_ADMIN_SCOPE.to_owned()),
            console: ConsoleConfig::read(&env),
        })
    }
}

/// The environment as [`Config::from_lookup`] reads it: unset and empty are one, and a value
/// of one kind (a number of seconds, a list) is read one way. Whether a value of blanks is
/// unset too stays as each setting had it (a blank window is the default, blank days an
/// error): `non_empty` or `non_blank`.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The value, unless unset or empty.
    fn non_empty(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.is_empty())
    }

    /// The value as given, unless unset or only blanks.
    fn non_blank(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value trimmed, unless unset or only blanks.
    fn trimmed(&self, name: &str) -> Option<String> {
        self.non_blank(name).map(|v| v.trim().to_owned())
    }

    /// The value as given; unset or blank is [`ConfigError::Missing`].
    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.non_blank(name).ok_or(ConfigError::Missing(name))
    }

    /// A comma-separated list: its items trimmed, the empty ones left out.
    fn list(&self, name: &str) -> Vec<String> {
        self.non_blank(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// A whole number of seconds within `range`; `default` when unset or blank.
    fn seconds(
        &self,
        name: &'static str,
        default: u64,
        range: RangeInclusive<u64>,
    ) -> Result<Duration, ConfigError> {
        let Some(v) = self.non_blank(name) else {
            return Ok(Duration::from_secs(default));
        };
        v.trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .map(Duration::from_secs)
            .ok_or_else(|| ConfigError::Invalid {
                name,
                reason: format!(
                    "{v:?} is not a number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ),
            })
    }
}

/// Inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) a local-only switch with any value, even
/// turned off, is refused: it has no place in a function's environment.
fn refuse_local_only_switches_in_lambda(env: &Env) -> Result<(), ConfigError> {
    if env.non_empty("AWS_LAMBDA_FUNCTION_NAME").is_none() {
        return Ok(());
    }
    match LOCAL_ONLY_SWITCHES
        .into_iter()
        .find(|name| env.non_empty(name).is_some())
    {
        Some(name) => Err(ConfigError::LocalOnlySwitch { name }),
        None => Ok(()),
    }
}

impl Resources {
    /// Every resource is required: a function without one of them cannot work.
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Resources {
            webhooks_table: env.required("WEBHOOKS_TABLE")?,
            subscriptions_table: env.required("SUBSCRIPTIONS_TABLE")?,
            events_table: env.required("EVENTS_TABLE")?,
            deliveries_table: env.required("DELIVERIES_TABLE")?,
            attempts_table: env.required("ATTEMPTS_TABLE")?,
            delivery_queue_url: env.required("DELIVERY_QUEUE_URL")?,
            secrets_key_id: env.required("SECRETS_KEY_ID")?,
            alerts_table: env.required("ALERTS_TABLE")?,
            alert_queue_url: env.required("ALERT_QUEUE_URL")?,
        })
    }
}

impl AlertSettings {
    /// No recipients is allowed (the alerter logs each digest it cannot send); the window is
    /// at least a second and at most a day, the gathering delay at most one default window.
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(AlertSettings {
            recipients: env.list("WEBHOOKS_ALERT_EMAILS"),
            from: env.non_blank("WEBHOOKS_ALERT_FROM"),
            window: env.seconds("WEBHOOKS_ALERT_WINDOW_SECONDS", 900, 1..=86_400)?,
            gather: env.seconds("WEBHOOKS_ALERT_GATHER_SECONDS", 10, 0..=900)?,
        })
    }
}

/// How long attempts are kept: `ATTEMPT_RETENTION_DAYS`, 1 to 3650 days (the template allows
/// up to 365), [`DEFAULT_RETENTION_DAYS`] when unset.
fn retention(env: &Env) -> Result<Duration, ConfigError> {
    let days = match env.non_empty("ATTEMPT_RETENTION_DAYS") {
        None => DEFAULT_RETENTION_DAYS,
        Some(v) => v
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| ConfigError::Invalid {
                name: "ATTEMPT_RETENTION_DAYS",
                reason: format!("{v:?} is not a whole number of days between 1 and 3650"),
            })?,
    };
    Ok(Duration::from_secs(u64::from(days) * 86_400))
}

/// The waits between attempts: `WEBHOOKS_RETRY_DELAYS` (local-only) or the schedule of SPEC §5.
fn retry_schedule(env: &Env) -> Result<RetrySchedule, ConfigError> {
    match env.non_empty("WEBHOOKS_RETRY_DELAYS") {
        None => Ok(RetrySchedule::default()),
        Some(v) => RetrySchedule::parse(&v).map_err(|reason| ConfigError::Invalid {
            name: "WEBHOOKS_RETRY_DELAYS",
            reason,
        }),
    }
}

/// `WEBHOOKS_ALLOW_PRIVATE_TARGETS` (local-only): 1 or true, 0 or false; any other value is
/// refused rather than guessed, since it loosens the SSRF guard.
fn allow_private_targets(env: &Env) -> Result<bool, ConfigError> {
    match env.non_empty("WEBHOOKS_ALLOW_PRIVATE_TARGETS").as_deref() {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            name: "WEBHOOKS_ALLOW_PRIVATE_TARGETS",
            reason: format!("{other:?} is not 1 or 0"),
        }),
    }
}

impl ConsoleConfig {
    /// Never an error: without an issuer and a client id the console signs in with a token,
    /// and without a (http or https) URL the digests name the console's path only.
    fn read(env: &Env) -> Self {
        let oidc = match (
            env.trimmed("WEBHOOKS_CONSOLE_OIDC_ISSUER"),
            env.trimmed("WEBHOOKS_CONSOLE_OIDC_CLIENT_ID"),
        ) {
            (Some(issuer), Some(client_id)) => Some(ConsoleOidc { issuer, client_id }),
            _ => None,
        };
        ConsoleConfig {
            url: env
                .trimmed("WEBHOOKS_CONSOLE_URL")
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
            oidc,
            oidc_origins: env.list("WEBHOOKS_CONSOLE_OIDC_ORIGINS"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn base() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("WEBHOOKS_TABLE", "w"),
            ("SUBSCRIPTIONS_TABLE", "s"),
            ("EVENTS_TABLE", "e"),
            ("DELIVERIES_TABLE", "d"),
            ("ATTEMPTS_TABLE", "a"),
            ("DELIVERY_QUEUE_URL", "http://q"),
            ("SECRETS_KEY_ID", "k"),
            ("ALERTS_TABLE", "al"),
            ("ALERT_QUEUE_URL", "http://aq"),
        ])
    }

    /// The base environment plus `vars`.
    fn with_vars(vars: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        base().into_iter().chain(vars.iter().copied()).collect()
    }

    fn load(vars: &HashMap<&'static str, &'static str>) -> Result<Config, ConfigError> {
        Config::from_lookup(|k| vars.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn defaults_apply() {
        let cfg = load(&base()).unwrap();
        assert_eq!(cfg.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(cfg.retry_schedule, RetrySchedule::default());
        assert!(!cfg.allow_private_targets);
        assert!(cfg.extra_ca_file.is_none());
        assert_eq!(cfg.alerts.window, Duration::from_secs(900));
        assert!(cfg.alerts.recipients.is_empty());
    }

    #[test]
    fn alert_settings_are_read() {
        let mut vars = base();
        vars.insert("WEBHOOKS_ALERT_EMAILS", "a@x.com, b@x.com,");
        vars.insert("WEBHOOKS_ALERT_FROM", "alerts@x.com");
        vars.insert("WEBHOOKS_ALERT_WINDOW_SECONDS", "60");
        let cfg = load(&vars).unwrap();
        assert_eq!(cfg.alerts.recipients, ["a@x.com", "b@x.com"]);
        assert_eq!(cfg.alerts.from.as_deref(), Some("alerts@x.com"));
        assert_eq!(cfg.alerts.window, Duration::from_secs(60));
        vars.insert("WEBHOOKS_ALERT_WINDOW_SECONDS", "0");
        assert!(load(&vars).is_err());
    }

    /// What `read` makes of `value` as the only setting there is.
    fn read_one<T>(value: Option<&str>, read: impl Fn(&Env) -> T) -> T {
        let lookup = |_: &str| value.map(str::to_owned);
        read(&Env(&lookup))
    }

    #[test]
    fn seconds_are_whole_within_their_range_and_default_when_unset_or_blank() {
        let seconds = |value| read_one(value, |env| env.seconds("S", 10, 0..=900));
        for (value, expected) in [
            (None, 10),
            (Some(" "), 10),
            (Some(" 0 "), 0),
            (Some("900"), 900),
        ] {
            assert_eq!(
                seconds(value).unwrap(),
                Duration::from_secs(expected),
                "{value:?}"
            );
        }
        for bad in ["901", "-1", "1.5", "ten"] {
            let message = seconds(Some(bad)).unwrap_err().to_string();
            assert!(message.contains("S is invalid"), "{message}");
            assert!(message.contains("from 0 to 900"), "{message}");
        }
    }

    #[test]
    fn a_list_drops_blank_items() {
        let list = |value| read_one(value, |env| env.list("L"));
        assert!(list(None).is_empty());
        assert!(list(Some(" , ,")).is_empty());
        assert_eq!(list(Some(" a@x.com,, b@x.com ")), ["a@x.com", "b@x.com"]);
    }

    #[test]
    fn the_private_targets_switch_is_one_of_four_words() {
        let switch = |value| read_one(value, allow_private_targets);
        for (value, expected) in [
            (None, false),
            (Some(""), false),
            (Some("0"), false),
            (Some("false"), false),
            (Some("1"), true),
            (Some("true"), true),
        ] {
            assert_eq!(switch(value).unwrap(), expected, "{value:?}");
        }
        for guess in ["yes", "TRUE", " 1"] {
            assert!(switch(Some(guess)).is_err(), "{guess:?}");
        }
    }

    #[test]
    fn a_missing_resource_is_reported_before_an_invalid_setting() {
        let mut vars = with_vars(&[("WEBHOOKS_ALERT_WINDOW_SECONDS", "0")]);
        vars.remove("ALERTS_TABLE");
        assert!(matches!(
            load(&vars),
            Err(ConfigError::Missing("ALERTS_TABLE"))
        ));
    }

    #[test]
    fn the_admin_scope_defaults_when_unset_or_blank() {
        assert_eq!(load(&base()).unwrap().admin_scope, DEFAULT_ADMIN_SCOPE);
        let blank = load(&with_vars(&[("WEBHOOKS_ADMIN_SCOPE", "  ")])).unwrap();
        assert_eq!(blank.admin_scope, DEFAULT_ADMIN_SCOPE);
        let own = load(&with_vars(&[("WEBHOOKS_ADMIN_SCOPE", " api/admin ")])).unwrap();
        assert_eq!(own.admin_scope, "api/admin");
    }

    #[test]
    fn the_console_signs_in_with_oidc_only_with_an_issuer_and_a_client_id() {
        let neither = load(&base()).unwrap();
        assert_eq!(neither.console, ConsoleConfig::default());
        let client_only = load(&with_vars(&[("WEBHOOKS_CONSOLE_OIDC_CLIENT_ID", "abc")])).unwrap();
        assert_eq!(client_only.console.oidc, None);
        let both = load(&with_vars(&[
            (
                "WEBHOOKS_CONSOLE_OIDC_ISSUER",
                " https://issuer.example.com/ ",
            ),
            ("WEBHOOKS_CONSOLE_OIDC_CLIENT_ID", "client-1"),
            (
                "WEBHOOKS_CONSOLE_OIDC_ORIGINS",
                "https://a.example.com, ,https://b.example.com",
            ),
        ]))
        .unwrap();
        assert_eq!(
            both.console.oidc,
            Some(ConsoleOidc {
                issuer: "https://issuer.example.com/".into(),
                client_id: "client-1".into(),
            })
        );
        assert_eq!(
            both.console.oidc_origins,
            ["https://a.example.com", "https://b.example.com"]
        );
    }

    #[test]
    fn an_empty_console_url_is_unset() {
        for (value, expected) in [
            ("", None),
            ("  ", None),
            ("console.example.com", None),
            (
                "https://console.example.com",
                Some("https://console.example.com"),
            ),
            ("http://127.0.0.1:3000", Some("http://127.0.0.1:3000")),
        ] {
            let cfg = load(&with_vars(&[("WEBHOOKS_CONSOLE_URL", value)])).unwrap();
            assert_eq!(cfg.console.url.as_deref(), expected, "{value:?}");
        }
    }

    #[test]
    fn switches_and_delays_are_read() {
        let cfg = load(&with_vars(&[
            ("ATTEMPT_RETENTION_DAYS", "7"),
            ("WEBHOOKS_RETRY_DELAYS", "1,2,3"),
            ("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1"),
        ]))
        .unwrap();
        assert_eq!(cfg.retention, Duration::from_secs(7 * 86_400));
        assert_eq!(cfg.retry_schedule.max_attempts(), 4);
        assert!(cfg.allow_private_targets);
    }

    #[test]
    fn missing_and_invalid_values_are_named() {
        let mut vars = base();
        vars.remove("EVENTS_TABLE");
        assert!(load(&vars)
            .unwrap_err()
            .to_string()
            .contains("EVENTS_TABLE"));
        let mut vars = base();
        vars.insert("WEBHOOKS_RETRY_DELAYS", "1,x");
        assert!(load(&vars)
            .unwrap_err()
            .to_string()
            .contains("WEBHOOKS_RETRY_DELAYS"));
    }

    fn local_switch_values() -> [(&'static str, &'static str); 3] {
        [
            ("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1"),
            ("WEBHOOKS_EXTRA_CA_FILE", "/tmp/ca.pem"),
            ("WEBHOOKS_RETRY_DELAYS", "1,2,3"),
        ]
    }

    #[test]
    fn each_local_only_switch_is_refused_inside_lambda() {
        for (name, value) in local_switch_values() {
            let mut vars = base();
            vars.insert("AWS_LAMBDA_FUNCTION_NAME", "deliver");
            vars.insert(name, value);
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(err, ConfigError::LocalOnlySwitch { name: refused } if refused == name),
                "{name}: {err:?}"
            );
            let message = err.to_string();
            assert!(message.starts_with(name), "{message}");
            assert!(message.contains("local-only"), "{message}");
            assert!(message.contains("Lambda"), "{message}");
        }
    }

    /// The switch `from_lookup` refuses inside Lambda with `vars` set, if any.
    fn refused_in_lambda(vars: &[(&'static str, &'static str)]) -> Option<&'static str> {
        let mut all = base();
        all.insert("AWS_LAMBDA_FUNCTION_NAME", "deliver");
        all.extend(vars.iter().copied());
        match load(&all) {
            Err(ConfigError::LocalOnlySwitch { name }) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn a_switch_turned_off_is_still_refused_inside_lambda() {
        // Any non-empty value is refused: the switch has no place in a function's environment,
        // even turned off.
        assert_eq!(
            refused_in_lambda(&[("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "0")]),
            Some("WEBHOOKS_ALLOW_PRIVATE_TARGETS")
        );
    }

    #[test]
    fn the_first_local_only_switch_in_order_is_reported() {
        assert_eq!(
            refused_in_lambda(&[
                ("WEBHOOKS_RETRY_DELAYS", "1,2,3"),
                ("WEBHOOKS_EXTRA_CA_FILE", "/tmp/ca.pem"),
            ]),
            Some("WEBHOOKS_EXTRA_CA_FILE")
        );
    }

    #[test]
    fn local_only_switches_are_accepted_outside_lambda() {
        let mut vars = base();
        vars.extend(local_switch_values());
        vars.insert("AWS_LAMBDA_FUNCTION_NAME", "");
        let cfg = load(&vars).unwrap();
        assert!(cfg.allow_private_targets);
        assert_eq!(cfg.extra_ca_file, Some(PathBuf::from("/tmp/ca.pem")));
        assert_eq!(cfg.retry_schedule.max_attempts(), 4);
        vars.remove("AWS_LAMBDA_FUNCTION_NAME");
        assert!(load(&vars).is_ok());
    }

    #[test]
    fn config_loads_inside_lambda_without_local_only_switches() {
        let vars = with_vars(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "deliver"),
            ("WEBHOOKS_EXTRA_CA_FILE", ""),
        ]);
        let cfg = load(&vars).unwrap();
        assert!(!cfg.allow_private_targets);
        assert!(cfg.extra_ca_file.is_none());
        assert_eq!(cfg.retry_schedule, RetrySchedule::default());
    }
}
