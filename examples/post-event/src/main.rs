//! `post-event <ingest URL> <event.json>`: posts one event to comps-webhooks on AWS as the
//! competitions platform does, signed with SigV4 (service `execute-api`) with the credentials
//! of the standard chain (the platform's role, with the stack's `IngestInvokePolicyArn`
//! attached). Prints the answer's status and body; exits non-zero unless it is 2xx.

use std::error::Error;
use std::time::SystemTime;

use aws_config::BehaviorVersion;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(file)) = (args.next(), args.next()) else {
        return Err("usage: post-event <ingest URL> <event.json>".into());
    };
    let body = std::fs::read(&file).map_err(|e| format!("cannot read {file}: {e}"))?;
    let answer = post_signed(&url, body).await?;
    let status = answer.status();
    println!("{status} {}", answer.text().await?);
    if !status.is_success() {
        std::process::exit(1);
    }
    Ok(())
}

/// POSTs `body` as JSON to `url`, signed for API Gateway's IAM authorizer.
async fn post_signed(url: &str, body: Vec<u8>) -> Result<reqwest::Response, Box<dyn Error>> {
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let region = config
        .region()
        .ok_or("no AWS region configured")?
        .to_string();
    let identity: Identity = config
        .credentials_provider()
        .ok_or("no AWS credentials configured")?
        .provide_credentials()
        .await?
        .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        [("content-type", "application/json")].into_iter(),
        SignableBody::Bytes(&body),
    )?;
    let (instructions, _signature) = sign(signable, &params)?.into_parts();
    let mut request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(body)?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(reqwest::Client::new().execute(request.try_into()?).await?)
}
