#!/usr/bin/env python3
"""The local AWS emulator: a pinned moto server, as strict as AWS about IAM.

    moto_server.py --port 4566 [--host 127.0.0.1] [--until-stdin-closes]

moto can check every call against the caller's IAM policies (stack.py turns that on once the
roles exist, through POST /moto-api/reset-auth). Out of the box it checks SQS and STS calls
against the resource they touch, but DynamoDB, KMS and SES calls only against the resource
"*": a least-privilege statement naming a table, a key or an SES identity would then be
refused locally although AWS allows it, and a transaction would be checked as one action.
This launcher teaches those handlers what AWS authorizes:

- DynamoDB: the table ARN (an index ARN for a Query/Scan on an index); every table of a
  batch; each item of TransactWriteItems/TransactGetItems as PutItem, UpdateItem,
  DeleteItem, ConditionCheckItem or GetItem on its table, as AWS does.
- KMS: the ARN of the key named by KeyId (aliases resolved).
- SQS: the batch calls as the actions IAM knows (SendMessageBatch is sqs:SendMessage,
  DeleteMessageBatch sqs:DeleteMessage, ChangeMessageVisibilityBatch
  sqs:ChangeMessageVisibility); moto would ask for actions that do not exist.
- SES: the ARN of the sending identity (the address if it is verified, else its domain),
  with the condition key ses:FromAddress.

DynamoDB applies each request atomically; moto's handlers do not (concurrent updates of one
item can lose an increment, and a query can fail with "dictionary changed size during
iteration" while another request writes). Here DynamoDB requests are handled one at a time.
And a Query of a table reads its partition only, as on DynamoDB (moto sorts the whole table
for each one, so long local runs slowed down as their tables grew).

One SQS gap is closed too: moto decides which FIFO message groups are busy once per
ReceiveMessage, so a long poll that began before another consumer received a group's message
could hand out a second message of that group while the first is in flight. AWS never does;
here a message waits while another message of its group is in flight. (Several messages of
one group may still come in one receive, as on AWS.) And on a FIFO queue only a message's
latest receipt handle changes its visibility, as on AWS, where an earlier one has expired:
moto accepts any handle the message ever had, so a late SDK retry of a visibility change
could make a message visible again while its next receive is being handled. Two receives
at once could each take a message of one group: here picking is atomic. And a FIFO queue
remembers a deduplication id for its 5 minutes even after that message was deleted.

And SQS refuses messages that moto takes; here they are refused as SQS refuses them, with
SQS's error codes and, where known, its messages (see "SQS: what SQS refuses to take"): a body
or string attribute holding a character XML does not allow (U+FFFF, control characters), an
empty body, a message over its queue's MaximumMessageSize in UTF-8 bytes with its attributes,
a batch over 1 MiB, a batch of no or over 10 entries or with malformed or repeated ids (the
delete and visibility batches too), a MessageGroupId or MessageDeduplicationId other than 1 to
128 ASCII letters, digits and punctuation, a negative DelaySeconds, and a FIFO batch entry
without its group or deduplication id.

moto answers a refused call in XML whatever the protocol; a JSON-protocol call (DynamoDB,
KMS, SQS) gets its refusal in JSON here, as AWS sends it, so the SDK shows its message
("... is not authorized to perform: sqs:ChangeMessageVisibility").

Every call is metered as AWS would bill it (`metering.py`, read by `make bench` at
`GET /_comps/meter`). The emails SES accepted are at `GET /_comps/emails`.

`--until-stdin-closes` stops the server when its standard input closes, so a test process
that started it takes it down however it ends.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import string
import sys
import threading
from collections.abc import Callable
from typing import Any

import metering

# AWS managed policies (e.g. AWSLambdaSQSQueueExecutionRole) are known by ARN, as on AWS.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

# (action without the service prefix, resource ARN, condition keys and their values)
Check = tuple[str, str, dict[str, str]]


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


def _table_arn(handler: Any, table: str, index: str | None = None) -> str:
    if table.startswith("arn:"):
        arn = table
    else:
        region = handler.region
        arn = f"arn:{_partition(region)}:dynamodb:{region}:{handler.current_account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def json_body(handler: Any) -> dict[str, Any]:
    """The JSON object a JSON-protocol call carries ({} when there is none)."""
    try:
        body = json.loads(handler.raw_body or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def dynamodb_checks(handler: Any) -> list[Check]:
    action = handler._get_action()
    body = json_body(handler)
    if not body:
        return [(action, "*", {})]
    if action in ("BatchWriteItem", "BatchGetItem"):
        tables = sorted((body.get("RequestItems") or {}).keys())
        return [(action, _table_arn(handler, t), {}) for t in tables] or [(action, "*", {})]
    if action in ("TransactWriteItems", "TransactGetItems"):
        checks: list[Check] = []
        for item in body.get("TransactItems") or []:
            for kind, op in (item or {}).items():
                if kind in TRANSACT_ACTIONS and isinstance(op, dict) and op.get("TableName"):
                    check = (TRANSACT_ACTIONS[kind], _table_arn(handler, op["TableName"]), {})
                    if check not in checks:
                        checks.append(check)
        return checks or [(action, "*", {})]
    table = body.get("TableName") or body.get("ResourceArn")
    if isinstance(table, str) and table:
        index = body.get("IndexName") if action in ("Query", "Scan") else None
        return [(action, _table_arn(handler, table, index), {})]
    return [(action, "*", {})]


def dynamodbstreams_checks(handler: Any) -> list[Check]:
    """Streams calls are checked on the stream (IAM's `dynamodb:` actions). GetRecords names
    it only through its shard iterator, which moto makes as `<stream arn>|1|<id>`."""
    action = handler._get_action()
    body = json_body(handler)
    arn = body.get("StreamArn") or str(body.get("ShardIterator") or "").split("|", 1)[0]
    return [(action, arn or "*", {})]


# IAM has no actions of their own for SQS's batch calls.
SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def sqs_checks(handler: Any) -> list[Check]:
    action = handler._get_action()
    return [(SQS_BATCH_ACTIONS.get(action, action), handler._determine_resource(), {})]


def kms_checks(handler: Any) -> list[Check]:
    action = handler._get_action()
    key_id = json_body(handler).get("KeyId")
    if not key_id:
        return [(action, "*", {})]
    try:
        backend = handler.kms_backend
        key = backend.keys[backend.any_id_to_key_id(key_id)]
        return [(action, key.arn, {})]
    except Exception:  # noqa: BLE001 - unknown key: the action itself answers NotFound
        return [(action, "*", {})]


def ses_checks(handler: Any) -> list[Check]:
    action = handler._get_action()
    if action not in ("SendEmail", "SendRawEmail", "SendTemplatedEmail", "SendBulkTemplatedEmail"):
        return [(action, "*", {})]
    source = (handler.querystring.get("Source") or [""])[0]
    address = source.rsplit("<", 1)[-1].rstrip(">").strip()
    if "@" not in address:
        return [(action, "*", {})]
    verified = set(handler.backend.email_identities)
    identity = address if address in verified else address.rsplit("@", 1)[1]
    region = handler.region
    arn = f"arn:{_partition(region)}:ses:{region}:{handler.current_account}:identity/{identity}"
    return [(action, arn, {"ses:FromAddress": address})]


def authorize_each(handler: Any, checks: list[Check]) -> None:
    """moto's own check (core/authorization.py and IAMRequestBase.check_action_permitted),
    once per (action, resource) that AWS checks, with the request's condition keys."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMPolicy, IAMRequest, PermissionResult

    if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        ActionAuthenticatorMixin.request_count += 1
        return
    path = handler.raw_path
    query = handler.uri.partition("?")[2]
    if query:
        path += "?" + query
    for i, (action, resource, conditions) in enumerate(checks):
        request = IAMRequest(
            account_id=handler.current_account,
            method=handler.method,
            path=path,
            data=handler.data,
            body=handler.raw_body,
            headers=handler.headers,
            action=action,
        )
        # For a form-encoded (query protocol) POST moto keeps only the parsed form, and its
        # re-encoding of it differs from the SDK's (SES emails with HTML): the signature
        # cannot be checked then. The caller is still the key's owner, checked above.
        if i == 0 and (handler.raw_body or handler.method == "GET"):
            request.check_signature()
        permitted = False
        for policy in request._access_key.collect_policies():
            result = IAMPolicy(policy).is_action_permitted(request._action, resource, None, conditions)
            if result == PermissionResult.DENIED:
                request._raise_access_denied()
            permitted = permitted or result == PermissionResult.PERMITTED
        if not permitted:
            request._raise_access_denied()


# moto's XML error codes and what an AWS JSON-protocol service calls them.
JSON_ERROR_TYPES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
}


