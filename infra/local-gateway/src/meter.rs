//! What Lambda and API Gateway would bill for the work the gateway did: HTTP API requests,
//! and per function its invocations and the time its handler ran (the GB-seconds of a
//! function follow from its memory size). `make bench` reads it beside the emulator's meter.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde::Serialize;

/// One function's invocations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Invocations {
    pub count: u64,
    /// The handlers' wall time, summed.
    pub busy: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Reading {
    pub api_requests: u64,
    /// Per function (its binary's name).
    pub functions: BTreeMap<String, Invocations>,
}

/// Shared by the HTTP routes and the pollers; clones share the totals.
#[derive(Debug, Clone, Default)]
pub struct Meter(Arc<Mutex<Reading>>);

impl Meter {
    pub fn invoked(&self, function: &str, took: Duration) {
        if let Ok(mut reading) = self.0.lock() {
            let entry = reading.functions.entry(function.to_owned()).or_default();
            entry.count += 1;
            entry.busy += took;
        }
    }

    fn api_request(&self) {
        if let Ok(mut reading) = self.0.lock() {
            reading.api_requests += 1;
        }
    }

    /// The totals since the last take, cleared.
    pub fn take(&self) -> Reading {
        self.0
            .lock()
            .map(|mut reading| std::mem::take(&mut *reading))
            .unwrap_or_default()
    }
}

/// Counts an HTTP API request and an invocation of the function behind it.
pub async fn count_invocation(
    State((meter, function)): State<(Meter, &'static str)>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    meter.api_request();
    let response = next.run(request).await;
    meter.invoked(function, started.elapsed());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_invocations_per_function_and_clears_on_take() {
        let meter = Meter::default();
        meter.invoked("deliver", Duration::from_millis(5));
        meter.invoked("deliver", Duration::from_millis(7));
        meter.api_request();
        let reading = meter.take();
        assert_eq!(reading.api_requests, 1);
        assert_eq!(
            reading.functions["deliver"],
            Invocations {
                count: 2,
                busy: Duration::from_millis(12)
            }
        );
        assert_eq!(meter.take(), Reading::default());
    }
}
