//! What a delivery costs on AWS, from what the emulator and the gateway metered (see
//! `infra/local/metering.py` and `local_gateway::meter`): usage per delivery, priced at list
//! prices. Compute (GB-seconds) is measured here against the emulator, far slower than
//! DynamoDB and SQS, so it is shown beside the price of the requests, not inside it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// List prices, us-east-1 (arm64 Lambda, on-demand DynamoDB), in dollars.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Prices {
    pub read_on: &'static str,
    pub http_api_per_million: f64,
    pub lambda_requests_per_million: f64,
    pub lambda_gb_second: f64,
    pub dynamodb_write_units_per_million: f64,
    pub dynamodb_read_units_per_million: f64,
    pub sqs_standard_per_million: f64,
    pub sqs_fifo_per_million: f64,
    pub kms_per_10k: f64,
    pub ses_per_1k_emails: f64,
}

/// From the AWS pricing pages of API Gateway, Lambda, DynamoDB, SQS, KMS and SES.
pub const LIST_PRICES: Prices = Prices {
    read_on: "2026-11-27",
    http_api_per_million: 1.00,
    lambda_requests_per_million: 0.20,
    lambda_gb_second: 0.000_013_333_4,
    dynamodb_write_units_per_million: 0.625,
    dynamodb_read_units_per_million: 0.125,
    sqs_standard_per_million: 0.40,
    sqs_fifo_per_million: 0.50,
    kms_per_10k: 0.03,
    ses_per_1k_emails: 0.10,
};

/// EventBridge API destinations, per million deliveries: a custom event ($1.00/M) and an
/// API destination invocation ($0.20/M).
pub const EVENTBRIDGE_API_DESTINATIONS_PER_MILLION: f64 = 1.20;

/// What the emulator metered (`GET /_comps/meter`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EmulatorReading {
    /// Per table, or `table/index`: `write_units`, `read_units` and calls per action.
    #[serde(default)]
    pub dynamodb: BTreeMap<String, BTreeMap<String, f64>>,
    /// Per queue name: `requests` (billed), `empty_receives`, messages, calls per action.
    #[serde(default)]
    pub sqs: BTreeMap<String, BTreeMap<String, f64>>,
    /// KMS and SES calls per action (`kms:Decrypt`).
    #[serde(default)]
    pub calls: BTreeMap<String, f64>,
}

/// One function's invocations and the memory it is given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FunctionUse {
    pub invocations: f64,
    pub gb_seconds: f64,
}

/// Usage, in total or per delivery.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    pub api_requests: f64,
    pub functions: BTreeMap<String, FunctionUse>,
    /// Write units per table (`table/index` for an index's own writes).
    pub write_units: BTreeMap<String, f64>,
    /// Read units per table or index.
    pub read_units: BTreeMap<String, f64>,
    /// Billed requests per queue; a FIFO queue's name ends in `.fifo`.
    pub sqs_requests: BTreeMap<String, f64>,
    /// Receives that found nothing: the pollers' fixed cost, not priced per delivery.
    pub sqs_empty_receives: f64,
    pub kms_calls: f64,
    pub emails: f64,
}

impl Usage {
    /// Usage from the two meters. `memory_mb` is each function's memory size (by binary);
    /// `names` gives tables and queues the names to show (`AttemptsTable` for the stack's
    /// `it-1-AttemptsTable-X1Y2`).
    pub fn from_readings(
        emulator: &EmulatorReading,
        gateway: &local_gateway::meter::Reading,
        memory_mb: &BTreeMap<String, u32>,
        names: &BTreeMap<String, String>,
    ) -> Usage {
        let name = |physical: &str| -> String {
            let (resource, index) = match physical.split_once('/') {
                Some((resource, index)) => (resource, Some(index)),
                None => (physical, None),
            };
            let shown = names.get(resource).map_or(resource, String::as_str);
            match index {
                Some(index) => format!("{shown}/{index}"),
                None => shown.to_owned(),
            }
        };
        let mut usage = Usage {
            api_requests: gateway.api_requests as f64,
            ..Usage::default()
        };
        for (function, used) in &gateway.functions {
            let memory_gb = f64::from(memory_mb.get(function).copied().unwrap_or(128)) / 1024.0;
            usage.functions.insert(
                function.clone(),
                FunctionUse {
                    invocations: used.count as f64,
                    gb_seconds: memory_gb * billed_seconds(used.busy, used.count),
                },
            );
        }
        for (table, amounts) in &emulator.dynamodb {
            if let Some(units) = amounts.get("write_units") {
                usage.write_units.insert(name(table), *units);
            }
            if let Some(units) = amounts.get("read_units") {
                usage.read_units.insert(name(table), *units);
            }
        }
        for (queue, amounts) in &emulator.sqs {
            if let Some(requests) = amounts.get("requests") {
                usage.sqs_requests.insert(name(queue), *requests);
            }
            usage.sqs_empty_receives += amounts.get("empty_receives").copied().unwrap_or(0.0);
        }
        for (action, calls) in &emulator.calls {
            if action.starts_with("kms:") {
                usage.kms_calls += calls;
            }
            if matches!(action.as_str(), "ses:SendEmail" | "ses:SendRawEmail") {
                usage.emails += calls;
            }
        }
        usage
    }

