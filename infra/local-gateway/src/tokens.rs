//! The local gateway's two bearer tokens stand in for two authorizers: IAM on the ingest
//! routes and the admins' JWT on the rest. One value for both would let whoever posts events
//! manage webhooks (read the delivery log, redirect deliveries, rotate secrets), so the
//! gateway refuses to start with it.

use subtle::ConstantTimeEq;
use webhooks_shared::config::ConfigError;

/// `Ok` when the admin and ingest tokens differ; else the error that names both settings.
pub fn check_distinct(admin_token: &str, ingest_token: &str) -> Result<(), ConfigError> {
    if bool::from(admin_token.as_bytes().ct_eq(ingest_token.as_bytes())) {
        return Err(ConfigError::Invalid {
            name: "WEBHOOKS_INGEST_TOKEN",
            reason: "it is the same as WEBHOOKS_ADMIN_TOKEN, so the ingest token could manage \
                     webhooks; give each its own value"
                .to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_token_for_admin_and_ingest_is_refused_naming_both_settings() {
        let err = check_distinct("shared-secret", "shared-secret").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("WEBHOOKS_INGEST_TOKEN") && message.contains("WEBHOOKS_ADMIN_TOKEN"),
            "{message}"
        );
        assert!(message.contains("give each its own value"), "{message}");
        assert!(!message.contains("shared-secret"), "the token is not shown");
        assert!(check_distinct("admin-one", "ingest-two").is_ok());
        assert!(check_distinct(crate::DEFAULT_ADMIN_TOKEN, crate::DEFAULT_INGEST_TOKEN).is_ok());
    }
}
