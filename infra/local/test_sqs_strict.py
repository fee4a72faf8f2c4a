"""The local emulator refuses the SQS messages SQS refuses (moto_server.py's SQS checks).

Unlike the pure tests here these start the launcher (launcher_case.py: moto_server.py on a
free port, for the class; a few seconds) and call it with boto3 (JSON protocol, as the Rust SDK), plus a raw JSON
request as the Rust SDK sends it and a query-protocol one. Run from the repository root with
    .venv/bin/python -m unittest infra/local/test_sqs_strict.py -v
"""

from __future__ import annotations

import json
import sys
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

try:
    import boto3
    from botocore.exceptions import ClientError
except ImportError:  # outside the project's .venv
    boto3 = None

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launcher_case import LAUNCHER, LauncherCase  # noqa: E402
REGION = "eu-west-2"
MIB = 1_048_576
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
ALLOWED = "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"


@unittest.skipIf(boto3 is None, "boto3 is not installed (run with .venv/bin/python)")
class SqsStrict(LauncherCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.sqs = cls.client("sqs", region_name=REGION)

    # ------------------------------------------------------------------ helpers

    def queue(self, fifo: bool = False, **attributes: str) -> str:
        name = f"q-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
        if fifo:
            attributes["FifoQueue"] = "true"
        return self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]

    def refused(self, code: str, call: Any, **kwargs: Any) -> str:
        """Calls and expects the call refused (HTTP 400) with `code`; returns the message."""
        with self.assertRaises(ClientError) as caught:
            call(**kwargs)
        error = caught.exception.response["Error"]
        self.assertEqual(error["Code"], code, error)
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
        self.assertEqual(error.get("Type"), "Sender", error)
        return error["Message"]

    def assert_nothing_sent(self, queue_url: str) -> None:
        self.assertNotIn("Messages", self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10))

    def received_bodies(self, queue_url: str, count: int) -> list[str]:
        bodies: list[str] = []
        deadline = time.monotonic() + 5
        while len(bodies) < count and time.monotonic() < deadline:
            answer = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            for message in answer.get("Messages", []):
                bodies.append(message["Body"])
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def raw(self, target: str, body: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
        """A JSON-protocol request as the Rust SDK sends it (`body` as bytes, so a U+FFFF can go
        as its raw UTF-8, as serde_json writes it)."""
        request = urllib.request.Request(
            self.endpoint + "/",
            data=body,
            headers={
                "X-Amz-Target": f"AmazonSQS.{target}",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/sqs/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
        )
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), json.loads(error.read())

    # ------------------------------------------------------------ message contents

    def test_a_body_holding_u_ffff_is_refused_as_invalid_message_contents(self) -> None:
        queue_url = self.queue()
        message = self.refused(
            "InvalidMessageContents", self.sqs.send_message, QueueUrl=queue_url, MessageBody='{"name":"a\uffffb"}'
        )
        self.assertEqual(
            message,
            "Invalid binary character '#xFFFF' was found in the message body, "
            f"the set of allowed characters is {ALLOWED}.",
        )
        for character in ("\ufffe", "\x00", "\x08", "\x0b", "\x0c", "\x1b", "\x1f"):
            with self.subTest(character=hex(ord(character))):
                message = self.refused(
                    "InvalidMessageContents", self.sqs.send_message, QueueUrl=queue_url, MessageBody=f"x{character}y"
                )
                self.assertIn(f"'#x{ord(character):X}'", message)
        self.assert_nothing_sent(queue_url)

    def test_u_fffd_emoji_and_the_other_allowed_characters_are_sent(self) -> None:
        queue_url = self.queue()
        bodies = [
            "replacement \ufffd",
            "emoji \U0001f600 and \U0010ffff",
            "tab\tnew line\ncarriage return\r",
            "edges \x20\ud7ff\ue000",
        ]
        for body in bodies:
            self.sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        self.assertCountEqual(self.received_bodies(queue_url, len(bodies)), bodies)

    def test_a_raw_json_request_holding_u_ffff_is_refused_in_the_shape_the_rust_sdk_reads(self) -> None:
        queue_url = self.queue()
        body = b'{"QueueUrl":"' + queue_url.encode() + b'","MessageBody":"{\\"name\\":\\"a\xef\xbf\xbfb\\"}"}'
        status, headers, answer = self.raw("SendMessage", body)
        self.assertEqual(status, 400)
        self.assertEqual(headers.get("x-amzn-query-error"), "InvalidMessageContents;Sender")
        self.assertEqual(answer["__type"], "com.amazonaws.sqs#InvalidMessageContents")
        self.assertIn("'#xFFFF'", answer["message"])
        # A lone surrogate can come only as a JSON escape; SQS takes none.
        lone_surrogate = json.dumps({"QueueUrl": queue_url, "MessageBody": "a\ud800"}).encode()
        status, _, answer = self.raw("SendMessage", lone_surrogate)
        self.assertEqual((status, answer["__type"]), (400, "com.amazonaws.sqs#InvalidMessageContents"))
        # The same character sent as it should be is taken.
        status, _, _ = self.raw("SendMessage", json.dumps({"QueueUrl": queue_url, "MessageBody": "a\ufffd"}).encode())
        self.assertEqual(status, 200)

    def test_a_query_protocol_request_holding_u_ffff_is_refused_in_xml(self) -> None:
        queue_url = self.queue()
        form = {"Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": queue_url, "MessageBody": "a\uffffb"}
        request = urllib.request.Request(
            self.endpoint + "/",
            data=urllib.parse.urlencode(form).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/sqs/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
        )
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        self.assertEqual(caught.exception.code, 400)
        self.assertIn(b"<Code>InvalidMessageContents</Code>", caught.exception.read())

    def test_a_string_attribute_holding_u_ffff_is_refused_as_invalid_parameter_value(self) -> None:
        queue_url = self.queue()
        message = self.refused(
            "InvalidParameterValue",
            self.sqs.send_message,
            QueueUrl=queue_url,
            MessageBody="ok",
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "a\uffffb"}},
        )
        self.assertIn("'#xFFFF'", message)
        self.assertIn("'kind'", message)
        self.sqs.send_message(
            QueueUrl=queue_url,
            MessageBody="ok",
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "a\ufffd\U0001f600b"}},
        )

    def test_a_batch_entry_holding_u_ffff_fails_alone(self) -> None:
        queue_url = self.queue()
        answer = self.sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": "a", "MessageBody": "first"},
                {"Id": "b", "MessageBody": "bad \uffff"},
                {"Id": "c", "MessageBody": "third \ufffd"},
                {
                    "Id": "d",
                    "MessageBody": "x",
                    "MessageAttributes": {"k": {"DataType": "String", "StringValue": "\x01"}},
                },
            ],
        )
        self.assertEqual([s["Id"] for s in answer["Successful"]], ["a", "c"])
        failed = {f["Id"]: f for f in answer["Failed"]}
        self.assertEqual(list(failed), ["b", "d"])
        self.assertEqual(failed["b"]["Code"], "InvalidMessageContents")
        self.assertTrue(failed["b"]["SenderFault"])
        self.assertIn("'#xFFFF'", failed["b"]["Message"])
        self.assertEqual(failed["d"]["Code"], "InvalidParameterValue")
        self.assertCountEqual(self.received_bodies(queue_url, 2), ["first", "third \ufffd"])

    def test_a_batch_whose_entries_all_fail_answers_each_in_failed(self) -> None:
        queue_url = self.queue()
        answer = self.sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": "a", "MessageBody": "\uffff"}, {"Id": "b", "MessageBody": "\x00"}]
        )
        self.assertEqual(answer.get("Successful", []), [])
        self.assertEqual(
            [(f["Id"], f["Code"]) for f in answer["Failed"]],
            [("a", "InvalidMessageContents"), ("b", "InvalidMessageContents")],
        )

    # ------------------------------------------------------------------- sizes

    def test_an_empty_body_is_refused(self) -> None:
        queue_url = self.queue()
        message = self.refused("MissingParameter", self.sqs.send_message, QueueUrl=queue_url, MessageBody="")
        self.assertEqual(message, "The request must contain the parameter MessageBody.")
        answer = self.sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": "a", "MessageBody": ""}, {"Id": "b", "MessageBody": "b"}]
        )
        self.assertEqual([(f["Id"], f["Code"]) for f in answer["Failed"]], [("a", "MissingParameter")])
        self.assertEqual([s["Id"] for s in answer["Successful"]], ["b"])

    def test_a_message_over_the_queues_maximum_message_size_in_bytes_is_refused(self) -> None:
        queue_url = self.queue(MaximumMessageSize="1024")
        self.sqs.send_message(QueueUrl=queue_url, MessageBody="a" * 1024)
        send = self.sqs.send_message
        message = self.refused("InvalidParameterValue", send, QueueUrl=queue_url, MessageBody="a" * 1025)
        self.assertEqual(
            message, "One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes."
        )
        # Bytes, not characters: 513 "é" are 1026 bytes.
        self.refused("InvalidParameterValue", self.sqs.send_message, QueueUrl=queue_url, MessageBody="é" * 513)
        self.sqs.send_message(QueueUrl=queue_url, MessageBody="é" * 512)
        # Attributes count: name, data type and value (a binary value's bytes, not its base64).
        attribute = {"k": {"DataType": "String", "StringValue": "x"}}  # 8 bytes
        self.sqs.send_message(QueueUrl=queue_url, MessageBody="a" * 1016, MessageAttributes=attribute)
        self.refused(
            "InvalidParameterValue",
            self.sqs.send_message,
            QueueUrl=queue_url,
            MessageBody="a" * 1017,
            MessageAttributes=attribute,
        )
        binary = {"b": {"DataType": "Binary", "BinaryValue": bytes(range(18))}}  # 1 + 6 + 18 bytes
        self.sqs.send_message(QueueUrl=queue_url, MessageBody="a" * 999, MessageAttributes=binary)
        self.refused(
            "InvalidParameterValue", send, QueueUrl=queue_url, MessageBody="a" * 1000, MessageAttributes=binary
        )

    def test_an_oversized_batch_entry_fails_alone(self) -> None:
        queue_url = self.queue(MaximumMessageSize="1024")
        answer = self.sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": "fits", "MessageBody": "a" * 1024}, {"Id": "over", "MessageBody": "é" * 513}],
        )
        self.assertEqual([s["Id"] for s in answer["Successful"]], ["fits"])
        self.assertEqual(
            answer["Failed"],
            [
                {
                    "Id": "over",
                    "SenderFault": True,
                    "Code": "InvalidParameterValue",
                    "Message": "One or more parameters cannot be validated. "
                    "Reason: Message must be shorter than 1024 bytes.",
                }
            ],
        )

    def test_a_batch_over_1_mib_in_all_is_refused(self) -> None:
        queue_url = self.queue()
        attribute = {"k": {"DataType": "String", "StringValue": "x"}}  # 8 bytes
        entries = [
            {"Id": "1", "MessageBody": "a" * (MIB - 8), "MessageAttributes": attribute},  # 1 MiB exactly
            {"Id": "2", "MessageBody": "a"},
        ]
        message = self.refused(
            "AWS.SimpleQueueService.BatchRequestTooLong",
            self.sqs.send_message_batch,
            QueueUrl=queue_url,
            Entries=entries,
        )
        self.assertEqual(message, "Batch requests cannot be longer than 1048576 bytes. You have sent 1048577 bytes.")
        answer = self.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries[:1])
        self.assertEqual([s["Id"] for s in answer["Successful"]], ["1"])

    # ----------------------------------------------------------- batch entries

    def test_a_batch_holds_1_to_10_entries(self) -> None:
        queue_url = self.queue()
        self.sqs.send_message(QueueUrl=queue_url, MessageBody="m")
        receipt = self.sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["ReceiptHandle"]
        calls = {
            "SendMessage": (self.sqs.send_message_batch, lambda i: {"Id": f"e{i}", "MessageBody": "x"}),
            "DeleteMessage": (self.sqs.delete_message_batch, lambda i: {"Id": f"e{i}", "ReceiptHandle": receipt}),
            "ChangeMessageVisibility": (
                self.sqs.change_message_visibility_batch,
                lambda i: {"Id": f"e{i}", "ReceiptHandle": receipt, "VisibilityTimeout": 5},
            ),
        }
        for name, (call, entry) in calls.items():
            with self.subTest(call=name):
                message = self.refused(
                    "AWS.SimpleQueueService.EmptyBatchRequest", call, QueueUrl=queue_url, Entries=[]
                )
                self.assertEqual(message, f"There should be at least one {name}BatchRequestEntry in the request.")
                message = self.refused(
                    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                    call,
                    QueueUrl=queue_url,
                    Entries=[entry(i) for i in range(11)],
                )
                self.assertEqual(message, "Maximum number of entries per request are 10. You have sent 11.")
        ten = [calls["SendMessage"][1](i) for i in range(10)]
        answer = self.sqs.send_message_batch(QueueUrl=queue_url, Entries=ten)
        self.assertEqual(len(answer["Successful"]), 10)

    def test_batch_entry_ids_are_1_to_80_letters_digits_hyphens_underscores(self) -> None:
        queue_url = self.queue()
        # Each entry's fields other than its id (a receipt handle of its own).
        calls = {
            "send": (self.sqs.send_message_batch, lambda n: {"MessageBody": f"x{n}"}),
            "delete": (self.sqs.delete_message_batch, lambda n: {"ReceiptHandle": f"r{n}"}),
            "visibility": (
                self.sqs.change_message_visibility_batch,
                lambda n: {"ReceiptHandle": f"r{n}", "VisibilityTimeout": 5},
            ),
        }
        for name, (call, fields) in calls.items():
            for bad in ("a:b", "", "a" * 81, "caf\u00e9", "a b", "a.b"):
                with self.subTest(call=name, id=bad):
                    message = self.refused(
                        "AWS.SimpleQueueService.InvalidBatchEntryId",
                        call,
                        QueueUrl=queue_url,
                        Entries=[{"Id": "ok", **fields(1)}, {"Id": bad, **fields(2)}],
                    )
                    self.assertEqual(
                        message,
                        "A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
                        "It can be at most 80 letters long.",
                    )
            with self.subTest(call=name, id="repeated"):
                message = self.refused(
                    "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                    call,
                    QueueUrl=queue_url,
                    Entries=[{"Id": "a", **fields(1)}, {"Id": "b", **fields(2)}, {"Id": "a", **fields(3)}],
                )
                self.assertEqual(message, "Id a repeated.")
        answer = self.sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": "A-z_09" + "x" * 74, "MessageBody": "x"}, {"Id": "-", "MessageBody": "y"}],
        )
        self.assertEqual(len(answer["Successful"]), 2)

    def test_a_raw_json_batch_refusal_carries_the_code_the_rust_sdk_matches(self) -> None:
        queue_url = self.queue()
        entries = [{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]
        request = json.dumps({"QueueUrl": queue_url, "Entries": entries}).encode()
        status, headers, answer = self.raw("SendMessageBatch", request)
        self.assertEqual(status, 400)
        self.assertEqual(headers.get("x-amzn-query-error"), "AWS.SimpleQueueService.BatchEntryIdsNotDistinct;Sender")
        self.assertEqual(answer["__type"], "com.amazonaws.sqs#BatchEntryIdsNotDistinct")

    # ------------------------------------------------------- message parameters

    def test_a_fifo_message_needs_its_group_and_deduplication_ids(self) -> None:
        queue_url = self.queue(fifo=True)
        message = self.refused(
            "MissingParameter", self.sqs.send_message, QueueUrl=queue_url, MessageBody="x", MessageDeduplicationId="d1"
        )
        self.assertEqual(message, "The request must contain the parameter MessageGroupId.")
        message = self.refused(
            "InvalidParameterValue", self.sqs.send_message, QueueUrl=queue_url, MessageBody="x", MessageGroupId="g"
        )
        self.assertEqual(
            message,
            "The queue should either have ContentBasedDeduplication enabled or "
            "MessageDeduplicationId provided explicitly",
        )
        # In a batch one such entry refuses the whole call, as InvalidParameterValue.
        good = {"Id": "ok", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d2"}
        message = self.refused(
            "InvalidParameterValue",
            self.sqs.send_message_batch,
            QueueUrl=queue_url,
            Entries=[good, {"Id": "nogroup", "MessageBody": "x", "MessageDeduplicationId": "d3"}],
        )
        self.assertEqual(message, "The request must contain the parameter MessageGroupId.")
        message = self.refused(
            "InvalidParameterValue",
            self.sqs.send_message_batch,
            QueueUrl=queue_url,
            Entries=[good, {"Id": "nodedup", "MessageBody": "x", "MessageGroupId": "g"}],
        )
        self.assertIn("ContentBasedDeduplication", message)
        self.assert_nothing_sent(queue_url)
        # With content-based deduplication a deduplication id is not needed.
        content_based = self.queue(fifo=True, ContentBasedDeduplication="true")
        answer = self.sqs.send_message_batch(
            QueueUrl=content_based, Entries=[{"Id": "a", "MessageBody": "x", "MessageGroupId": "g"}]
        )
        self.assertEqual([s["Id"] for s in answer["Successful"]], ["a"])

    def test_group_and_deduplication_ids_are_1_to_128_ascii_letters_digits_punctuation(self) -> None:
        send = self.sqs.send_message
        fifo = self.queue(fifo=True)
        standard = self.queue()
        for bad in ("", "a" * 129, "group 123", "caf\u00e9", "tab\t"):
            with self.subTest(id=bad):
                message = self.refused(
                    "InvalidParameterValue",
                    self.sqs.send_message,
                    QueueUrl=fifo,
                    MessageBody="x",
                    MessageGroupId=bad,
                    MessageDeduplicationId="d",
                )
                self.assertEqual(
                    message,
                    f"Value {bad} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include "
                    "alphanumeric and punctuation characters. 1 to 128 in length.",
                )
                message = self.refused(
                    "InvalidParameterValue",
                    self.sqs.send_message,
                    QueueUrl=fifo,
                    MessageBody="x",
                    MessageGroupId="g",
                    MessageDeduplicationId=bad,
                )
                self.assertIn("for parameter MessageDeduplicationId is invalid", message)
                # A standard queue takes a group id (fair queues), held to the same rule.
                self.refused(
                    "InvalidParameterValue", send, QueueUrl=standard, MessageBody="x", MessageGroupId=bad
                )
        send(QueueUrl=fifo, MessageBody="x", MessageGroupId="a" * 128, MessageDeduplicationId="b" * 128)
        send(QueueUrl=fifo, MessageBody="x", MessageGroupId=PUNCTUATION, MessageDeduplicationId="Az09" + PUNCTUATION)
        self.sqs.send_message(QueueUrl=standard, MessageBody="x", MessageGroupId="tenant-1")
        answer = self.sqs.send_message_batch(
            QueueUrl=fifo,
            Entries=[
                {"Id": "bad", "MessageBody": "x", "MessageGroupId": "g h", "MessageDeduplicationId": "d1"},
                {"Id": "ok", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "d2"},
            ],
        )
        self.assertEqual([(f["Id"], f["Code"]) for f in answer["Failed"]], [("bad", "InvalidParameterValue")])
        self.assertEqual([s["Id"] for s in answer["Successful"]], ["ok"])

    def test_delay_seconds_is_0_to_900_and_not_per_message_on_a_fifo_queue(self) -> None:
        send = self.sqs.send_message
        standard = self.queue()
        for bad in (-1, 901):
            with self.subTest(delay=bad):
                message = self.refused(
                    "InvalidParameterValue", send, QueueUrl=standard, MessageBody="x", DelaySeconds=bad
                )
                self.assertEqual(
                    message,
                    f"Value {bad} for parameter DelaySeconds is invalid. "
                    "Reason: DelaySeconds must be >= 0 and <= 900.",
                )
        self.sqs.send_message(QueueUrl=standard, MessageBody="x", DelaySeconds=900)
        answer = self.sqs.send_message_batch(
            QueueUrl=standard,
            Entries=[
                {"Id": "neg", "MessageBody": "x", "DelaySeconds": -1},
                {"Id": "ok", "MessageBody": "x", "DelaySeconds": 0},
            ],
        )
        self.assertEqual([(f["Id"], f["Code"]) for f in answer["Failed"]], [("neg", "InvalidParameterValue")])
        fifo = self.queue(fifo=True)
        message = self.refused(
            "InvalidParameterValue",
            self.sqs.send_message,
            QueueUrl=fifo,
            MessageBody="x",
            MessageGroupId="g",
            MessageDeduplicationId="d1",
            DelaySeconds=2,
        )
        self.assertEqual(
            message,
            "Value 2 for parameter DelaySeconds is invalid. "
            "Reason: The request include parameter that is not valid for this queue type.",
        )
        send(QueueUrl=fifo, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="d2", DelaySeconds=0)

    def test_a_valid_fifo_batch_is_sent_in_order(self) -> None:
        queue_url = self.queue(fifo=True)
        entries = [
            {
                "Id": f"m{i}",
                "MessageBody": json.dumps({"n": i, "text": "caf\u00e9 \ufffd \U0001f600"}, ensure_ascii=False),
                "MessageGroupId": f"webhook-{i % 2}",
                "MessageDeduplicationId": f"event-{i}",
                "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "delivery"}},
            }
            for i in range(10)
        ]
        answer = self.sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        self.assertEqual(answer.get("Failed", []), [])
        self.assertEqual([s["Id"] for s in answer["Successful"]], [e["Id"] for e in entries])
        received = [json.loads(body)["n"] for body in self.received_bodies(queue_url, 10)]
        self.assertCountEqual(received, range(10))
        for group in (0, 1):
            in_group = [n for n in received if n % 2 == group]
            self.assertEqual(in_group, sorted(in_group))

    # ------------------------------------------------------------ queue attributes

    def test_queue_attributes_are_answered_as_moto_builds_them(self) -> None:
        queue_url = self.queue(fifo=True, VisibilityTimeout="60")
        for i in range(3):
            self.sqs.send_message(
                QueueUrl=queue_url, MessageBody=f"m{i}", MessageGroupId=f"g{i}", MessageDeduplicationId=f"d{i}"
            )
        self.assertEqual(len(self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)["Messages"]), 1)
        every = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        self.assertEqual(every["ApproximateNumberOfMessages"], "2")
        self.assertEqual(every["ApproximateNumberOfMessagesNotVisible"], "1")
        self.assertEqual(every["ApproximateNumberOfMessagesDelayed"], "0")
        self.assertEqual(every["FifoQueue"], "true")
        self.assertEqual(every["ContentBasedDeduplication"], "false")
        self.assertEqual(every["VisibilityTimeout"], "60")
        self.assertIn("QueueArn", every)
        some = self.sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible", "FifoQueue"]
        )["Attributes"]
        self.assertEqual(some, {"ApproximateNumberOfMessagesNotVisible": "1", "FifoQueue": "true"})