    /// This usage divided by `n` (per delivery).
    pub fn per(&self, n: f64) -> Usage {
        let each = |m: &BTreeMap<String, f64>| m.iter().map(|(k, v)| (k.clone(), v / n)).collect();
        Usage {
            api_requests: self.api_requests / n,
            functions: self
                .functions
                .iter()
                .map(|(k, f)| {
                    (
                        k.clone(),
                        FunctionUse {
                            invocations: f.invocations / n,
                            gb_seconds: f.gb_seconds / n,
                        },
                    )
                })
                .collect(),
            write_units: each(&self.write_units),
            read_units: each(&self.read_units),
            sqs_requests: each(&self.sqs_requests),
            sqs_empty_receives: self.sqs_empty_receives / n,
            kms_calls: self.kms_calls / n,
            emails: self.emails / n,
        }
    }

    pub fn total_write_units(&self) -> f64 {
        total(self.write_units.values())
    }

    pub fn total_read_units(&self) -> f64 {
        total(self.read_units.values())
    }

    pub fn total_sqs_requests(&self) -> f64 {
        total(self.sqs_requests.values())
    }

    pub fn invocations(&self) -> f64 {
        self.functions.values().map(|f| f.invocations).sum()
    }

    /// What this usage costs, taken a million times.
    pub fn cost_per_million(&self, prices: &Prices) -> Cost {
        let sqs = self
            .sqs_requests
            .iter()
            .map(|(queue, requests)| {
                let price = if queue.ends_with(".fifo") {
                    prices.sqs_fifo_per_million
                } else {
                    prices.sqs_standard_per_million
                };
                requests * price
            })
            .fold(0.0, |sum, cost| sum + cost);
        Cost {
            http_api: self.api_requests * prices.http_api_per_million,
            lambda_requests: self.invocations() * prices.lambda_requests_per_million,
            dynamodb_writes: self.total_write_units() * prices.dynamodb_write_units_per_million,
            dynamodb_reads: self.total_read_units() * prices.dynamodb_read_units_per_million,
            sqs,
            kms: self.kms_calls * prices.kms_per_10k * 100.0,
            ses: self.emails * prices.ses_per_1k_emails * 1000.0,
            lambda_compute: self.functions.values().map(|f| f.gb_seconds).sum::<f64>()
                * prices.lambda_gb_second
                * 1e6,
        }
    }
}

/// The sum of `amounts`; none is 0 (std's sum of no floats is -0.0, printed "-0.00").
fn total<'a>(amounts: impl Iterator<Item = &'a f64>) -> f64 {
    amounts.fold(0.0, |sum, amount| sum + amount)
}

/// Lambda bills each invocation's duration rounded up to the millisecond; the meter has the
/// sum, so each invocation is taken at the mean, rounded up.
fn billed_seconds(busy: Duration, invocations: u64) -> f64 {
    if invocations == 0 {
        return 0.0;
    }
    let mean_ms = (busy.as_secs_f64() * 1000.0 / invocations as f64).ceil();
    mean_ms * invocations as f64 / 1000.0
}

/// Dollars per million of whatever the usage was divided by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    pub http_api: f64,
    pub lambda_requests: f64,
    pub dynamodb_writes: f64,
    pub dynamodb_reads: f64,
    pub sqs: f64,
    pub kms: f64,
    pub ses: f64,
    /// Lambda GB-seconds as measured against the emulator: an upper bound, kept apart.
    pub lambda_compute: f64,
}

