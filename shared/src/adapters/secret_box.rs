//! Signing secrets at rest: encrypted with KMS under an encryption context that binds each
//! ciphertext to its webhook id, so a ciphertext copied onto another webhook won't decrypt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::OnceCell;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use thiserror::Error;

use crate::adapters::aws_error::{from_aws_errors, AwsError};
use crate::domain::ids::WebhookId;
use crate::domain::signing::SigningSecret;

const CONTEXT_KEY: &str = "webhook_id";

#[derive(Debug, Error)]
pub enum SecretBoxError {
    #[error("KMS call failed: {0}")]
    Kms(#[from] AwsError),
    #[error("stored secret is unreadable")]
    Corrupt,
}

from_aws_errors!(SecretBoxError, SecretBoxError::Kms);

#[derive(Debug, Clone)]
pub struct SecretBox {
    kms: Client,
    key_id: String,
}

impl SecretBox {
    pub fn new(kms: Client, key_id: String) -> Self {
        SecretBox { kms, key_id }
    }

    /// Returns base64 of the ciphertext.
    pub async fn seal(
        &self,
        webhook_id: &WebhookId,
        secret: &SigningSecret,
    ) -> Result<String, SecretBoxError> {
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(secret.expose().as_bytes()))
            .encryption_context(CONTEXT_KEY, webhook_id.as_str())
            .send()
            .await?;
        let blob = out.ciphertext_blob.ok_or(SecretBoxError::Corrupt)?;
        Ok(BASE64.encode(blob.as_ref()))
    }

    pub async fn open(
        &self,
        webhook_id: &WebhookId,
        ciphertext: &str,
    ) -> Result<SigningSecret, SecretBoxError> {
        let blob = BASE64
            .decode(ciphertext)
            .map_err(|_| SecretBoxError::Corrupt)?;
        let out = self
            .kms
            .decrypt()
            // Naming the key makes KMS refuse a ciphertext made under any other key.
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(blob))
            .encryption_context(CONTEXT_KEY, webhook_id.as_str())
            .send()
            .await?;
        let plain = out.plaintext.ok_or(SecretBoxError::Corrupt)?;
        let text = std::str::from_utf8(plain.as_ref()).map_err(|_| SecretBoxError::Corrupt)?;
        SigningSecret::parse(text).map_err(|_| SecretBoxError::Corrupt)
    }
}

/// Decrypted secrets kept for the life of a container, keyed by webhook id *and* ciphertext:
/// a rotated secret has a new ciphertext, so it is used on the very next attempt, and an
/// unchanged one costs no KMS call.
#[derive(Debug, Default)]
pub struct SecretCache {
    /// Per webhook, its sealed secret and the opening of it: one decryption, shared by the
    /// deliveries that need it at once (the first batch after a cold start, say).
    entries: Mutex<HashMap<WebhookId, (String, Opening)>>,
}

/// A secret's decryption, made once and shared.
type Opening = Arc<OnceCell<SigningSecret>>;

impl SecretCache {
    pub async fn get_or_open(
        &self,
        secret_box: &SecretBox,
        webhook_id: &WebhookId,
        ciphertext: &str,
    ) -> Result<SigningSecret, SecretBoxError> {
        let opening = {
            // The map is never left half-changed, so a poisoned lock is still good to use.
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            match entries.get(webhook_id) {
                Some((sealed, opening)) if sealed == ciphertext => Arc::clone(opening),
                // New, or rotated since: open the secret now sealed.
                _ => {
                    let opening = Arc::default();
                    entries.insert(
                        webhook_id.clone(),
                        (ciphertext.to_owned(), Arc::clone(&opening)),
                    );
                    opening
                }
            }
        };
        opening
            .get_or_try_init(|| secret_box.open(webhook_id, ciphertext))
            .await
            .cloned()
    }
}