class SqsAttributesComputedWhenRead(unittest.TestCase):
    """In process: one attribute looked up reads that attribute only (moto counted every
    message three times for each one sent)."""

    def test_a_lookup_does_not_count_the_queues_messages(self) -> None:
        sys.path.insert(0, str(LAUNCHER.parent))
        try:
            import moto_server
            from moto.sqs.models import Queue
        except ImportError:
            self.skipTest("moto is not installed (run with .venv/bin/python)")
        moto_server.sqs_attributes_computed_when_read()
        queue = Queue("q.fifo", region="eu-west-2", account_id="123456789012", FifoQueue="true")

        def counted(_queue: Any) -> int:
            raise AssertionError("the queue's messages were counted")

        count = Queue.approximate_number_of_messages_not_visible
        Queue.approximate_number_of_messages_not_visible = property(counted)  # type: ignore[assignment]
        try:
            self.assertEqual(queue.attributes.get("ContentBasedDeduplication"), "false")
            self.assertEqual(queue.attributes["MessageRetentionPeriod"], 345600)
            with self.assertRaises(AssertionError):
                dict(queue.attributes)
        finally:
            Queue.approximate_number_of_messages_not_visible = count  # type: ignore[assignment]



class SqsBatchSentWhole(unittest.TestCase):
    """In process: a long poll woken by a batch's first message receives the whole batch
    (moto adds a batch's messages one by one; SQS stores a batch in one request)."""

    def test_a_long_poll_woken_by_a_batch_receives_it_whole(self) -> None:
        sys.path.insert(0, str(LAUNCHER.parent))
        try:
            import moto_server
            from moto.sqs.models import Queue, sqs_backends
        except ImportError:
            self.skipTest("moto is not installed (run with .venv/bin/python)")
        moto_server.receives_pick_atomically()
        backend = sqs_backends["123456789012"][REGION]
        name = f"q-{uuid.uuid4().hex[:12]}.fifo"
        backend.create_queue(name, FifoQueue="true")
        add = Queue.add_message

        def slowly(queue: Any, message: Any) -> None:
            add(queue, message)
            time.sleep(0.05)  # the sender lets the woken poll run between two messages

        received: list[Any] = []
        polling = threading.Thread(target=lambda: received.extend(backend.receive_message(name, 10, 10, 30)))
        Queue.add_message = slowly  # type: ignore[method-assign]
        try:
            polling.start()
            time.sleep(0.3)  # the poll is waiting
            entries = {
                f"m{i}": {
                    "Id": f"m{i}",
                    "MessageBody": f"m{i}",
                    "MessageAttributes": {},
                    "DelaySeconds": 0,
                    "MessageGroupId": f"g{i}",
                    "MessageDeduplicationId": f"d{i}",
                }
                for i in range(10)
            }
            backend.send_message_batch(name, entries)
            polling.join(15)
        finally:
            Queue.add_message = add  # type: ignore[method-assign]
        self.assertEqual(sorted(m.body for m in received), sorted(f"m{i}" for i in range(10)))


if __name__ == "__main__":
    unittest.main()
