"""The local emulator streams what DynamoDB streams (moto_server.py's DynamoDB fixes).

Starts the launcher (launcher_case.py) and calls it with boto3. Run from the repository root:
    .venv/bin/python -m unittest infra/local/test_dynamodb_strict.py -v
"""

from __future__ import annotations

import sys
import unittest
import uuid
from pathlib import Path
from typing import Any

try:
    import boto3
    from botocore.exceptions import ClientError
except ImportError:  # outside the project's .venv
    boto3 = None

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launcher_case import LauncherCase  # noqa: E402

REGION = "eu-west-2"


@unittest.skipIf(boto3 is None, "boto3 is not installed (run with .venv/bin/python)")
class DynamoDbStreams(LauncherCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.dynamodb = cls.client("dynamodb", region_name=REGION)
        cls.streams = cls.client("dynamodbstreams", region_name=REGION)

    def table_with_stream(self) -> tuple[str, str]:
        name = f"t-{uuid.uuid4().hex[:12]}"
        out = self.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        return name, out["TableDescription"]["LatestStreamArn"]

    def put(self, table: str, pk: str) -> dict[str, Any]:
        return {"Put": {"TableName": table, "Item": {"pk": {"S": pk}}, "ConditionExpression": "attribute_not_exists(pk)"}}

    def test_a_reader_sees_the_writes_after_a_cancelled_transaction_and_none_of_its_own(self) -> None:
        table, stream = self.table_with_stream()
        self.dynamodb.put_item(TableName=table, Item={"pk": {"S": "first"}})
        shard = self.streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = self.streams.get_shard_iterator(
            StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        read = self.streams.get_records(ShardIterator=iterator)
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in read["Records"]], ["first"])

        # "cancelled" is written, then "first" fails its condition: the transaction is undone.
        with self.assertRaises(ClientError) as caught:
            self.dynamodb.transact_write_items(TransactItems=[self.put(table, "cancelled"), self.put(table, "first")])
        self.assertEqual(caught.exception.response["Error"]["Code"], "TransactionCanceledException")
        self.dynamodb.put_item(TableName=table, Item={"pk": {"S": "after"}})

        # The reader goes on with the iterator it was given, as Lambda's poller does.
        read = self.streams.get_records(ShardIterator=read["NextShardIterator"])
        self.assertEqual([r["dynamodb"]["Keys"]["pk"]["S"] for r in read["Records"]], ["after"])
        # A new reader from the start sees the committed writes only.
        iterator = self.streams.get_shard_iterator(
            StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in self.streams.get_records(ShardIterator=iterator)["Records"]]
        self.assertEqual(keys, ["first", "after"])
        self.assertNotIn("Item", self.dynamodb.get_item(TableName=table, Key={"pk": {"S": "cancelled"}}))


if __name__ == "__main__":
    unittest.main()
