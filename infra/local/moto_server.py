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
import sys
import threading
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
    finds nothing waits outside the lock, as moto's own long poll does."""
    import time

    from moto.sqs.models import SQSBackend

    lock = threading.Lock()
    receive = SQSBackend.receive_message

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


def dynamodb_requests_one_at_a_time() -> None:
    """Each DynamoDB request runs under one lock, so it is atomic as on AWS."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    def atomic(self: Any) -> Any:
        with lock:
            return call_action(self)

    DynamoHandler.call_action = atomic


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
    fifo_groups_wait_while_in_flight()
    fifo_receipt_handles_expire()
    receives_pick_atomically()
    fifo_deduplication_outlives_deletion()
    dynamodb_queries_read_their_partition()
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
