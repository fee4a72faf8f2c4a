"""What AWS would bill for the calls the emulator answers: `make bench` reads it to price a
delivery.

The emulator sees every call and every item before and after it, so it can bill as AWS does
(moto's own ConsumedCapacity is a constant):

- DynamoDB on demand: a write costs one write unit per started 1 KB of the larger of the item
  before and after it (a delete: the item deleted; a write whose condition failed: still
  billed), and one more write per global secondary index whose entry it puts, changes or
  deletes (two when the index key changes); a transaction bills twice. A read costs one read
  unit per started 4 KB (half when eventually consistent): GetItem per item (a missing item
  still costs one), Query and Scan on the total size of the items they evaluate before any
  filter, once per call. Sizes follow AWS's rules for item sizes.
- SQS: every request, each started 64 KB of payload a request of its own; receives that come
  back empty (the pollers' long polls) are counted apart, as the fixed cost they are.
- KMS and SES: calls per action.

The totals are served at `GET /_comps/meter` (JSON) and cleared by `POST /_comps/meter/reset`.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096
SQS_CHUNK_BYTES = 64 * 1024
INDEX_ENTRY_OVERHEAD = 100

# ---------------------------------------------------------------- sizes (AWS's rules)


def number_size(text: str) -> int:
    """A number takes 1 byte per two significant digits, plus 1."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return len(text)
    # Leading and trailing zeros are not significant (normalize drops the trailing ones).
    significant = len(value.normalize().as_tuple().digits)
    return math.ceil(significant / 2) + 1


def _binary_size(text: str) -> int:
    try:
        return len(base64.b64decode(text, validate=False))
    except (ValueError, TypeError):
        return len(text)


def value_size(value: dict[str, Any]) -> int:
    """The size of one attribute value in DynamoDB JSON (`{"S": "..."}`, `{"N": "1"}`, ...)."""
    (kind, content), = value.items()
    if kind == "S":
        return len(content.encode("utf-8"))
    if kind == "N":
        return number_size(content)
    if kind == "B":
        return _binary_size(content)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in content)
    if kind == "NS":
        return sum(number_size(n) for n in content)
    if kind == "BS":
        return sum(_binary_size(b) for b in content)
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in content)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in content.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size: its attribute names and values."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


# ---------------------------------------------------------------- what a write costs


class Index:
    """A global secondary index: its key attributes and what it projects."""

    def __init__(self, name: str, keys: list[str], projection: str, non_key: list[str]) -> None:
        self.name = name
        self.keys = keys
        self.projection = projection
        self.non_key = non_key

    def entry_size(self, item: dict[str, Any] | None, table_keys: list[str]) -> int | None:
        """The size of the item's entry in this index; None if the item has no entry."""
        if not item or any(k not in item for k in self.keys):
            return None
        return item_size(self.project(item, table_keys)) + INDEX_ENTRY_OVERHEAD

    def project(self, item: dict[str, Any], table_keys: list[str]) -> dict[str, Any]:
        if self.projection == "ALL":
            return dict(item)
        names = set(self.keys) | set(table_keys)
        if self.projection == "INCLUDE":
            names |= set(self.non_key)
        return {k: v for k, v in item.items() if k in names}


def index_write_units(
    index: Index, before: dict[str, Any] | None, after: dict[str, Any] | None, table_keys: list[str]
) -> int:
    """Writes to one index for a change of one item from `before` to `after`."""
    old = index.entry_size(before, table_keys)
    new = index.entry_size(after, table_keys)
    if old is None and new is None:
        return 0
    if old is None:
        return write_units(new or 0)
    if new is None:
        return write_units(old)
    assert before is not None and after is not None
    if any(before.get(k) != after.get(k) for k in index.keys):
        return write_units(old) + write_units(new)
    if index.project(before, table_keys) == index.project(after, table_keys):
        return 0
    return write_units(max(old, new))


def table_write_units(before: dict[str, Any] | None, after: dict[str, Any] | None, written: dict[str, Any] | None) -> int:
    """Write units of one Put/Update/Delete: the larger of the item before and after (a
    write whose condition failed leaves `after` as `before`; `written` is what a Put
    offered, billed even then)."""
    return write_units(max(item_size(before), item_size(after), item_size(written)))


# ---------------------------------------------------------------- the meter


