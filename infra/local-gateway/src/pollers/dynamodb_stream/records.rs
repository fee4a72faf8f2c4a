//! Stream records as Lambda hands them to a function: the streams API's records and item
//! images turned into the `aws_lambda_events` DynamoDB event a handler reads, or refused by
//! name (a record without a sequence number, an attribute of a type this SDK does not know)
//! rather than passed on half converted.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType, UserIdentity};
use aws_sdk_dynamodbstreams::types::{AttributeValue as SdkValue, Record};
use serde_dynamo::{AttributeValue, Item};
use thiserror::Error;

/// A stream record that cannot be handed to the function.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("attribute {0} has a type this SDK does not know")]
    UnknownAttributeType(String),
    #[error("the record has no sequence number")]
    NoSequenceNumber,
}

/// An item image of the streams API as the event Lambda sends holds it.
pub fn to_item(image: &HashMap<String, SdkValue>) -> Result<Item, RecordError> {
    image
        .iter()
        .map(|(name, value)| Ok((name.clone(), to_attribute_value(name, value)?)))
        .collect::<Result<HashMap<String, AttributeValue>, RecordError>>()
        .map(Item::from)
}

// By hand rather than serde_dynamo's `From`: that one panics on a type the SDK does not know.
fn to_attribute_value(name: &str, value: &SdkValue) -> Result<AttributeValue, RecordError> {
    Ok(match value {
        SdkValue::S(s) => AttributeValue::S(s.clone()),
        SdkValue::N(n) => AttributeValue::N(n.clone()),
        SdkValue::Bool(b) => AttributeValue::Bool(*b),
        SdkValue::Null(null) => AttributeValue::Null(*null),
        SdkValue::B(blob) => AttributeValue::B(blob.as_ref().to_vec()),
        SdkValue::Ss(set) => AttributeValue::Ss(set.clone()),
        SdkValue::Ns(set) => AttributeValue::Ns(set.clone()),
        SdkValue::Bs(set) => AttributeValue::Bs(set.iter().map(|b| b.as_ref().to_vec()).collect()),
        SdkValue::L(list) => AttributeValue::L(
            list.iter()
                .map(|v| to_attribute_value(name, v))
                .collect::<Result<_, _>>()?,
        ),
        SdkValue::M(map) => AttributeValue::M(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_attribute_value(name, v)?)))
                .collect::<Result<_, RecordError>>()?,
        ),
        _ => return Err(RecordError::UnknownAttributeType(name.to_owned())),
    })
}

