//! The emulator bills AWS calls as AWS would (`infra/local/metering.py`): checked on a table
//! of this test's own, through the real SDK, so the other tests' traffic does not count.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType,
};
use integration_tests::{unique, Harness};
use serde_json::Value;

async fn meter_of(h: &Harness, table: &str) -> Value {
    let all: Value = reqwest::get(format!("{}/_comps/meter", h.endpoint))
        .await
        .expect("meter")
        .json()
        .await
        .expect("meter JSON");
    serde_json::json!({
        "table": all["dynamodb"][table],
        "index": all["dynamodb"][format!("{table}/by_owner")],
    })
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

#[tokio::test]
async fn writes_and_reads_are_billed_as_aws_bills_them() {
    let h = Harness::get();
    let ddb = aws_sdk_dynamodb::Client::new(&h.sdk_config().await);
    let table = unique("metered");
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .unwrap()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("id"))
        .attribute_definitions(attribute("owner"))
        .key_schema(key("id", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("by_owner")
                .key_schema(key("owner", KeyType::Hash))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::KeysOnly)
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table");

    // 2 + 1 (index) for an item of 1.1 KB; 1 for a small one without the index key; 1 for
    // a refused conditional put; 1 + 1 (index) for an update that gives it the index key.
    let big = "p".repeat(1100);
    ddb.put_item()
        .table_name(&table)
        .item("id", s("a"))
        .item("owner", s("o"))
        .item("pad", s(&big))
        .send()
        .await
        .unwrap();
    ddb.put_item()
        .table_name(&table)
        .item("id", s("b"))
        .send()
        .await
        .unwrap();
    let refused = ddb
        .put_item()
        .table_name(&table)
        .item("id", s("b"))
        .condition_expression("attribute_not_exists(id)")
        .send()
        .await;
    assert!(refused.is_err());
    ddb.update_item()
        .table_name(&table)
        .key("id", s("b"))
        .update_expression("SET #o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s("o"))
        .send()
        .await
        .unwrap();
    // Reads: 1 (consistent, 1.1 KB) + 0.5 (eventual, missing) + 1 (a consistent query
    // that reads item a and filters it out) + 0.5 (the index, eventual).
    ddb.get_item()
        .table_name(&table)
        .key("id", s("a"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    ddb.get_item()
        .table_name(&table)
        .key("id", s("none"))
        .send()
        .await
        .unwrap();
    let filtered = ddb
        .query()
        .table_name(&table)
        .key_condition_expression("id = :a")
        .filter_expression("attribute_not_exists(#p)")
        .expression_attribute_names("#p", "pad")
        .expression_attribute_values(":a", s("a"))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(filtered.count(), 0);
    assert_eq!(filtered.scanned_count(), 1);
    let by_owner = ddb
        .query()
        .table_name(&table)
        .index_name("by_owner")
        .key_condition_expression("#o = :o")
        .expression_attribute_names("#o", "owner")
        .expression_attribute_values(":o", s("o"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_owner.count(), 2);

    let meter = meter_of(h, &table).await;
    assert_eq!(meter["table"]["write_units"], 5.0, "{meter}");
    assert_eq!(meter["index"]["write_units"], 2.0, "{meter}");
    assert_eq!(meter["table"]["read_units"], 2.5, "{meter}");
    assert_eq!(meter["index"]["read_units"], 0.5, "{meter}");
    assert_eq!(meter["table"]["PutItem"], 3.0, "{meter}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reads_each_webhook_and_opens_its_secret_once() {
    use integration_tests::fault_proxy::FaultProxy;
    use integration_tests::lambda_events::{sqs_event, sqs_record};
    use integration_tests::{Api, Receiver, Reply};
    use webhooks_shared::domain::clock::Timestamp;
    use webhooks_shared::domain::ids;
    use webhooks_shared::domain::model::{DeliveryMessage, DeliveryRef};

    let h = Harness::get();
    let api = Api::new();
    let receiver = Receiver::start(vec![Reply::status(200)]).await;
    // A type never posted through the API: only this test's messages reach the webhook.
    let topic = "winner.prize_choice_made";
    let webhook = api.webhook_for(&receiver.url, &[topic]).await;
    // A deliverer of the test's own, whose AWS calls a proxy of its own counts.
    let proxy = FaultProxy::start(&h.endpoint).await;
    let ca_file = h.ca.pem_path.display().to_string();
    let config = h.config(&[
        ("WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1"),
        ("WEBHOOKS_EXTRA_CA_FILE", &ca_file),
    ]);
    let sdk = h.sdk_config_via(&proxy.url).await;
    let deliverer = deliver::wire(&sdk, &config).expect("deliverer");

    let event_ids: Vec<String> = (0..3).map(|_| unique("evt-batch-read")).collect();
    let records = event_ids
        .iter()
        .enumerate()
        .map(|(i, event_id)| {
            let delivery = DeliveryRef {
                delivery_id: ids::new_manual_delivery_id(),
                webhook_id: webhook.clone().into(),
                event_id: event_id.clone().into(),
                event_type: topic.into(),
                resource_id: None,
                manual: false,
            };
            let body = serde_json::json!({"id": event_id, "type": topic, "data": {}}).to_string();
            let message = DeliveryMessage::with_body(delivery, Timestamp::now(), &body);
            let json = serde_json::to_string(&message).expect("json");
            sqs_record(
                &format!("m{i}"),
                None,
                &json,
                "arn:aws:sqs:eu-west-1:1:q.fifo",
            )
        })
        .collect();
    proxy.take_counts();
    let answer = deliverer.handle_batch(sqs_event(records)).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    for event_id in &event_ids {
        assert_eq!(receiver.requests_for(event_id).len(), 1, "{event_id}");
    }
    let counts = proxy.take_counts();
    let reads = counts.get("dynamodb:GetItem").map_or(0, |c| c.calls);
    assert_eq!(
        reads, 1,
        "the webhook read once for three deliveries: {counts:?}"
    );
    // A cold deliverer opens the webhook's secret once, however many deliveries need it.
    let decrypts = counts.get("kms:Decrypt").map_or(0, |c| c.calls);
    assert_eq!(decrypts, 1, "the secret opened once: {counts:?}");
}
