//! What the benches (`src/bin/bench.rs`, `src/bin/isolation.rs`) share: percentiles and
//! summaries of latencies, the 1 KB order they post, and where their results are written.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

/// The `p`th percentile (0 to 100) of `sorted`, nearest rank; NaN when there is none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// `{count, p50_ms, p95_ms, p99_ms, max_ms}` of samples in milliseconds.
pub fn summary(mut samples: Vec<f64>) -> Value {
    samples.sort_by(|a, b| a.total_cmp(b));
    json!({
        "count": samples.len(),
        "p50_ms": percentile(&samples, 50.0),
        "p95_ms": percentile(&samples, 95.0),
        "p99_ms": percentile(&samples, 99.0),
        "max_ms": samples.last().copied().unwrap_or(f64::NAN),
    })
}

/// Writes `text` to `bench-results/<name>-latest.json` (`latest.json` when `name` is empty)
/// and a copy named after the time (`<name>-<stamp>.json`, or `<stamp>.json`); returns the
/// path of the first.
pub fn write_results(root: &Path, name: &str, text: &str) -> PathBuf {
    let dir = root.join("bench-results");
    std::fs::create_dir_all(&dir).expect("bench-results dir");
    let stamp = webhooks_shared::domain::clock::rfc3339_seconds(SystemTime::now()).replace(':', "");
    let (stamped, latest) = if name.is_empty() {
        (format!("{stamp}.json"), "latest.json".to_owned())
    } else {
        (
            format!("{name}-{stamp}.json"),
            format!("{name}-latest.json"),
        )
    };
    std::fs::write(dir.join(stamped), text).expect("write results");
    let latest = dir.join(latest);
    std::fs::write(&latest, text).expect("write results");
    latest
}

/// An order as the platform would send it, about 1 KB as posted; its contents vary as real
/// ones do (so compression, if any, is not flattered).
pub fn order_of_about_1_kb(rng: &mut StdRng, event_id: &str) -> Value {
    let mut hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
            .collect()
    };
    let order_id = format!("ord_{}", hex(24));
    let user_id = format!("usr_{}", hex(24));
    let competition_id = format!("cmp_{}", hex(24));
    let email = format!("{}@example.com", hex(10));
    let payment = format!("pi_{}", hex(24));
    let mut tickets = Vec::new();
    let mut event = json!({});
    for _ in 0..200 {
        tickets.push(rng.gen_range(1..100_000));
        event = json!({
            "id": event_id,
            "type": "order.completed",
            "occurred_at": "2026-11-27T03:00:00Z",
            "data": {
                "id": order_id,
                "user_id": user_id,
                "email": email,
                "competition_id": competition_id,
                "competition_title": "Win a Range Rover Sport + £5,000",
                "payment_intent": payment,
                "ticket_price": "1.99",
                "currency": "GBP",
                "total": format!("{:.2}", 1.99 * tickets.len() as f64),
                "ticket_numbers": tickets,
                "marketing_opt_in": rng.gen_bool(0.5),
                "source": "web",
            }
        });
        if event.to_string().len() >= 1000 {
            break;
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn percentiles_by_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 51.0);
        assert_eq!(percentile(&sorted, 95.0), 95.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn orders_are_about_1_kb() {
        let mut rng = StdRng::seed_from_u64(1);
        let order = order_of_about_1_kb(&mut rng, "evt_1");
        let len = order.to_string().len();
        assert!((1000..1100).contains(&len), "{len} bytes");
    }
}
