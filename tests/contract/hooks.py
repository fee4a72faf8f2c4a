"""schemathesis hooks for tests/tests/contract, which loads this file (SCHEMATHESIS_HOOKS).

A rule of the document that JSON Schema cannot state is kept out of the generated requests
rather than allowed as a refusal, so every check stays as strict on the rest: the same event
id twice in one batch with different content (type or data) is a 400, as the description of
`POST /api/v1/events/batch` says. A generated batch that repeats an id with other content
loses the repeated id (`null`: one is assigned), and stays a batch the API must accept.
"""

import json

import schemathesis


@schemathesis.hook("map_body").apply_to(method="POST", path="/api/v1/events/batch")
def one_content_per_event_id(context, body):
    events = body.get("events") if isinstance(body, dict) else None
    if not isinstance(events, list):
        return body
    content_of = {}
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            continue
        content = json.dumps([event.get("type"), event.get("data")])
        if content_of.setdefault(event["id"], content) != content:
            event["id"] = None
    return body
