//! SES (v1 API) adapter: sends the alert emails.

use aws_sdk_ses::types::{Body, Content, Destination, Message};
use aws_sdk_ses::Client;
use thiserror::Error;

use webhooks_shared::adapters::aws_error::AwsError;

/// An email with a plain text and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, Error)]
pub enum MailError {
    #[error("SES refused the email: {0}")]
    Ses(#[from] AwsError),
    #[error("no sender configured (WEBHOOKS_ALERT_FROM)")]
    NoSender,
}

#[derive(Debug, Clone)]
pub struct Mailer {
    ses: Client,
}

fn content(text: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(text)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Ses(AwsError::invalid_request(e)))
}

impl Mailer {
    pub fn new(ses: Client) -> Self {
        Mailer { ses }
    }

    /// Sends one email (plain text and HTML parts); returns SES's message id.
    pub async fn send(
        &self,
        from: Option<&str>,
        to: &[String],
        email: &Email,
    ) -> Result<String, MailError> {
        let from = from.ok_or(MailError::NoSender)?;
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(
                Body::builder()
                    .text(content(&email.text)?)
                    .html(content(&email.html)?)
                    .build(),
            )
            .build();
        let out = self
            .ses
            .send_email()
            .source(from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.to_vec()))
                    .build(),
            )
            .message(message)
            .send()
            .await
            .map_err(AwsError::from)?;
        Ok(out.message_id)
    }
}
