//! The events Lambda hands a function, built as Lambda builds them: SQS batches of received
//! messages and HTTP API requests.

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::{json, Value};

use crate::harness::REGION;

/// The record Lambda makes of a message on its first receive from the queue `queue_arn`.
pub fn sqs_record(
    message_id: &str,
    receipt_handle: Option<&str>,
    body: &str,
    queue_arn: &str,
) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message_id.to_owned());
    record.receipt_handle = receipt_handle.map(str::to_owned);
    record.body = Some(body.to_owned());
    record.attributes = [("ApproximateReceiveCount".to_owned(), "1".to_owned())].into();
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(queue_arn.to_owned());
    record.aws_region = Some(REGION.into());
    record
}

/// The record of `message`, received from the queue `queue_arn`.
pub fn received_record(message: &aws_sdk_sqs::types::Message, queue_arn: &str) -> SqsMessage {
    let mut record = sqs_record(
        message.message_id().expect("message id"),
        message.receipt_handle(),
        message.body().unwrap_or_default(),
        queue_arn,
    );
    record.md5_of_body = message.md5_of_body().map(str::to_owned);
    record
}

/// One batch of `records`, as the SQS event source invokes a function with it.
pub fn sqs_event(records: Vec<SqsMessage>) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = records;
    event
}

/// The batch as the JSON the Runtime API hands a function binary.
pub fn sqs_event_json(records: Vec<SqsMessage>) -> Value {
    serde_json::to_value(sqs_event(records)).expect("SQS event as JSON")
}

/// An HTTP API request (payload format 2.0) as API Gateway passes it on. `admin_scope` is
/// the `scope` claim of the caller's token, for routes behind the JWT authorizer.
pub fn http_api_request(
    method: &str,
    path: &str,
    body: Option<&str>,
    admin_scope: Option<&str>,
) -> Value {
    let route = format!("{method} {path}");
    let mut context = json!({
        "accountId": "123456789012", "apiId": "api", "domainName": "api.example.com", "domainPrefix": "api",
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
        "requestId": "r1", "routeKey": route, "stage": "$default",
        "time": "27/Nov/2026:03:00:00 +0000", "timeEpoch": 1795748400000u64
    });
    if let Some(scope) = admin_scope {
        context["authorizer"] =
            json!({"jwt": {"claims": {"sub": "admin-1", "scope": scope}, "scopes": null}});
    }
    json!({
        "version": "2.0", "routeKey": route, "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": context,
        "body": body, "isBase64Encoded": false
    })
}