def refusals_in_json(authorize: Any) -> Any:
    """Wraps a handler's authorization so that JSON-protocol calls are refused in JSON."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.exceptions import _RESTError as RESTError

    def wrapped(self: Any, resource: str = "*") -> None:
        try:
            authorize(self, resource)
        except RESTError as exc:
            if not self.headers.get("X-Amz-Target") or isinstance(exc, JsonRESTError):
                raise
            refusal = JsonRESTError(JSON_ERROR_TYPES.get(exc.error_type, exc.error_type), exc.message)
            refusal.code = 400
            raise refusal from exc

    return wrapped


def install_resource_checks() -> None:
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler
    from moto.kms.responses import KmsResponse
    from moto.ses.responses import EmailResponse
    from moto.sqs.responses import SQSResponse

    for cls, checks in (
        (DynamoHandler, dynamodb_checks),
        (DynamoDBStreamsHandler, dynamodbstreams_checks),
        (KmsResponse, kms_checks),
        (EmailResponse, ses_checks),
        (SQSResponse, sqs_checks),
    ):

        def authorize(self: Any, resource: str = "*", _checks=checks) -> None:  # noqa: ARG001
            authorize_each(self, _checks(self))

        cls._authenticate_and_authorize_normal_action = authorize
    for cls in (DynamoHandler, DynamoDBStreamsHandler, KmsResponse, SQSResponse):
        cls._authenticate_and_authorize_normal_action = refusals_in_json(cls._authenticate_and_authorize_normal_action)


def fifo_groups_wait_while_in_flight() -> None:
    """ReceiveMessage looks only at visible messages (`Queue.messages`); on a FIFO queue a
    message whose group has another message in flight is not available either."""
    from moto.sqs.models import Queue

    visible = Queue.messages.fget

    def available(self: Any) -> list[Any]:
        messages = visible(self)
        if not self.fifo_queue:
            return messages
        busy = {m.group_id for m in self.pending_messages if m.group_id and not m.visible}
        return [m for m in messages if m.group_id not in busy]

    Queue.messages = property(available)
    # The queue's message count still counts every visible message, as AWS does.
    Queue.approximate_number_of_messages = property(lambda self: len(visible(self)))


def sqs_attributes_computed_when_read() -> None:
    """moto builds every attribute of a queue, its three message counts among them (each a
    pass over every message the queue holds, hidden ones too), whenever one attribute is
    looked up: three times per message sent (ContentBasedDeduplication) and once per message
    received (MessageRetentionPeriod). With a few hundred messages hidden until their retry,
    as an endpoint that never answers leaves them, that was a quarter of the emulator's time
    (py-spy, 2026-12-03) and every other call waited behind it. Here an attribute is computed
    when it is read, so a lookup costs what it costs on AWS; GetQueueAttributes answers the
    same. And whether a message is visible or delayed is read off the clock directly (moto
    builds two datetimes to get the same milliseconds)."""
    import time
    from collections.abc import Iterator, Mapping

    from moto.core.utils import camelcase_to_underscores
    from moto.sqs.models import Message, Queue

    class Attributes(Mapping[str, Any]):
        def __init__(self, queue: Any) -> None:
            self._queue = queue
            names = list(Queue.BASE_ATTRIBUTES)
            if queue.fifo_queue:
                names += Queue.FIFO_ATTRIBUTES
            if queue.kms_master_key_id:
                names += Queue.KMS_ATTRIBUTES
            if queue.policy:
                names.append("Policy")
            if queue.redrive_policy:
                names.append("RedrivePolicy")
            self._names = list(dict.fromkeys(names))

        def __getitem__(self, name: str) -> Any:
            if name not in self._names:
                raise KeyError(name)
            if name == "Policy":
                return self._queue.policy
            if name == "RedrivePolicy":
                return json.dumps(self._queue.redrive_policy)
            value = getattr(self._queue, camelcase_to_underscores(name))
            return str(value).lower() if isinstance(value, bool) else value

        def __iter__(self) -> Iterator[str]:
            return iter(self._names)

        def __len__(self) -> int:
            return len(self._names)

    Queue.attributes = property(Attributes)  # type: ignore[assignment]
    Message.visible = property(lambda self: time.time() * 1000.0 > self.visible_at)  # type: ignore[assignment]
    Message.delayed = property(lambda self: time.time() * 1000.0 < self.delayed_until)  # type: ignore[assignment]


def fifo_receipt_handles_expire() -> None:
    """ChangeMessageVisibility on a FIFO queue with a receipt handle of an earlier receive is
    refused (the batch call reports that entry failed)."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import SQSBackend

    change = SQSBackend.change_message_visibility

    def latest_handle_only(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue and any(
            m.had_receipt_handle(receipt_handle) and m.receipt_handle != receipt_handle for m in queue._messages
        ):
            raise ReceiptHandleIsInvalid
        change(self, queue_name, receipt_handle, visibility_timeout)

    SQSBackend.change_message_visibility = latest_handle_only


def receives_pick_atomically() -> None:
    """moto picks a receive's messages and marks them received without a lock, so two
    receives at once could each take a message of one FIFO group (AWS never hands out a
    group's messages to two consumers at once). Here each pick is atomic; a receive that
    finds nothing waits outside the lock, as moto's own long poll does. And a batch sent is
    there whole or not at all for a receive, as SQS stores one SendMessageBatch in one
    request: moto adds its messages one by one and a long poll woken by the first took it
    alone (the deliver function was invoked for one message where AWS hands it the batch)."""
    import time

    from moto.sqs.models import SQSBackend

    lock = threading.Lock()
    receive = SQSBackend.receive_message
    send_batch = SQSBackend.send_message_batch

    def whole(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return send_batch(self, *args, **kwargs)

    SQSBackend.send_message_batch = whole

    def atomic(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        queue = self.get_queue(queue_name)
        while True:
            with lock:
                picked = receive(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            left = deadline - time.monotonic()
            if picked or left <= 0:
                return picked
            queue.wait_for_messages(min(1.0, left))

    SQSBackend.receive_message = atomic


def fifo_deduplication_outlives_deletion() -> None:
    """A FIFO queue drops a message whose deduplication id was sent in the last 5 minutes,
    whether or not the first one was deleted since (moto forgot ids once deleted)."""
    from moto.sqs.models import DEDUPLICATION_TIME_IN_SECONDS, Queue

    add = Queue.add_message

    def remembering(self: Any, message: Any) -> None:
        if self.fifo_queue and message.deduplication_id:
            seen = self.__dict__.setdefault("_dedup_sent_ms", {})
            now = message.sent_timestamp
            first = seen.get(message.deduplication_id)
            if first is not None and (now - first) / 1000 < DEDUPLICATION_TIME_IN_SECONDS:
                return
            seen[message.deduplication_id] = now
            if len(seen) > 100_000:  # forget the expired ones now and then
                for key in [k for k, t in seen.items() if (now - t) / 1000 >= DEDUPLICATION_TIME_IN_SECONDS]:
                    del seen[key]
        add(self, message)

    Queue.add_message = remembering


# ------------------------------------------------------------ SQS: what SQS refuses to take
#
# moto takes any message it is given; SQS refuses some, and the code that sends them must fail
# here as it fails on AWS. The rule families below (each installed in main()) add checks to two
# lists, which SQSResponse runs before moto's own handler, for the JSON and the query protocol
# alike (both reach the handler as `self.params`, parsed from the service model):
#
# - request checks `check(queue, params)` per action: raising refuses the whole call;
# - message checks `check(queue, message, in_batch)` on SendMessage's parameters and on each
#   SendMessageBatch entry (the same keys): raising refuses SendMessage, and puts a batch entry
#   in `Failed` (SenderFault true, the refusal's code and message) while the other entries are
#   sent, as SQS does.
#
# Refusals are moto's own SQSException (a ServiceException), which moto writes in the caller's
# protocol: for the JSON protocol with `__type` and the `x-amzn-query-error: <code>;Sender`
# header that the SDKs take the error code from (the Rust SDK matches
# "AWS.SimpleQueueService.BatchEntryIdsNotDistinct" there), as SQS does; XML for the query
# protocol. Unlike the IAM refusals above they need no `refusals_in_json`.
#
# Codes and messages are SQS's as recorded from AWS (LocalStack's AWS-validated snapshots of
# these calls, tests/aws/services/sqs/test_sqs.snapshot.json) or as SQS's users quote them;
# where no record was found the message is ours and says so. One difference remains: for
# InvalidParameterValue SQS's JSON `__type` is InvalidParameterValueException and moto's is
# InvalidParameterValue; the code SDKs read (the header) is the same.

SqsRequestCheck = Callable[[Any, dict[str, Any]], None]
SqsMessageCheck = Callable[[Any, dict[str, Any], bool], None]
SQS_REQUEST_CHECKS: dict[str, list[SqsRequestCheck]] = {}
SQS_MESSAGE_CHECKS: list[SqsMessageCheck] = []
SQS_CHECKED_ACTIONS = ("SendMessage", "SendMessageBatch", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")


def _sqs_refusal(code: str, message: str) -> Exception:
    from moto.sqs.exceptions import SQSException

    return SQSException(code, message)


def _sqs_checks_run() -> None:
    """Wraps SQSResponse's send and batch actions (once) so that they run the checks first."""
    from moto.core.responses import ActionResult
    from moto.core.utils import camelcase_to_underscores
    from moto.sqs.exceptions import SQSException
    from moto.sqs.responses import SQSResponse

    if getattr(SQSResponse, "_comps_checks_run", False):
        return
    SQSResponse._comps_checks_run = True

    def checked(self: Any, action: str, handle: Callable[[Any], Any]) -> Any:
        params = self.params
        queue = self.sqs_backend.get_queue(self._get_queue_name())
        for check in SQS_REQUEST_CHECKS.get(action, []):
            check(queue, params)
        if action == "SendMessage":
            for message_check in SQS_MESSAGE_CHECKS:
                message_check(queue, params, False)
        if action != "SendMessageBatch":
            return handle(self)
        entries = list(params.get("Entries") or [])
        failed: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for entry in entries:
            try:
                for message_check in SQS_MESSAGE_CHECKS:
                    message_check(queue, entry, True)
            except SQSException as refusal:
                failed.append(
                    {"Id": entry["Id"], "SenderFault": True, "Code": refusal.code, "Message": refusal.message}
                )
            else:
                kept.append(entry)
        if not failed:
            return handle(self)
        if kept:  # moto sends the others (and reports its own failures)
            params["Entries"] = kept
            result = handle(self)
        else:  # none left: moto would call the batch empty
            result = ActionResult({"Successful": [], "Failed": []})
        answer = result.result
        position = {entry["Id"]: i for i, entry in enumerate(entries)}
        answer["Failed"] = sorted(failed + list(answer.get("Failed") or []), key=lambda f: position.get(f["Id"], 0))
        return result

    for action in SQS_CHECKED_ACTIONS:
        name = camelcase_to_underscores(action)

        def run(self: Any, _action: str = action, _handle: Any = getattr(SQSResponse, name)) -> Any:
            return checked(self, _action, _handle)

        setattr(SQSResponse, name, run)


def _add_sqs_request_check(actions: tuple[str, ...], check: SqsRequestCheck) -> None:
    _sqs_checks_run()
    for action in actions:
        SQS_REQUEST_CHECKS.setdefault(action, []).append(check)


def _add_sqs_message_check(check: SqsMessageCheck) -> None:
    _sqs_checks_run()
    SQS_MESSAGE_CHECKS.append(check)


SQS_BATCH_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
SQS_BATCH_ENTRY_NAMES = {
    "SendMessageBatch": "SendMessageBatchRequestEntry",
    "DeleteMessageBatch": "DeleteMessageBatchRequestEntry",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibilityBatchRequestEntry",
}


def sqs_batch_entries_checked() -> None:
    """A batch call (send, delete, change visibility) holds 1 to 10 entries, whose ids are 1-80
    ASCII letters, digits, hyphens and underscores, all different; else SQS refuses the whole
    call: AWS.SimpleQueueService.EmptyBatchRequest, .TooManyEntriesInBatchRequest ("Maximum
    number of entries per request are 10. You have sent 11."), .InvalidBatchEntryId, or
    .BatchEntryIdsNotDistinct ("Id a repeated."), messages as AWS sends them (the empty batch's
    is moto's). moto checked some of this for SendMessageBatch only (and took any Unicode letter
    in an id); it let a visibility batch be empty, and the delete and visibility batches have 11
    entries or malformed ids, or (visibility) repeat one."""
    from moto.sqs.exceptions import BatchEntryIdsNotDistinct, InvalidBatchEntryId, TooManyEntriesInBatchRequest

    for action, entry_name in SQS_BATCH_ENTRY_NAMES.items():

        def entries(queue: Any, params: dict[str, Any], _entry_name: str = entry_name) -> None:  # noqa: ARG001
            batch = params.get("Entries") or []
            if not batch:
                raise _sqs_refusal("EmptyBatchRequest", f"There should be at least one {_entry_name} in the request.")
            if len(batch) > 10:
                raise TooManyEntriesInBatchRequest(len(batch))
            ids = [entry.get("Id") for entry in batch]
            if not all(isinstance(i, str) and SQS_BATCH_ENTRY_ID.fullmatch(i) for i in ids):
                raise InvalidBatchEntryId()
            seen: set[str] = set()
            for entry_id in ids:
                if entry_id in seen:
                    raise BatchEntryIdsNotDistinct(entry_id)
                seen.add(entry_id)

        _add_sqs_request_check((action,), entries)


# XML 1.0's characters (https://www.w3.org/TR/xml/#charsets), the only ones SQS takes.
SQS_FORBIDDEN_CHARACTER = re.compile(r"[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")
SQS_ALLOWED_CHARACTERS = "#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]"


def sqs_message_contents_checked() -> None:
    """SQS refuses a message body holding a character outside XML 1.0's: a control character
    other than tab, LF and CR, U+FFFE or U+FFFF (U+FFFD and everything beyond U+FFFF, emoji,
    are fine; a lone surrogate cannot come in UTF-8, but can in a JSON escape, and is refused).
    The code is InvalidMessageContents, the message SQS's ("Invalid binary character '#xFFFF'
    was found in the message body, the set of allowed characters is ..."). In a batch only that
    entry fails, in `Failed` with the same code; the other entries are sent (AWS-validated:
    LocalStack's test_batch_send_with_invalid_char_should_succeed). A String attribute's value
    is held to the same characters, but refused as InvalidParameterValue (AWS-validated too:
    test_invalid_string_attributes_cause_invalid_parameter_value_error; that message is ours).
    moto checked none of it; our JSON writer leaves U+FFFF in a string as it is, so a webhook
    payload holding one was accepted here and refused by SQS."""

    def character(found: re.Match[str]) -> str:
        return f"#x{ord(found.group()):X}"

    def contents(queue: Any, message: dict[str, Any], in_batch: bool) -> None:  # noqa: ARG001
        body = message.get("MessageBody")
        if isinstance(body, str) and (found := SQS_FORBIDDEN_CHARACTER.search(body)):
            raise _sqs_refusal(
                "InvalidMessageContents",
                f"Invalid binary character '{character(found)}' was found in the message body, "
                f"the set of allowed characters is {SQS_ALLOWED_CHARACTERS}.",
            )
        for name, value in (message.get("MessageAttributes") or {}).items():
            text = (value or {}).get("StringValue")
            if isinstance(text, str) and (found := SQS_FORBIDDEN_CHARACTER.search(text)):
                raise _sqs_refusal(
                    "InvalidParameterValue",
                    f"Invalid binary character '{character(found)}' was found in the value of message (user) "
                    f"attribute '{name}', the set of allowed characters is {SQS_ALLOWED_CHARACTERS}.",
                )

    _add_sqs_message_check(contents)


SQS_BATCH_LIMIT = 1_048_576  # bytes, whatever the queue's MaximumMessageSize


def sqs_message_bytes(message: dict[str, Any]) -> int:
    """A message's size as SQS counts it: the body's UTF-8 bytes, and for each attribute its
    name, its data type and its value (a binary value's decoded bytes). System attributes
    (AWSTraceHeader) do not count."""

    def size(value: Any) -> int:
        if isinstance(value, str):
            return len(value.encode("utf-8", "surrogatepass"))
        return len(value) if isinstance(value, (bytes, bytearray)) else 0

    total = size(message.get("MessageBody"))
    for name, value in (message.get("MessageAttributes") or {}).items():
        value = value or {}
        data = value.get("StringValue")
        data = data if data is not None else value.get("BinaryValue")
        total += size(name) + size(value.get("DataType")) + size(data)
    return total


def sqs_message_sizes_checked() -> None:
    """SQS refuses an empty body (MissingParameter, "The request must contain the parameter
    MessageBody."), and a message over its queue's MaximumMessageSize (InvalidParameterValue,
    "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.";
    in a batch that entry fails, "One or more parameters cannot be validated. ..."), counted
    in UTF-8 bytes with its attributes; and a batch whose messages total over 1 MiB, whatever
    the queue's limit (AWS.SimpleQueueService.BatchRequestTooLong, "Batch requests cannot be
    longer than 1048576 bytes. You have sent 1048577 bytes."): all AWS-validated. The limits are
    1 MiB since SQS raised them in August 2025 (MaximumMessageSize's default, moto's too; the
    API reference and botocore's model say so); a queue can set a lower MaximumMessageSize.
    moto took an empty body, counted characters instead of bytes and left the attributes out.
    How SQS answers an empty body in a batch was not found: here that entry fails."""
    from moto.sqs.exceptions import BatchRequestTooLong

    def total(queue: Any, params: dict[str, Any]) -> None:  # noqa: ARG001
        length = sum(sqs_message_bytes(entry) for entry in params.get("Entries") or [])
        if length > SQS_BATCH_LIMIT:
            raise BatchRequestTooLong(length)

    def size(queue: Any, message: dict[str, Any], in_batch: bool) -> None:
        if not message.get("MessageBody"):
            raise _sqs_refusal("MissingParameter", "The request must contain the parameter MessageBody.")
        limit = int(queue.maximum_message_size)
        if sqs_message_bytes(message) > limit:
            reason = "cannot be validated" if in_batch else "are invalid"
            raise _sqs_refusal(
                "InvalidParameterValue",
                f"One or more parameters {reason}. Reason: Message must be shorter than {limit} bytes.",
            )

    _add_sqs_request_check(("SendMessageBatch",), total)
    _add_sqs_message_check(size)


SQS_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + string.punctuation)


def sqs_message_parameters_checked() -> None:
    """A MessageGroupId (on any queue: standard queues take one for fair queueing) and a FIFO
    queue's MessageDeduplicationId are 1 to 128 ASCII letters, digits and punctuation
    (!"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~), else InvalidParameterValue, "Value group 1 for parameter
    MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and
    punctuation characters. 1 to 128 in length." A DelaySeconds is 0 to 900 ("Value -1 for
    parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.", moto's
    words for over 900; in a batch that entry fails, as moto did for over 900). In a
    FIFO batch an entry without MessageGroupId refuses the whole call with InvalidParameterValue
    "The request must contain the parameter MessageGroupId." (SendMessage says MissingParameter,
    as moto does), and one without MessageDeduplicationId on a queue without
    ContentBasedDeduplication with "The queue should either have ContentBasedDeduplication
    enabled or MessageDeduplicationId provided explicitly" (AWS-validated).
    moto already refuses a FIFO message without group or deduplication id, a DelaySeconds over
    900, and any DelaySeconds but 0 on a FIFO queue ("... Reason: The request include parameter
    that is not valid for this queue type."; in a batch moto refuses the whole call, and how SQS
    answers that was not found); it took any group or deduplication id, a negative delay, and
    answered a FIFO batch entry without group id with MissingParameter."""

    def valid_id(value: Any) -> bool:
        return isinstance(value, str) and 1 <= len(value) <= 128 and all(c in SQS_ID_CHARACTERS for c in value)

    def fifo_batch(queue: Any, params: dict[str, Any]) -> None:
        if not queue.fifo_queue:
            return
        entries = params.get("Entries") or []
        if any(entry.get("MessageGroupId") is None for entry in entries):
            raise _sqs_refusal("InvalidParameterValue", "The request must contain the parameter MessageGroupId.")
        content_based = str(queue.attributes.get("ContentBasedDeduplication")).lower() == "true"
        if not content_based and any(entry.get("MessageDeduplicationId") is None for entry in entries):
            raise _sqs_refusal(
                "InvalidParameterValue",
                "The queue should either have ContentBasedDeduplication enabled or "
                "MessageDeduplicationId provided explicitly",
            )

    def parameters(queue: Any, message: dict[str, Any], in_batch: bool) -> None:  # noqa: ARG001
        delay = message.get("DelaySeconds")
        if delay is not None and not 0 <= int(delay) <= 900:
            raise _sqs_refusal(
                "InvalidParameterValue",
                f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.",
            )
        for name in ("MessageGroupId", "MessageDeduplicationId"):
            value = message.get(name)
            if value is None or (name == "MessageDeduplicationId" and not queue.fifo_queue):
                continue
            if not valid_id(value):
                raise _sqs_refusal(
                    "InvalidParameterValue",
                    f"Value {value} for parameter {name} is invalid. Reason: {name} can only include "
                    "alphanumeric and punctuation characters. 1 to 128 in length.",
                )

    _add_sqs_request_check(("SendMessageBatch",), fifo_batch)
    _add_sqs_message_check(parameters)


def dynamodb_requests_one_at_a_time() -> None:
    """Each DynamoDB request runs under one lock, so it is atomic as on AWS."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def atomic(self: Any) -> Any:
        with lock:
            return call_action(self)

    DynamoHandler.call_action = atomic


def cancelled_transactions_keep_their_stream() -> None:
    """moto undoes a cancelled TransactWriteItems by putting back deep copies of its tables,
    stream shard included: a reader's iterator stays on the shard it was given, which gets no
    more records, so one cancelled transaction on the events table (an event posted twice at
    once) silenced fan-out until the gateway restarted; and the cancelled writes' records
    stayed on that shard. DynamoDB streams only what a transaction commits: the live shard is
    kept, without the records the cancelled writes added."""
    from moto.dynamodb.models import DynamoDBBackend

    transact_write_items = DynamoDBBackend.transact_write_items

    def keeping_streams(self: Any, transact_items: list[dict[str, Any]]) -> None:
        shards = {
            name: (table.stream_shard, len(table.stream_shard.items))
            for name, table in self.tables.items()
            if table.stream_shard is not None
        }
        try:
            transact_write_items(self, transact_items)
        except Exception:
            for name, (shard, length) in shards.items():
                table = self.tables.get(name)
                if table is not None and table.stream_shard is not shard:
                    del shard.items[length:]
                    shard.table = table
                    table.stream_shard = shard
            raise

    DynamoDBBackend.transact_write_items = keeping_streams


def dynamodb_queries_read_their_partition() -> None:
    """moto answers a Query of a table by sorting every item of the table and keeping those of
    the partition asked for, and then sizes every item of the partition (for the 1 MB page)
    before it tests the sort-key condition: its cost grows with the table and with the
    partition (a long local run slowed down as a webhook's log grew, to a standstill in
    `make chaos`). DynamoDB reads only the items that match the key condition, and counts
    only those towards the page; so does this."""
    from moto.dynamodb.models.table import Table

    query = Table.query

    def partition_only(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is None and hash_key is not None:
            range_comparison = args[0] if args else kwargs.get("range_comparison")
            range_objs = args[1] if len(args) > 1 else kwargs.get("range_objs")
            partition = self.items.get(hash_key)
            if partition is None:
                items: list[Any] = []
            elif self.range_key_attr:
                items = list(partition.values())
                if range_comparison:
                    items = [i for i in items if i.range_key.compare(range_comparison, range_objs)]
            else:
                items = [partition]
            self.all_items = lambda: items
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            self.__dict__.pop("all_items", None)

    Table.query = partition_only


def sent_emails_served() -> None:
    """`GET /_comps/emails`: the emails SES accepted, as `[{id, source, destinations, subject,
    body}]`. moto's own `/moto-api/data.json` serializes every backend of every account to
    answer that (its IAM backend alone holds the ~1,300 managed policies): a test polling it
    for an alert kept the emulator's one interpreter busy for seconds at a time, and every
    other call waited."""
    from moto.ses.models import Message
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    dispatch = DomainDispatcherApplication.__call__

    def serve_emails(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") != "/_comps/emails":
            return dispatch(self, environ, start_response)
        emails = [
            {
                "id": m.id,
                "source": m.source,
                "destinations": m.destinations,
                "subject": m.subject,
                "body": m.body,
            }
            for m in list(Message.instances_tracked)  # type: ignore[attr-defined]
        ]
        body = json.dumps(emails).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    DomainDispatcherApplication.__call__ = serve_emails


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--until-stdin-closes", action="store_true")
    args = parser.parse_args()

    install_resource_checks()
    metering.install()  # before the lock below, so each request is metered inside it
    sqs_attributes_computed_when_read()
    fifo_groups_wait_while_in_flight()
    fifo_receipt_handles_expire()
    receives_pick_atomically()
    fifo_deduplication_outlives_deletion()
    # SQS's refusals, whole-call checks and per-message checks each in this order.
    sqs_batch_entries_checked()
    sqs_message_contents_checked()
    sqs_message_sizes_checked()
    sqs_message_parameters_checked()
    dynamodb_queries_read_their_partition()
    cancelled_transactions_keep_their_stream()
    dynamodb_requests_one_at_a_time()
    sent_emails_served()
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request through one locked handler: under load that was a sixth
    # of the emulator's time (py-spy, 2026-11-28), for lines nobody reads.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    print(f"moto_server.py: listening on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    try:
        if args.until_stdin_closes:
            sys.stdin.read()
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
