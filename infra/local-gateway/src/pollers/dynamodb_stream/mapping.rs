//! What a stream event source mapping is, and the check that the gateway can emulate it
//! as Lambda runs it: only what is emulated faithfully passes (an `eventName` filter,
//! `TRIM_HORIZON` or `LATEST`, `MaximumRetryAttempts: -1`, a `BatchSize` Lambda accepts),
//! so that `template.yaml` cannot silently diverge from what runs locally.

use std::collections::HashSet;

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde::Deserialize;
use thiserror::Error;

use crate::GatewayError;

/// A DynamoDB stream event source mapping, as `infra/local/stack.py up` describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct StreamEventSourceMapping {
    pub function: String,
    pub binary: String,
    pub stream_arn: String,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub maximum_batching_window_seconds: u64,
    /// `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// -1 (Lambda's default): a record is retried until its function takes it.
    #[serde(default = "retry_forever")]
    pub maximum_retry_attempts: i64,
    #[serde(default)]
    pub report_batch_item_failures: bool,
    /// `FilterCriteria.Filters[].Pattern`, as written in the template.
    #[serde(default)]
    pub filter_patterns: Vec<String>,
    #[serde(default = "crate::pollers::enabled")]
    pub enabled: bool,
}

fn default_batch_size() -> usize {
    100
}

fn retry_forever() -> i64 {
    -1
}

/// Where a shard is first read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

impl StartingPosition {
    pub(super) fn iterator_type(self) -> ShardIteratorType {
        match self {
            StartingPosition::TrimHorizon => ShardIteratorType::TrimHorizon,
            StartingPosition::Latest => ShardIteratorType::Latest,
        }
    }
}

/// The records a mapping's `FilterCriteria` lets through. Only patterns of the shape
/// `{"eventName": [...]}` are emulated (a record passes if its eventName is listed; several
/// patterns are alternatives); no pattern lets every record through, as on Lambda.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventNameFilter(Option<HashSet<String>>);

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "filter pattern {0} cannot be emulated locally (only {{\"eventName\": [\"INSERT\", ...]}} is)"
)]
pub struct UnsupportedPattern(pub String);

impl EventNameFilter {
    pub fn parse(patterns: &[String]) -> Result<Self, UnsupportedPattern> {
        if patterns.is_empty() {
            return Ok(EventNameFilter(None));
        }
        let mut names = HashSet::new();
        for pattern in patterns {
            let unsupported = || UnsupportedPattern(pattern.clone());
            let parsed: serde_json::Value =
                serde_json::from_str(pattern).map_err(|_| unsupported())?;
            let Some(fields) = parsed.as_object() else {
                return Err(unsupported());
            };
            let Some(values) = fields.get("eventName").and_then(|v| v.as_array()) else {
                return Err(unsupported());
            };
            if fields.len() != 1 || values.is_empty() {
                return Err(unsupported());
            }
            for value in values {
                names.insert(value.as_str().ok_or_else(unsupported)?.to_owned());
            }
        }
        Ok(EventNameFilter(Some(names)))
    }

    pub fn passes(&self, event_name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.contains(event_name))
    }
}

/// A mapping checked to be one the gateway emulates faithfully.
#[derive(Debug, Clone)]
pub struct StreamSource {
    pub mapping: StreamEventSourceMapping,
    pub(super) filter: EventNameFilter,
    pub(super) starting_position: StartingPosition,
}

