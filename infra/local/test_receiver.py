"""The demo receiver (receiver.py) over real HTTPS: what it answers with and without a secret.

    .venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'   (make test runs it)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import os
import ssl
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import receiver  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()


def signed(body: bytes, secret: str, event_id: str = "evt_1") -> dict[str, str]:
    """Headers as the service signs a delivery."""
    ts = str(int(time.time()))
    key = base64.b64decode(secret[len("whsec_") :])
    std = base64.b64encode(hmac.new(key, f"{event_id}.{ts}.".encode() + body, hashlib.sha256).digest())
    return {
        "Content-Type": "application/json",
        "X-Comps-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-Comps-Timestamp": ts,
        "X-Comps-Event-Id": event_id,
        "webhook-id": event_id,
        "webhook-timestamp": ts,
        "webhook-signature": "v1," + std.decode(),
    }


class ReceiverTest(unittest.TestCase):
    def tempdir(self) -> Path:
        directory = tempfile.TemporaryDirectory(prefix="receiver-test-")
        self.addCleanup(directory.cleanup)
        return Path(directory.name)

    def start(self, statuses=(200,), secret=None, secret_file=None):
        self.dir = self.tempdir()
        with redirect_stderr(io.StringIO()):  # "created test CA ..."
            paths = receiver.ensure_certs(self.dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(paths["server"], paths["server_key"])
        server = receiver.Receiver(("127.0.0.1", 0), ctx, list(statuses), secret, secret_file)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.url = f"https://localhost:{server.server_address[1]}/hook"
        self.client = ssl.create_default_context(cafile=str(paths["ca"]))

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict, str]:
        printed = io.StringIO()
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with redirect_stdout(printed):
            try:
                with urllib.request.urlopen(request, context=self.client, timeout=10) as answer:
                    status, payload = answer.status, answer.read()
            except urllib.error.HTTPError as e:
                with e:
                    status, payload = e.code, e.read()
        return status, json.loads(payload), printed.getvalue()

    def test_without_a_secret_nothing_is_checked_and_statuses_are_followed(self):
        self.start(statuses=(503, 200))
        body = b'{"id":"evt_1"}'
        self.assertEqual(self.post(body, signed(body, OTHER))[0], 503)
        status, payload, printed = self.post(body, signed(body, OTHER))
        self.assertEqual((status, payload), (200, {"received": True}))
        self.assertNotIn("signature:", printed)

    def test_a_valid_signature_is_answered_from_statuses(self):
        self.start(secret=SECRET)
        body = b'{"id":"evt_1","data":{}}'
        status, payload, printed = self.post(body, signed(body, SECRET))
        self.assertEqual((status, payload), (200, {"received": True}))
        self.assertIn("signature: valid\n", printed)
        self.assertIn("standard-webhooks signature: valid (", printed)
        self.assertIn("-> 200", printed)

    def test_a_signature_that_does_not_verify_is_refused_with_401_saying_why(self):
        self.start(statuses=(200,), secret=SECRET)
        body = b'{"id":"evt_1"}'
        status, payload, printed = self.post(body, signed(body, OTHER))
        self.assertEqual(status, 401)
        self.assertIn("X-Comps-Signature", payload["error"])
        self.assertIn("signature: INVALID", printed)
        self.assertIn("-> 401  refused: X-Comps-Signature: INVALID (a rotated secret?", printed)
        # A body changed after signing is refused too.
        status, _, printed = self.post(b'{"id":"evt_2"}', signed(body, SECRET))
        self.assertEqual(status, 401)
        # A refused request takes no status from --statuses: the next valid one gets the first.
        status, _, printed = self.post(body, signed(body, SECRET))
        self.assertEqual(status, 200)
        self.assertIn("request #1 for evt_1", printed)

    def test_an_old_webhook_timestamp_is_refused(self):
        self.start(secret=SECRET)
        body = b"{}"
        headers = signed(body, SECRET)
        old = str(int(time.time()) - 3600)
        key = base64.b64decode(SECRET[len("whsec_") :])
        headers["webhook-timestamp"] = old
        headers["webhook-signature"] = "v1," + base64.b64encode(
            hmac.new(key, f"evt_1.{old}.".encode() + body, hashlib.sha256).digest()
        ).decode()
        status, payload, _ = self.post(body, headers)
        self.assertEqual(status, 401)
        self.assertIn("webhook-signature: valid signature, but timestamp", payload["error"])

    def test_the_secret_file_is_read_for_every_request(self):
        secret_file = self.tempdir() / "secret"
        self.start(secret_file=secret_file)
        body = b'{"id":"evt_1"}'
        status, payload, printed = self.post(body, signed(body, SECRET))
        self.assertEqual(status, 401)
        self.assertIn("no secret in", payload["error"])
        secret_file.write_text(SECRET + "\n")
        self.assertEqual(self.post(body, signed(body, SECRET))[0], 200)
        secret_file.write_text(OTHER)  # rotated: the old signature no longer verifies
        self.assertEqual(self.post(body, signed(body, SECRET))[0], 401)
        self.assertEqual(self.post(body, signed(body, OTHER))[0], 200)
        os.unlink(secret_file)
        self.assertEqual(self.post(body, signed(body, OTHER))[0], 401)


if __name__ == "__main__":
    unittest.main()