/// A record of the streams API as Lambda puts it in the event it sends.
pub fn to_lambda_record(
    record: &Record,
    stream_arn: &str,
    region: Option<&str>,
) -> Result<EventRecord, RecordError> {
    let source = record.dynamodb();
    let sequence_number = source
        .and_then(|r| r.sequence_number())
        .ok_or(RecordError::NoSequenceNumber)?;
    let image =
        |image: Option<&HashMap<String, SdkValue>>| image.map_or(Ok(Item::default()), to_item);
    let mut change = StreamRecord::default();
    if let Some(created) = source.and_then(|r| r.approximate_creation_date_time()) {
        change.approximate_creation_date_time =
            chrono::DateTime::from_timestamp(created.secs(), created.subsec_nanos())
                .unwrap_or_default();
    }
    change.keys = image(source.and_then(|r| r.keys()))?;
    change.new_image = image(source.and_then(|r| r.new_image()))?;
    change.old_image = image(source.and_then(|r| r.old_image()))?;
    change.sequence_number = Some(sequence_number.to_owned());
    change.size_bytes = source.and_then(|r| r.size_bytes()).unwrap_or_default();
    change.stream_view_type = source
        .and_then(|r| r.stream_view_type())
        .and_then(|view| match view.as_str() {
            "NEW_IMAGE" => Some(StreamViewType::NewImage),
            "OLD_IMAGE" => Some(StreamViewType::OldImage),
            "NEW_AND_OLD_IMAGES" => Some(StreamViewType::NewAndOldImages),
            "KEYS_ONLY" => Some(StreamViewType::KeysOnly),
            _ => None,
        });

    let mut lambda = EventRecord::default();
    lambda.aws_region = region
        .or(record.aws_region())
        .unwrap_or_default()
        .to_owned();
    lambda.change = change;
    lambda.event_id = record.event_id().unwrap_or_default().to_owned();
    lambda.event_name = record
        .event_name()
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    lambda.event_source = Some("aws:dynamodb".into());
    lambda.event_version = Some("1.1".into());
    lambda.event_source_arn = Some(stream_arn.to_owned());
    // Set on the records of items the table's TTL deleted.
    lambda.user_identity = record.user_identity().map(|identity| {
        let mut user = UserIdentity::default();
        user.type_ = identity.r#type().unwrap_or_default().to_owned();
        user.principal_id = identity.principal_id().unwrap_or_default().to_owned();
        user
    });
    Ok(lambda)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::dynamodb::Event;
    use aws_sdk_dynamodbstreams::primitives::{Blob, DateTime};
    use aws_sdk_dynamodbstreams::types::{
        Identity, OperationType, StreamRecord as SdkStreamRecord,
        StreamViewType as SdkStreamViewType,
    };

    fn sdk_image() -> HashMap<String, SdkValue> {
        HashMap::from([
            ("id".to_owned(), SdkValue::S("evt_1".into())),
            ("size".to_owned(), SdkValue::N("12.5".into())),
            ("final".to_owned(), SdkValue::Bool(true)),
            ("gone".to_owned(), SdkValue::Null(true)),
            ("body".to_owned(), SdkValue::B(Blob::new(vec![0, 159, 255]))),
            (
                "tags".to_owned(),
                SdkValue::Ss(vec!["a".into(), "b".into()]),
            ),
            (
                "codes".to_owned(),
                SdkValue::Ns(vec!["1".into(), "-2.5".into()]),
            ),
            (
                "list".to_owned(),
                SdkValue::L(vec![SdkValue::S("x".into()), SdkValue::N("3".into())]),
            ),
            (
                "map".to_owned(),
                SdkValue::M(HashMap::from([(
                    "inner".to_owned(),
                    SdkValue::M(HashMap::from([("ok".to_owned(), SdkValue::Bool(false))])),
                )])),
            ),
            (
                "blobs".to_owned(),
                SdkValue::Bs(vec![Blob::new(b"hi".to_vec())]),
            ),
        ])
    }

    /// The same image as Lambda's JSON event has it.
    fn lambda_image_json() -> serde_json::Value {
        serde_json::json!({
            "id": {"S": "evt_1"},
            "size": {"N": "12.5"},
            "final": {"BOOL": true},
            "gone": {"NULL": true},
            "body": {"B": "AJ//"},
            "tags": {"SS": ["a", "b"]},
            "codes": {"NS": ["1", "-2.5"]},
            "list": {"L": [{"S": "x"}, {"N": "3"}]},
            "map": {"M": {"inner": {"M": {"ok": {"BOOL": false}}}}},
            "blobs": {"BS": ["aGk="]},
        })
    }

    #[test]
    fn images_convert_as_lambda_sends_them() {
        let item = to_item(&sdk_image()).unwrap();
        let expected: Item = serde_json::from_value(lambda_image_json()).unwrap();
        assert_eq!(item, expected);
        assert_eq!(serde_json::to_value(&item).unwrap(), lambda_image_json());
    }

    fn sdk_record() -> Record {
        let change = SdkStreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs(1_700_000_000))
            .keys("id", SdkValue::S("evt_1".into()))
            .set_new_image(Some(sdk_image()))
            .sequence_number("1100000000017454423009")
            .size_bytes(321)
            .stream_view_type(SdkStreamViewType::NewImage)
            .build();
        Record::builder()
            .event_id("0123456789abcdef")
            .event_name(OperationType::Insert)
            .event_source("aws:dynamodb")
            .event_version("1.0")
            .aws_region("us-east-1")
            .dynamodb(change)
            .build()
    }

    #[test]
    fn records_convert_as_lambda_sends_them() {
        let stream = "arn:aws:dynamodb:eu-west-2:123456789012:table/events/stream/2025";
        let record = to_lambda_record(&sdk_record(), stream, Some("eu-west-2")).unwrap();
        // What Lambda sends for that record, read as a handler reads it.
        let expected: EventRecord = serde_json::from_value(serde_json::json!({
            "eventID": "0123456789abcdef",
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-2",
            "dynamodb": {
                "ApproximateCreationDateTime": 1_700_000_000.0,
                "Keys": {"id": {"S": "evt_1"}},
                "NewImage": lambda_image_json(),
                "SequenceNumber": "1100000000017454423009",
                "SizeBytes": 321,
                "StreamViewType": "NEW_IMAGE"
            },
            "eventSourceARN": stream
        }))
        .unwrap();
        assert_eq!(record, expected);

        // An event made of such records survives the JSON a real invocation goes through.
        let mut event = Event::default();
        event.records = vec![record];
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
    }

    #[test]
    fn ttl_deletions_keep_their_identity_and_the_region_falls_back_to_the_record() {
        let mut record = sdk_record();
        record.user_identity = Some(
            Identity::builder()
                .r#type("Service")
                .principal_id("dynamodb.amazonaws.com")
                .build(),
        );
        let lambda = to_lambda_record(&record, "arn", None).unwrap();
        assert_eq!(lambda.aws_region, "us-east-1");
        let identity = lambda.user_identity.unwrap();
        assert_eq!(identity.type_, "Service");
        assert_eq!(identity.principal_id, "dynamodb.amazonaws.com");
    }

    #[test]
    fn a_record_without_sequence_number_is_an_error() {
        let record = Record::builder().event_name(OperationType::Insert).build();
        assert_eq!(
            to_lambda_record(&record, "arn", None),
            Err(RecordError::NoSequenceNumber)
        );
    }
}
