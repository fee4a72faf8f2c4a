//! Verifying a delivery the Standard Webhooks way (<https://www.standardwebhooks.com/>).
//!
//! `webhook-signature` is `v1,<base64 HMAC-SHA256>` (several may be sent, space-separated),
//! keyed with the base64-decoded part of the secret after `whsec_`, over
//! `{webhook-id}.{webhook-timestamp}.{raw body}`. It covers the id and the timestamp, so a
//! captured delivery cannot be sent again later with a fresh timestamp: refuse timestamps
//! outside [`TOLERANCE`] and deduplicate on the id. (`X-Comps-Signature` covers the body
//! only; do not rely on it for replay protection.)

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far `webhook-timestamp` may be from our clock, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// A signing secret that is not `whsec_` followed by base64.
#[derive(Debug)]
pub struct BadSecret;

impl fmt::Display for BadSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the signing secret must be \"whsec_\" followed by base64")
    }
}

impl std::error::Error for BadSecret {}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    MissingHeader(&'static str),
    BadTimestamp,
    /// The timestamp is further than [`TOLERANCE`] from now: a replay, or a clock far off.
    OutsideTolerance {
        skew_secs: u64,
    },
    BadSignature,
}

impl Refusal {
    /// 400 for a malformed or stale request, 401 for one whose signature does not verify.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadSignature => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::MissingHeader(name) => write!(f, "missing {name} header"),
            Refusal::BadTimestamp => f.write_str("webhook-timestamp is not Unix seconds"),
            Refusal::OutsideTolerance { skew_secs } => write!(
                f,
                "webhook-timestamp is {skew_secs} s from now (tolerance {} s)",
                TOLERANCE.as_secs()
            ),
            Refusal::BadSignature => f.write_str("invalid signature"),
        }
    }
}

/// A delivery whose signature and timestamp checked out.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// `webhook-id`: the event id, the same on every attempt and redelivery (dedup on it).
    pub id: String,
}

#[derive(Clone)]
pub struct Verifier {
    /// HMAC-SHA256 keyed with the decoded secret, cloned for each request.
    keyed: HmacSha256,
}

impl Verifier {
    pub fn new(secret: &str) -> Result<Self, BadSecret> {
        let encoded = secret.trim().strip_prefix("whsec_").ok_or(BadSecret)?;
        let key = BASE64.decode(encoded).map_err(|_| BadSecret)?;
        if key.is_empty() {
            return Err(BadSecret);
        }
        let keyed = HmacSha256::new_from_slice(&key).map_err(|_| BadSecret)?;
        Ok(Verifier { keyed })
    }

    /// Checks the timestamp (400 if stale) then the signature (401 if wrong) of a request
    /// whose raw body is `body`.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> Result<Verified, Refusal> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .filter(|value| !value.is_empty())
                .ok_or(Refusal::MissingHeader(name))
        };
        let id = header("webhook-id")?;
        let timestamp_text = header("webhook-timestamp")?;
        let signatures = header("webhook-signature")?;

        let timestamp: u64 = timestamp_text.parse().map_err(|_| Refusal::BadTimestamp)?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Refusal::BadTimestamp)?
            .as_secs();
        let skew_secs = now.abs_diff(timestamp);
        if skew_secs > TOLERANCE.as_secs() {
            return Err(Refusal::OutsideTolerance { skew_secs });
        }

        let mut mac = self.keyed.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_text.as_bytes());
        mac.update(b".");
        mac.update(body);
        // One valid signature is enough (during a rotation there may be several).
        // `verify_slice` compares in constant time.
        let valid = signatures
            .split(' ')
            .filter_map(|signature| signature.strip_prefix("v1,"))
            .filter_map(|encoded| BASE64.decode(encoded).ok())
            .any(|signature| mac.clone().verify_slice(&signature).is_ok());
        if !valid {
            return Err(Refusal::BadSignature);
        }
        Ok(Verified { id: id.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    // The test vector published with the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: u64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn headers(id: &str, timestamp: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("webhook-id", id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        ] {
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn verifier() -> Verifier {
        Verifier::new(SECRET).unwrap()
    }

    #[test]
    fn the_reference_vector_verifies() {
        let verified = verifier()
            .verify(
                &headers(ID, &TIMESTAMP.to_string(), SIGNATURE),
                BODY,
                at(TIMESTAMP),
            )
            .unwrap();
        assert_eq!(verified, Verified { id: ID.into() });
    }

    #[test]
    fn one_good_signature_among_several_is_enough() {
        let several = format!("v1,AAAA v2,whatever {SIGNATURE}");
        let headers = headers(ID, &TIMESTAMP.to_string(), &several);
        assert!(verifier().verify(&headers, BODY, at(TIMESTAMP)).is_ok());
    }

    #[test]
    fn a_tampered_body_id_or_timestamp_is_a_bad_signature() {
        let ts = TIMESTAMP.to_string();
        let v = verifier();
        let now = at(TIMESTAMP);
        let tampered = br#"{"test": 2432232315}"#;
        assert_eq!(
            v.verify(&headers(ID, &ts, SIGNATURE), tampered, now),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            v.verify(&headers("msg_other", &ts, SIGNATURE), BODY, now),
            Err(Refusal::BadSignature)
        );
        let later = (TIMESTAMP + 1).to_string();
        assert_eq!(
            v.verify(&headers(ID, &later, SIGNATURE), BODY, now),
            Err(Refusal::BadSignature)
        );
        let other = Verifier::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert_eq!(
            other.verify(&headers(ID, &ts, SIGNATURE), BODY, now),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn timestamps_beyond_five_minutes_either_way_are_refused() {
        let headers = headers(ID, &TIMESTAMP.to_string(), SIGNATURE);
        let v = verifier();
        assert!(v.verify(&headers, BODY, at(TIMESTAMP + 300)).is_ok());
        assert!(v.verify(&headers, BODY, at(TIMESTAMP - 300)).is_ok());
        assert_eq!(
            v.verify(&headers, BODY, at(TIMESTAMP + 301)),
            Err(Refusal::OutsideTolerance { skew_secs: 301 })
        );
        assert_eq!(
            v.verify(&headers, BODY, at(TIMESTAMP - 301)),
            Err(Refusal::OutsideTolerance { skew_secs: 301 })
        );
    }

    #[test]
    fn malformed_requests_and_secrets_are_refused() {
        let v = verifier();
        let now = at(TIMESTAMP);
        assert_eq!(
            v.verify(&HeaderMap::new(), BODY, now),
            Err(Refusal::MissingHeader("webhook-id"))
        );
        assert_eq!(
            v.verify(&headers(ID, "yesterday", SIGNATURE), BODY, now),
            Err(Refusal::BadTimestamp)
        );
        assert_eq!(Refusal::BadTimestamp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(Refusal::BadSignature.status(), StatusCode::UNAUTHORIZED);
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
        ] {
            assert!(Verifier::new(bad).is_err(), "{bad}");
        }
    }
}
