//! The AWS SDK's HTTP transport, on reqwest: the crate the delivery client uses, so every
//! binary carries one HTTP client stack, and HTTP/1.1 only. The SDK's own client
//! (aws-smithy-http-client) always links HTTP/2 (h2, and hyper's and hyper-util's HTTP/2
//! paths, instantiated again for the Lambda Runtime API client): about 280 KiB of code in
//! each binary for a protocol DynamoDB, SQS, KMS and SES do not need (issue 10's 3 MB zips).
//!
//! Behaviour kept from the SDK's client: the connect and read timeouts the SDK asks for, a
//! connection pool per timeout setting (cached, as the SDK expects of an `HttpClient`), the
//! system's trust store, no proxy, and the same error classes for the SDK's retry rules
//! (a timeout, an I/O failure: try again; a request that cannot be built: do not).

use std::borrow::Cow;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;

use crate::adapters::aws_error::error_chain;

/// The SDK's `HttpClient`: a reqwest client per distinct timeout setting, built on first
/// use (no I/O when the SDK configuration is built).
#[derive(Debug, Default)]
pub struct SdkHttpClient {
    connectors: Mutex<HashMap<Timeouts, SharedHttpConnector>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Timeouts {
    connect: Option<Duration>,
    read: Option<Duration>,
}

impl HttpClient for SdkHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = Timeouts {
            connect: settings.connect_timeout(),
            read: settings.read_timeout(),
        };
        // A poisoned lock only means another thread panicked while inserting; the map holds
        // whole entries either way.
        let mut connectors = self
            .connectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        connectors
            .entry(timeouts)
            .or_insert_with(|| SharedHttpConnector::new(SdkConnector::new(timeouts)))
            .clone()
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        Some(ConnectorMetadata::new(
            "reqwest",
            Some(Cow::Borrowed("0.12")),
        ))
    }
}

/// One pool of connections with one timeout setting.
#[derive(Debug)]
struct SdkConnector {
    /// Building fails only if TLS cannot be set up (no usable root certificate); every call
    /// then fails with the reason, as the SDK's own client would fail its calls.
    client: Result<reqwest::Client, String>,
}

impl SdkConnector {
    fn new(timeouts: Timeouts) -> Self {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90));
        if let Some(connect) = timeouts.connect {
            builder = builder.connect_timeout(connect);
        }
        if let Some(read) = timeouts.read {
            builder = builder.read_timeout(read);
        }
        SdkConnector {
            client: builder
                .build()
                .map_err(|e| format!("cannot build the AWS HTTP client: {}", error_chain(&e))),
        }
    }
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.client {
            Ok(client) => client.clone(),
            Err(reason) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    reason.clone().into(),
                    None,
                )))
            }
        };
        let request = match to_reqwest(request) {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err))),
        };
        HttpConnectorFuture::new(async move {
            let response = client.execute(request).await.map_err(connector_error)?;
            let response: http::Response<reqwest::Body> = response.into();
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|err| ConnectorError::other(err.into(), None))
        })
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// The SDK's request as reqwest's. Every operation these functions call sends its body from
/// memory; a streaming body would be a programming error, refused rather than half-sent.
fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, BoxError> {
    let request = request.try_into_http1x()?;
    let (parts, body) = request.into_parts();
    let bytes = body
        .bytes()
        .map(Bytes::copy_from_slice)
        .ok_or("a streaming request body (every AWS call here sends its body from memory)")?;
    Ok(reqwest::Request::try_from(http::Request::from_parts(
        parts, bytes,
    ))?)
}

/// reqwest's failure in the SDK's terms, which its retry rules read: a timeout or a failed
/// connection or exchange is transient, a request reqwest could not build is the caller's.
fn connector_error(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_builder() {
        ConnectorError::user(err.into())
    } else {
        ConnectorError::io(err.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;

    fn sdk_request(uri: &str, body: SdkBody) -> HttpRequest {
        let request = http::Request::builder()
            .method("POST")
            .uri(uri)
            .header("x-amz-target", "DynamoDB_20120810.PutItem")
            .body(body)
            .unwrap();
        HttpRequest::try_from(request).unwrap()
    }

    #[test]
    fn an_sdk_request_keeps_its_method_uri_headers_and_body() {
        let request = sdk_request(
            "https://dynamodb.eu-west-2.amazonaws.com/",
            SdkBody::from("{\"TableName\":\"t\"}"),
        );
        let request = to_reqwest(request).unwrap();
        assert_eq!(request.method(), "POST");
        assert_eq!(
            request.url().as_str(),
            "https://dynamodb.eu-west-2.amazonaws.com/"
        );
        assert_eq!(
            request.headers()["x-amz-target"],
            "DynamoDB_20120810.PutItem"
        );
        assert_eq!(
            request.body().and_then(|b| b.as_bytes()),
            Some(&b"{\"TableName\":\"t\"}"[..])
        );
    }

    #[test]
    fn a_streaming_body_is_refused_not_half_sent() {
        let streaming = SdkBody::from_body_1_x(http_body_util::Empty::<Bytes>::new());
        let err = to_reqwest(sdk_request(
            "https://sqs.eu-west-2.amazonaws.com/",
            streaming,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("streaming"), "{err}");
    }

    #[test]
    fn one_pool_per_timeout_setting() {
        let client = SdkHttpClient::default();
        let components = RuntimeComponentsBuilder::for_tests().build().unwrap();
        let short = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(1))
            .build();
        let long = HttpConnectorSettings::builder()
            .connect_timeout(Duration::from_secs(5))
            .build();
        let _ = client.http_connector(&short, &components);
        let _ = client.http_connector(&short, &components);
        let _ = client.http_connector(&long, &components);
        assert_eq!(client.connectors.lock().unwrap().len(), 2);
    }

    /// A POST through a connector with a 2 s connect timeout and `read`, to a loopback
    /// port, which must fail.
    async fn post_to_loopback(port: u16, read: Option<Duration>) -> ConnectorError {
        let connector = SdkConnector::new(Timeouts {
            connect: Some(Duration::from_secs(2)),
            read,
        });
        connector
            .call(sdk_request(
                &format!("http://127.0.0.1:{port}/"),
                SdkBody::from("{}"),
            ))
            .await
            .unwrap_err()
    }

    /// Against a real socket: nothing listens on the port, so the connection is refused,
    /// which the SDK must see as an I/O failure it may retry.
    #[tokio::test]
    async fn a_refused_connection_is_a_retryable_io_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let err = post_to_loopback(port, None).await;
        assert!(err.is_io(), "{err:?}");
    }

    /// A server that accepts and never answers: the read timeout fires and is reported as
    /// a timeout.
    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let err = post_to_loopback(port, Some(Duration::from_millis(200))).await;
        assert!(err.is_timeout(), "{err:?}");
        hold.abort();
    }
}