impl StreamSource {
    /// Refuses what the gateway would otherwise emulate differently from Lambda, so the
    /// template cannot silently diverge from what runs locally.
    pub fn check(mapping: &StreamEventSourceMapping) -> Result<Self, GatewayError> {
        let refuse = |what: String| {
            GatewayError::Stack(format!(
                "{} (stream {}): {what}",
                mapping.function, mapping.stream_arn
            ))
        };
        let filter =
            EventNameFilter::parse(&mapping.filter_patterns).map_err(|e| refuse(e.to_string()))?;
        let starting_position = match mapping.starting_position.as_str() {
            "TRIM_HORIZON" => StartingPosition::TrimHorizon,
            "LATEST" => StartingPosition::Latest,
            other => {
                return Err(refuse(format!(
                    "starting position {other} is not one of TRIM_HORIZON, LATEST"
                )))
            }
        };
        if mapping.maximum_retry_attempts != -1 {
            return Err(refuse(format!(
                "MaximumRetryAttempts {} cannot be emulated locally (only -1 is)",
                mapping.maximum_retry_attempts
            )));
        }
        if !(1..=10_000).contains(&mapping.batch_size) {
            return Err(refuse(format!(
                "BatchSize {} is not between 1 and 10000",
                mapping.batch_size
            )));
        }
        Ok(StreamSource {
            mapping: mapping.clone(),
            filter,
            starting_position,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(patterns: &[&str]) -> Vec<String> {
        patterns.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn event_name_patterns_filter_records() {
        let inserts = EventNameFilter::parse(&patterns(&[r#"{"eventName": ["INSERT"]}"#])).unwrap();
        assert!(inserts.passes("INSERT"));
        assert!(!inserts.passes("MODIFY"));
        assert!(!inserts.passes("REMOVE"));

        // Several values, several patterns: alternatives.
        let some = EventNameFilter::parse(&patterns(&[
            r#"{"eventName": ["INSERT", "MODIFY"]}"#,
            r#" { "eventName" : [ "REMOVE" ] } "#,
        ]))
        .unwrap();
        assert!(["INSERT", "MODIFY", "REMOVE"]
            .iter()
            .all(|n| some.passes(n)));
        assert!(!some.passes("insert"));

        // No filter: every record.
        let all = EventNameFilter::parse(&[]).unwrap();
        assert!(all.passes("REMOVE") && all.passes(""));
    }

    #[test]
    fn other_patterns_are_refused_by_name() {
        for pattern in [
            r#"{"eventName": "INSERT"}"#,
            r#"{"eventName": []}"#,
            r#"{"eventName": [{"prefix": "IN"}]}"#,
            r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["x"]}}}}"#,
            r#"{"dynamodb": {"Keys": {"id": {"S": ["a"]}}}}"#,
            r#"["INSERT"]"#,
            "not json",
        ] {
            let refused =
                EventNameFilter::parse(&patterns(&[r#"{"eventName": ["INSERT"]}"#, pattern]));
            assert_eq!(
                refused,
                Err(UnsupportedPattern(pattern.to_owned())),
                "{pattern}"
            );
        }
    }

    fn mapping() -> StreamEventSourceMapping {
        serde_json::from_value(serde_json::json!({
            "function": "FanoutFunction",
            "binary": "fanout",
            "stream_arn": "arn:aws:dynamodb:us-east-1:123456789012:table/events/stream/2025",
            "starting_position": "TRIM_HORIZON",
            "filter_patterns": [r#"{"eventName": ["INSERT"]}"#],
        }))
        .unwrap()
    }

    #[test]
    fn mappings_are_checked_before_anything_runs() {
        let m = mapping();
        assert_eq!(m.batch_size, 100);
        assert_eq!(m.maximum_batching_window_seconds, 0);
        assert_eq!(m.maximum_retry_attempts, -1);
        assert!(m.enabled && !m.report_batch_item_failures);
        let checked = StreamSource::check(&m).unwrap();
        assert_eq!(checked.starting_position, StartingPosition::TrimHorizon);

        let refused = |m: StreamEventSourceMapping| match StreamSource::check(&m) {
            Err(GatewayError::Stack(message)) => message,
            other => panic!("not refused: {other:?}"),
        };
        let mut bad = mapping();
        bad.filter_patterns = vec![r#"{"eventName": ["INSERT"], "x": 1}"#.into()];
        let message = refused(bad);
        assert!(message.contains("FanoutFunction"), "{message}");
        assert!(
            message.contains(r#"{"eventName": ["INSERT"], "x": 1}"#),
            "{message}"
        );

        let mut bad = mapping();
        bad.starting_position = "AT_TIMESTAMP".into();
        assert!(refused(bad).contains("AT_TIMESTAMP"));
        let mut bad = mapping();
        bad.maximum_retry_attempts = 3;
        assert!(refused(bad).contains("MaximumRetryAttempts 3"));
        let mut bad = mapping();
        bad.batch_size = 0;
        assert!(refused(bad).contains("BatchSize 0"));
    }
}
