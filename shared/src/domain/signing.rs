//! Signing secrets and the two signatures every delivery carries (SPEC §4).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("a signing secret must be \"whsec_\" followed by base64")]
    Malformed,
}

/// A webhook signing secret: `whsec_` + base64 of 32 random bytes.
///
/// Debug output is redacted so the secret can't leak into logs by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    text: String,
    key: Vec<u8>,
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningSecret({})", self.hint())
    }
}

impl SigningSecret {
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        SigningSecret {
            text: format!("{SECRET_PREFIX}{}", BASE64.encode(key)),
            key: key.to_vec(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Malformed)?;
        let key = BASE64.decode(encoded).map_err(|_| SecretError::Malformed)?;
        if key.is_empty() {
            return Err(SecretError::Malformed);
        }
        Ok(SigningSecret {
            text: text.to_owned(),
            key,
        })
    }

    /// The full secret, for the one-time reveal and for encryption at rest.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// What the API shows after the reveal: `whsec_…` and the last four characters.
    pub fn hint(&self) -> String {
        let tail_start = self.text.len().saturating_sub(4);
        format!("{SECRET_PREFIX}…{}", &self.text[tail_start..])
    }

    /// `X-Comps-Signature`: lowercase hex HMAC-SHA256 keyed with the secret string's UTF-8
    /// bytes over the raw body — exactly what the user guide's Node.js `verify` checks.
    pub fn comps_signature(&self, body: &[u8]) -> String {
        hex::encode(hmac_sha256(self.text.as_bytes(), &[body]))
    }

    /// `webhook-signature` of Standard Webhooks: `v1,` + base64 HMAC-SHA256 keyed with the
    /// decoded secret over `id.timestamp.body`.
    pub fn standard_signature(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let timestamp = timestamp.to_string();
        let mac = hmac_sha256(
            &self.key,
            &[id.as_bytes(), b".", timestamp.as_bytes(), b".", body],
        );
        format!("v1,{}", BASE64.encode(mac))
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"order.completed","created_at":"2026-11-27T03:00:00Z","data":{"id":42}}"#;

    #[test]
    fn comps_signature_matches_fixed_vector() {
        // Computed independently with Python's hmac module.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.comps_signature(BODY),
            "363a070428f2d6a836411362b6e6e26349d8f0bf235431763200e65528c0b7fc"
        );
    }

    #[test]
    fn standard_signature_matches_the_standard_webhooks_vector() {
        // The test vector published with the Standard Webhooks reference libraries.
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.standard_signature(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert_eq!(
            secret.standard_signature("evt_1", 1795748400, BODY),
            "v1,Jkt5SbjvlUNehm/nRhFKi+5t4PbHWysMODPvkUbwW2s="
        );
    }

    #[test]
    fn generated_secrets_are_32_random_bytes_and_round_trip() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("whsec_"));
        let parsed = SigningSecret::parse(a.expose()).unwrap();
        assert_eq!(parsed.key.len(), 32);
        assert_eq!(parsed, a);
    }

    #[test]
    fn hint_and_debug_never_show_the_secret() {
        let secret = SigningSecret::generate();
        let hint = secret.hint();
        assert!(hint.starts_with("whsec_…"));
        assert_eq!(hint.chars().count(), "whsec_…".chars().count() + 4);
        assert!(secret.expose().ends_with(&hint["whsec_…".len()..]));
        assert!(!format!("{secret:?}").contains(secret.expose()));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in ["", "whsec_", "abc", "whsec_!!!", "sk_live_abc"] {
            assert!(SigningSecret::parse(bad).is_err(), "{bad}");
        }
    }
}
