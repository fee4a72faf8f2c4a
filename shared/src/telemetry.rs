//! Logging: JSON lines through `tracing`, level from `RUST_LOG` (default `info`).

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub fn init() {
    // A second init (e.g. in tests) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().json())
        .with(log_filter(std::env::var("RUST_LOG").ok().as_deref()))
        .try_init();
}

/// `RUST_LOG` as levels per target (`info`, `warn,deliver=debug`); `info` when unset or
/// unreadable. Targets, not `EnvFilter`: no regex engine in every binary for a log level.
pub fn log_filter(rust_log: Option<&str>) -> Targets {
    rust_log
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target_and_info_is_the_default() {
        let filter = log_filter(Some("warn,deliver=debug"));
        assert!(filter.would_enable("deliver", &Level::DEBUG));
        assert!(!filter.would_enable("alerter", &Level::INFO));
        assert!(filter.would_enable("alerter", &Level::WARN));

        for unset in [None, Some("deliver=nonsense=x")] {
            let filter = log_filter(unset);
            assert!(filter.would_enable("deliver", &Level::INFO), "{unset:?}");
            assert!(!filter.would_enable("deliver", &Level::DEBUG), "{unset:?}");
        }
    }
}
