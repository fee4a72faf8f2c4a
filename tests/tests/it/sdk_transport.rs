//! The SDK's transport (`adapters::sdk_http`) verifies the certificates of the endpoints it
//! calls: an HTTPS endpoint whose certificate comes from the harness's test CA (not among
//! the roots compiled in) is refused before a request is sent. Every other test exercises
//! the transport over plain HTTP against moto.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::error::SdkError;
use integration_tests::receiver::{Receiver, Reply};

#[tokio::test]
async fn an_endpoint_with_an_untrusted_certificate_is_refused_before_any_request() {
    let endpoint = Receiver::start(vec![Reply::status(200)]).await;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("eu-west-2"))
        .endpoint_url(format!("https://localhost:{}", endpoint.addr.port()))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .http_client(webhooks_shared::adapters::aws_http_client())
        .load()
        .await;
    let err = aws_sdk_sqs::Client::new(&sdk)
        .list_queues()
        .send()
        .await
        .expect_err("the test CA is not trusted");
    let SdkError::DispatchFailure(failure) = &err else {
        panic!("expected a dispatch failure, got {err:?}");
    };
    assert!(failure.is_io(), "a TLS refusal is an I/O failure: {err:?}");
    let chain = format!("{:?}", err);
    assert!(
        chain.contains("UnknownIssuer"),
        "the certificate's issuer is the reason: {chain}"
    );
    assert!(endpoint.requests().is_empty(), "no request was sent");
}
