"""Verifies a captured delivery with the Standard Webhooks reference library (PyPI
`standardwebhooks`). Usage: python verify_standard.py <case.json> where case.json is
{"body_base64": "...", "headers": {"webhook-id": ..., "webhook-timestamp": ..., "webhook-signature": ...}, "secret": "whsec_..."}
Prints "valid" or "invalid: <reason>"."""
import base64
import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

case = json.load(open(sys.argv[1]))
body = base64.b64decode(case["body_base64"])
try:
    Webhook(case["secret"]).verify(body, case["headers"])
    print("valid")
except WebhookVerificationError as e:
    print(f"invalid: {e}")
