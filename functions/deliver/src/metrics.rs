//! CloudWatch metrics through the embedded metric format: one JSON line on stdout per
//! measurement, which Lambda's log pipeline turns into metrics (no API call on the hot path).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "CompsWebhooks";

#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub value: f64,
    pub unit: &'static str,
}

impl Metric {
    pub fn count(name: &'static str) -> Self {
        Metric {
            name,
            value: 1.0,
            unit: "Count",
        }
    }

    pub fn millis(name: &'static str, value: u64) -> Self {
        Metric {
            name,
            value: value as f64,
            unit: "Milliseconds",
        }
    }
}

/// The EMF document for `metrics` under `dimensions` (none: one metric over everything).
pub fn document(dimensions: &[(&str, &str)], metrics: &[Metric], at: SystemTime) -> Value {
    let timestamp = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|m| json!({"Name": m.name, "Unit": m.unit}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({"Timestamp": timestamp, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [names], "Metrics": definitions}]}),
    );
    for (k, v) in dimensions {
        doc.insert((*k).into(), json!(v));
    }
    for m in metrics {
        doc.insert(m.name.into(), json!(m.value));
    }
    Value::Object(doc)
}

/// Writes the metrics as one EMF line — in Lambda only, where the log pipeline reads them;
/// elsewhere (the local gateway, tests) they would only be noise on stdout.
pub fn emit(dimensions: &[(&str, &str)], metrics: &[Metric]) {
    static IN_LAMBDA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*IN_LAMBDA.get_or_init(|| std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()) {
        return;
    }
    let line = document(dimensions, metrics, SystemTime::now()).to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_declare_what_they_carry() {
        let doc = document(
            &[("Outcome", "succeeded")],
            &[
                Metric::count("Attempts"),
                Metric::millis("ReceiverDuration", 42),
            ],
            UNIX_EPOCH + std::time::Duration::from_millis(1234),
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1234);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "CompsWebhooks"
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Outcome"]])
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "ReceiverDuration", "Unit": "Milliseconds"})
        );
        assert_eq!(doc["Outcome"], "succeeded");
        assert_eq!(doc["Attempts"], 1.0);
        assert_eq!(doc["ReceiverDuration"], 42.0);
    }
}