impl Cost {
    /// Every request and unit, without compute.
    pub fn requests(&self) -> f64 {
        self.http_api
            + self.lambda_requests
            + self.dynamodb_writes
            + self.dynamodb_reads
            + self.sqs
            + self.kms
            + self.ses
    }

    pub fn with_compute(&self) -> f64 {
        self.requests() + self.lambda_compute
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use local_gateway::meter::{Invocations, Reading};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// The count in issue 10, per delivery: 7 write units, 4 read units, 3 standard SQS
    /// requests, 2 invocations, 1 HTTP API request, no KMS call: $7.48 per million.
    #[test]
    fn prices_the_count_of_issue_10() {
        let usage = Usage {
            api_requests: 1.0,
            functions: BTreeMap::from([
                (
                    "fanout".into(),
                    FunctionUse {
                        invocations: 1.0,
                        gb_seconds: 0.0,
                    },
                ),
                (
                    "deliver".into(),
                    FunctionUse {
                        invocations: 1.0,
                        gb_seconds: 0.0,
                    },
                ),
            ]),
            write_units: BTreeMap::from([("events".into(), 4.0), ("attempts".into(), 3.0)]),
            read_units: BTreeMap::from([("attempts".into(), 4.0)]),
            sqs_requests: BTreeMap::from([("deliveries".into(), 3.0)]),
            ..Usage::default()
        };
        let cost = usage.cost_per_million(&LIST_PRICES);
        assert!(close(cost.requests(), 7.475), "{cost:?}");
        assert!(close(cost.lambda_compute, 0.0));
    }

    #[test]
    fn fifo_requests_cost_more_than_standard_ones() {
        let usage = |queue: &str| Usage {
            sqs_requests: BTreeMap::from([(queue.to_owned(), 1.0)]),
            ..Usage::default()
        };
        assert!(close(
            usage("d.fifo").cost_per_million(&LIST_PRICES).sqs,
            0.50
        ));
        assert!(close(usage("d").cost_per_million(&LIST_PRICES).sqs, 0.40));
    }

    #[test]
    fn reads_both_meters_and_divides_per_delivery() {
        let emulator: EmulatorReading = serde_json::from_value(serde_json::json!({
            "dynamodb": {
                "events": {"write_units": 2, "PutItem": 2},
                "attempts": {"write_units": 4, "read_units": 2.5},
                "attempts/by_webhook": {"write_units": 2}
            },
            "sqs": {"d.fifo": {"requests": 6, "empty_receives": 40, "SendMessageBatch": 2}},
            "calls": {"kms:Decrypt": 1, "ses:SendRawEmail": 1}
        }))
        .unwrap();
        let gateway = Reading {
            api_requests: 2,
            functions: BTreeMap::from([(
                "deliver".to_owned(),
                Invocations {
                    count: 2,
                    busy: Duration::from_micros(20_500),
                },
            )]),
        };
        let memory = BTreeMap::from([("deliver".to_owned(), 512)]);
        let names = BTreeMap::from([("attempts".to_owned(), "AttemptsTable".to_owned())]);
        let per = Usage::from_readings(&emulator, &gateway, &memory, &names).per(2.0);
        assert!(close(per.api_requests, 1.0));
        assert!(close(per.total_write_units(), 4.0));
        assert!(close(per.write_units["AttemptsTable/by_webhook"], 1.0));
        assert!(close(per.write_units["events"], 1.0));
        assert!(close(per.total_read_units(), 1.25));
        assert!(close(per.total_sqs_requests(), 3.0));
        assert!(close(per.sqs_empty_receives, 20.0));
        assert!(close(per.kms_calls, 0.5));
        assert!(close(per.emails, 0.5));
        // Two invocations of 10.25 ms each are billed 11 ms each, at 0.5 GB.
        assert!(close(
            per.functions["deliver"].gb_seconds,
            0.5 * 0.022 / 2.0
        ));
        let cost = per.cost_per_million(&LIST_PRICES);
        assert!(close(cost.sqs, 1.5));
        assert!(cost.with_compute() > cost.requests());
    }

    #[test]
    fn no_requests_total_a_positive_zero() {
        let none = Usage::default();
        assert_eq!(format!("{:.2}", none.total_sqs_requests()), "0.00");
        assert_eq!(format!("{:.2}", none.total_read_units()), "0.00");
    }
}