class Meter:
    """Totals since the last reset, per service; safe across the server's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "_lock", threading.Lock()):
            self.dynamodb: dict[str, dict[str, float]] = {}
            self.sqs: dict[str, dict[str, int]] = {}
            self.calls: dict[str, int] = {}

    def add_dynamodb(self, table: str, what: str, amount: float) -> None:
        with self._lock:
            entry = self.dynamodb.setdefault(table, {})
            entry[what] = entry.get(what, 0) + amount

    def add_sqs(self, queue: str, what: str, amount: int = 1) -> None:
        with self._lock:
            entry = self.sqs.setdefault(queue, {})
            entry[what] = entry.get(what, 0) + amount

    def add_call(self, action: str) -> None:
        with self._lock:
            self.calls[action] = self.calls.get(action, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps({"dynamodb": self.dynamodb, "sqs": self.sqs, "calls": self.calls}))


METER = Meter()


def sqs_chunks(payload_bytes: int) -> int:
    """Each started 64 KB of payload is a request of its own."""
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def _message_bytes(body: str, attributes: dict[str, Any] | None) -> int:
    size = len(body.encode("utf-8"))
    for name, value in (attributes or {}).items():
        size += len(name.encode("utf-8")) + len(str(value.get("DataType", "")).encode("utf-8"))
        size += len(str(value.get("StringValue") or value.get("BinaryValue") or "").encode("utf-8"))
    return size


def meter_sqs(action: str, request: dict[str, Any], response: dict[str, Any] | None) -> None:
    queue = str(request.get("QueueUrl", "")).rsplit("/", 1)[-1] or "-"
    if action == "ReceiveMessage":
        messages = (response or {}).get("Messages") or []
        if not messages:
            METER.add_sqs(queue, "empty_receives")
            return
        payload = sum(_message_bytes(m.get("Body", ""), m.get("MessageAttributes")) for m in messages)
        METER.add_sqs(queue, "requests", sqs_chunks(payload))
        METER.add_sqs(queue, "messages_received", len(messages))
        return
    if action == "SendMessage":
        payload = _message_bytes(request.get("MessageBody", ""), request.get("MessageAttributes"))
        METER.add_sqs(queue, "messages_sent")
    elif action == "SendMessageBatch":
        entries = request.get("Entries") or []
        payload = sum(_message_bytes(e.get("MessageBody", ""), e.get("MessageAttributes")) for e in entries)
        METER.add_sqs(queue, "messages_sent", len(entries))
    else:
        payload = 0
    METER.add_sqs(queue, "requests", sqs_chunks(payload))
    METER.add_sqs(queue, action)


# ---------------------------------------------------------------- moto glue


def _table_schema(table: Any) -> tuple[list[str], list[Index]]:
    keys = [k for k in (table.hash_key_attr, table.range_key_attr) if k]
    indexes = [
        Index(
            index.name,
            [k["AttributeName"] for k in index.schema],
            (index.projection or {}).get("ProjectionType", "ALL"),
            list((index.projection or {}).get("NonKeyAttributes", [])),
        )
        for index in getattr(table, "global_indexes", [])
    ]
    return keys, indexes


def _lookup(backend: Any, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    try:
        table = backend.get_table(table_name)
        hash_value = key.get(table.hash_key_attr)
        if hash_value is None:
            return None
        range_value = key.get(table.range_key_attr) if table.range_key_attr else None
        item = table.get_item(DynamoType(hash_value), DynamoType(range_value) if range_value else None)
    except Exception:  # noqa: BLE001 - a missing table or bad key: the call itself answers
        return None
    return item.to_json()["Attributes"] if item else None


def _key_of(backend: Any, table_name: str, item: dict[str, Any]) -> dict[str, Any]:
    try:
        keys, _ = _table_schema(backend.get_table(table_name))
    except Exception:  # noqa: BLE001
        return {}
    return {k: item[k] for k in keys if k in item}


def _writes_of(action: str, body: dict[str, Any], backend: Any) -> list[tuple[str, dict[str, Any], dict[str, Any] | None, int]]:
    """(table, key, item offered by a Put, multiplier) for each item a write call touches."""
    writes: list[tuple[str, dict[str, Any], dict[str, Any] | None, int]] = []
    if action == "PutItem":
        item = body.get("Item") or {}
        writes.append((body["TableName"], _key_of(backend, body["TableName"], item), item, 1))
    elif action in ("UpdateItem", "DeleteItem"):
        writes.append((body["TableName"], body.get("Key") or {}, None, 1))
    elif action == "BatchWriteItem":
        for table, requests in (body.get("RequestItems") or {}).items():
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"].get("Item") or {}
                    writes.append((table, _key_of(backend, table, item), item, 1))
                elif "DeleteRequest" in request:
                    writes.append((table, request["DeleteRequest"].get("Key") or {}, None, 1))
    elif action == "TransactWriteItems":
        for entry in body.get("TransactItems") or []:
            for kind, op in entry.items():
                if kind == "Put":
                    item = op.get("Item") or {}
                    writes.append((op["TableName"], _key_of(backend, op["TableName"], item), item, 2))
                elif kind in ("Update", "Delete", "ConditionCheck"):
                    writes.append((op["TableName"], op.get("Key") or {}, None, 2))
    return writes


def _bill_write(backend: Any, table_name: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
                offered: dict[str, Any] | None, times: int) -> None:
    METER.add_dynamodb(table_name, "write_units", times * table_write_units(before, after, offered))
    try:
        keys, indexes = _table_schema(backend.get_table(table_name))
    except Exception:  # noqa: BLE001
        return
    for index in indexes:
        units = index_write_units(index, before, after, keys)
        if units:
            METER.add_dynamodb(f"{table_name}/{index.name}", "write_units", times * units)


# Items evaluated by the Query or Scan being handled (moto handles one DynamoDB request at a
# time, under the launcher's lock).
_evaluated: list[int] = []


def _evaluating(original: Callable[..., Any], filter_position: int, projection_name: str) -> Callable[..., Any]:
    """Wraps Table.query/scan (both take the projection 7th): AWS bills the items read
    before any filter, so the filter and projection are applied here, after measuring."""
    projection_position = 6

    def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        args = list(args)
        taken = []
        for position, name in ((filter_position, "filter_expression"), (projection_position, projection_name)):
            if len(args) > position:
                taken.append(args[position])
                args[position] = None
            else:
                taken.append(kwargs.pop(name, None))
        filter_expression, projection = taken
        results, scanned, last_key = original(self, *args, **kwargs)
        _evaluated.extend(item_size(r.to_json()["Attributes"]) for r in results)
        if filter_expression is not None:
            results = [r for r in results if filter_expression.expr(r)]
        if projection:
            results = [r.project(projection) for r in results]
        return results, scanned, last_key

    return wrapped


def meter_dynamodb(handler: Any, call: Callable[[], Any]) -> Any:
    action = handler._get_action()
    try:
        body = json.loads(handler.raw_body or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        return call()
    backend = handler.dynamodb_backend
    try:
        writes = _writes_of(action, body, backend)
    except (KeyError, TypeError, AttributeError):
        writes = []
    before = [_lookup(backend, t, k) for t, k, _, _ in writes]
    reads: list[tuple[str, dict[str, Any], bool, int]] = []
    if action == "GetItem":
        reads.append((body.get("TableName", ""), body.get("Key") or {}, bool(body.get("ConsistentRead")), 1))
    elif action == "BatchGetItem":
        for table, spec in (body.get("RequestItems") or {}).items():
            for key in spec.get("Keys") or []:
                reads.append((table, key, bool(spec.get("ConsistentRead")), 1))
    elif action == "TransactGetItems":
        for entry in body.get("TransactItems") or []:
            op = entry.get("Get") or {}
            reads.append((op.get("TableName", ""), op.get("Key") or {}, True, 2))
    _evaluated.clear()
    response = call()
    status = response[0] if isinstance(response, tuple) else 200
    try:
        error_type = json.loads(response[2]).get("__type", "") if status >= 400 else ""
    except (ValueError, TypeError, AttributeError, IndexError):
        error_type = "unknown"
    # Refused before it ran (validation, a missing table, access denied): not billed.
    billed = status < 400 or "ConditionalCheckFailed" in error_type or "TransactionCanceled" in error_type
    if billed:
        for (table, key, offered, times), old in zip(writes, before):
            new = _lookup(backend, table, key)
            _bill_write(backend, table, old, new, offered, times)
        for table, key, consistent, times in reads:
            size = item_size(_lookup(backend, table, key))
            METER.add_dynamodb(table, "read_units", times * read_units(size, consistent))
        if action in ("Query", "Scan"):
            table = body.get("TableName", "")
            index = body.get("IndexName")
            name = f"{table}/{index}" if index else table
            METER.add_dynamodb(name, "read_units", read_units(sum(_evaluated), bool(body.get("ConsistentRead"))))
    METER.add_dynamodb(body.get("TableName", "*") if action not in ("BatchWriteItem", "BatchGetItem", "TransactWriteItems", "TransactGetItems") else "*", action, 1)
    return response


def install() -> None:
    """Meters DynamoDB, SQS, KMS and SES calls and serves the totals."""
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler
    from moto.kms.responses import KmsResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.ses.responses import EmailResponse
    from moto.sqs.responses import SQSResponse

    Table.query = _evaluating(Table.query, 9, "projection_expressions")
    Table.scan = _evaluating(Table.scan, 3, "projection_expression")

    dynamodb_call = DynamoHandler.call_action
    DynamoHandler.call_action = lambda self: meter_dynamodb(self, lambda: dynamodb_call(self))

    sqs_call = SQSResponse.call_action

    def metered_sqs(self: Any) -> Any:
        response = sqs_call(self)
        try:
            request = json.loads(self.raw_body or b"{}")
            answer = json.loads(response[2]) if response[0] < 400 else None
        except (ValueError, TypeError, IndexError):
            return response
        if isinstance(request, dict) and response[0] < 400:
            meter_sqs(self._get_action(), request, answer if isinstance(answer, dict) else None)
        return response

    SQSResponse.call_action = metered_sqs

    for cls, service in ((KmsResponse, "kms"), (EmailResponse, "ses")):
        original = cls.call_action

        def counted(self: Any, _original: Any = original, _service: str = service) -> Any:
            METER.add_call(f"{_service}:{self._get_action()}")
            return _original(self)

        cls.call_action = counted

    dispatch = DomainDispatcherApplication.__call__

    def serve_meter(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if path == "/_comps/meter/reset" and environ.get("REQUEST_METHOD") == "POST":
            METER.reset()
            start_response("204 No Content", [])
            return [b""]
        if path == "/_comps/meter":
            body = json.dumps(METER.snapshot()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = serve_meter
