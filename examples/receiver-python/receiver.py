#!/usr/bin/env python3
"""An example receiver of comps-webhooks deliveries: Python 3.11, standard library only.

    WEBHOOK_SECRET=whsec_... python3 receiver.py --cert cert.pem --key key.pem [--port 8443] [--host 127.0.0.1]

It serves HTTPS itself (deliveries are only ever sent to https:// URLs) and, for every POST:

1. refuses a webhook-timestamp more than 5 minutes from now, either way (400);
2. verifies webhook-signature (Standard Webhooks) over the id, the timestamp and the raw
   body (401 if no signature matches);
3. answers 200 without processing again an event id it has already processed, so the
   service stops retrying a delivery it has in fact received;
4. processes the event (here: prints it) and answers 200.

X-Comps-Signature covers the body only, so it cannot tell a replay from a delivery:
verify webhook-signature, which covers webhook-id and webhook-timestamp too.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOLERANCE_SECONDS = 5 * 60
# Events are at most 256 KiB; their envelope adds little.
MAX_BODY_BYTES = 1024 * 1024
# How long an event id is remembered. The service retries for about 30 minutes, but an
# admin can redeliver an event for as long as its delivery log keeps it (30 days by default).
REMEMBER_FOR_SECONDS = 24 * 60 * 60
# A client gets this long for its handshake, and for each read of its request.
CLIENT_TIMEOUT_SECONDS = 10


class Refusal(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def signing_key(secret: str) -> bytes:
    """The HMAC key: the base64-decoded part of the secret after `whsec_`."""
    secret = secret.strip()
    if not secret.startswith("whsec_"):
        raise ValueError("the signing secret must start with whsec_")
    try:
        key = base64.b64decode(secret[len("whsec_"):], validate=True)
    except binascii.Error as error:
        raise ValueError(f"the signing secret is not whsec_ followed by base64: {error}") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def verify(key: bytes, headers, body: bytes, now: float) -> str:
    """Checks the timestamp (400 if stale) then the signature (401 if wrong); returns webhook-id."""

    def header(name: str) -> str:
        value = headers.get(name)
        if not value:
            raise Refusal(400, f"missing {name} header")
        return value

    msg_id = header("webhook-id")
    timestamp = header("webhook-timestamp")
    signatures = header("webhook-signature")

    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Refusal(400, "webhook-timestamp is not Unix seconds")
    skew = abs(int(now) - int(timestamp))
    if skew > TOLERANCE_SECONDS:
        raise Refusal(400, f"webhook-timestamp is {skew} s from now (tolerance {TOLERANCE_SECONDS} s)")

    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    # One valid signature is enough (during a rotation there may be several).
    # compare_digest takes as long whatever the first differing character.
    for signature in signatures.split(" "):
        version, _, value = signature.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            return msg_id
    raise Refusal(401, "invalid signature")


class Processed:
    """Event ids already processed, and when.

    In memory for this example: a restart forgets them and two instances do not share them.
    In production keep them in a durable store with a TTL (a DynamoDB conditional put with a
    TTL attribute, Redis `SET NX EX`, a unique key in your database), written with the
    effects of the event.
    """

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_time(self, event_id: str, now: float) -> bool:
        """Records `event_id` as processed; False if it already was."""
        with self._lock:
            self._seen = {i: at for i, at in self._seen.items() if now - at < REMEMBER_FOR_SECONDS}
            if event_id in self._seen:
                return False
            self._seen[event_id] = now
            return True


class Handler(BaseHTTPRequestHandler):
    # Set on the class by main().
    key: bytes = b""
    processed = Processed()
    timeout = CLIENT_TIMEOUT_SECONDS

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        # The signature is over the exact bytes received: read them raw, parse afterwards.
        try:
            length = int(self.headers.get("content-length", ""))
        except ValueError:
            return self.answer(411, {"error": "content-length required"})
        if length < 0:
            return self.answer(400, {"error": "bad content-length"})
        if length > MAX_BODY_BYTES:
            return self.answer(413, {"error": "body too large"})
        body = self.rfile.read(length)
        now = time.time()
        try:
            event_id = verify(self.key, self.headers, body, now)
            try:
                event = json.loads(body)
            except ValueError:
                # Signed by the service, so well-formed; checked all the same before it is recorded.
                raise Refusal(400, "body is not JSON") from None
        except Refusal as refusal:
            print(f"refused {refusal.status} {refusal}", flush=True)
            return self.answer(refusal.status, {"error": str(refusal)})
        if not self.processed.first_time(event_id, now):
            print(f"duplicate {event_id}", flush=True)
            return self.answer(200, {"ok": True, "duplicate": True})
        # Process the event here. If that can fail, forget the id again and answer 500, so the
        # service retries; keep the work short (the service waits 10 s) or queue it.
        data = json.dumps(event.get("data"), separators=(",", ":"))
        print(f"accepted {event_id} {event.get('type')} {data}", flush=True)
        self.answer(200, {"ok": True})

    def answer(self, status: int, body: dict) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        print(f"{self.address_string()} {format % args}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="An example comps-webhooks receiver (HTTPS).")
    parser.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    parser.add_argument("--key", required=True, help="its private key (PEM)")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    try:
        Handler.key = signing_key(os.environ.get("WEBHOOK_SECRET", ""))
    except ValueError as error:
        print(f"receiver-python: set WEBHOOK_SECRET to the webhook's signing secret: {error}", file=sys.stderr)
        return 1

    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(args.cert, args.key)
        server = ThreadingHTTPServer((args.host, args.port), Handler)
    except (OSError, ssl.SSLError) as error:
        print(f"receiver-python: {error}", file=sys.stderr)
        return 1
    # The handshake happens on the first read, in the connection's own thread: a slow client
    # does not hold up the others.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    host, port = server.server_address[:2]
    print(f"listening on https://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
