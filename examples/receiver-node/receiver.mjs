// An example receiver of comps-webhooks deliveries: Node.js 20, no dependencies.
//
//   WEBHOOK_SECRET=whsec_… node receiver.mjs --cert cert.pem --key key.pem [--port 8443] [--host 127.0.0.1]
//
// It serves HTTPS itself (deliveries are only ever sent to https:// URLs) and, for every POST:
//  1. refuses a webhook-timestamp more than 5 minutes from now, either way (400);
//  2. verifies webhook-signature (Standard Webhooks) over the id, the timestamp and the raw
//     body (401 if no signature matches);
//  3. answers 200 without processing again an event id it has already processed, so the
//     service stops retrying a delivery it has in fact received;
//  4. processes the event (here: prints it) and answers 200.
//
// X-Comps-Signature covers the body only, so it cannot tell a replay from a delivery:
// verify webhook-signature, which covers webhook-id and webhook-timestamp too.

import { createHmac, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:https";
import { parseArgs } from "node:util";

const TOLERANCE_SECONDS = 5 * 60;
// Events are at most 256 KiB; their envelope adds little.
const MAX_BODY_BYTES = 1024 * 1024;
// How long an event id is remembered. The service retries for about 30 minutes, but an
// admin can redeliver an event for as long as its delivery log keeps it (30 days by default).
const REMEMBER_FOR_MS = 24 * 60 * 60 * 1000;

class Refusal extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The HMAC key: the base64-decoded part of the secret after `whsec_`. */
function signingKey(secret) {
  const encoded = (secret ?? "").trim();
  if (!encoded.startsWith("whsec_")) return null;
  const base64 = encoded.slice("whsec_".length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return null;
  return Buffer.from(base64, "base64");
}

/** Checks the timestamp (400 if stale) then the signature (401 if wrong); returns webhook-id. */
function verify(key, headers, body, nowSeconds) {
  const header = (name) => {
    const value = headers[name];
    if (typeof value !== "string" || value === "") {
      throw new Refusal(400, `missing ${name} header`);
    }
    return value;
  };
  const id = header("webhook-id");
  const timestamp = header("webhook-timestamp");
  const signatures = header("webhook-signature");

  if (!/^[0-9]+$/.test(timestamp)) {
    throw new Refusal(400, "webhook-timestamp is not Unix seconds");
  }
  const skew = Math.abs(nowSeconds - Number(timestamp));
  if (skew > TOLERANCE_SECONDS) {
    throw new Refusal(400, `webhook-timestamp is ${skew} s from now (tolerance ${TOLERANCE_SECONDS} s)`);
  }

  const expected = createHmac("sha256", key)
    .update(`${id}.${timestamp}.`)
    .update(body)
    .digest();
  // One valid signature is enough (during a rotation there may be several).
  const valid = signatures.split(" ").some((signature) => {
    if (!signature.startsWith("v1,")) return false;
    const given = Buffer.from(signature.slice(3), "base64");
    // timingSafeEqual throws on different lengths; the length of a MAC is no secret.
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!valid) throw new Refusal(401, "invalid signature");
  return id;
}

// Event ids already processed, and when. In memory for this example: a restart forgets them
// and two instances do not share them. In production keep them in a durable store with a TTL
// (a DynamoDB conditional put with a TTL attribute, Redis `SET NX EX`, a unique key in your
// database), written with the effects of the event.
const processed = new Map();

/** Records `eventId` as processed; false if it already was. */
function firstTime(eventId, nowMs) {
  for (const [id, at] of processed) {
    if (nowMs - at >= REMEMBER_FOR_MS) processed.delete(id);
  }
  if (processed.has(eventId)) return false;
  processed.set(eventId, nowMs);
  return true;
}

function answer(response, status, body) {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify(body));
}

function handle(key, request, body, response) {
  const now = Date.now();
  let eventId;
  let event;
  try {
    eventId = verify(key, request.headers, body, Math.floor(now / 1000));
    try {
      event = JSON.parse(body.toString("utf8"));
    } catch {
      // Signed by the service, so well-formed; checked all the same before it is recorded.
      throw new Refusal(400, "body is not JSON");
    }
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    console.log(`refused ${error.status} ${error.message}`);
    return answer(response, error.status, { error: error.message });
  }
  if (!firstTime(eventId, now)) {
    console.log(`duplicate ${eventId}`);
    return answer(response, 200, { ok: true, duplicate: true });
  }
  // Process the event here. If that can fail, forget the id again and answer 500, so the
  // service retries; keep the work short (the service waits 10 s) or queue it.
  console.log(`accepted ${eventId} ${event.type} ${JSON.stringify(event.data)}`);
  answer(response, 200, { ok: true });
}

function main() {
  const usage =
    "usage: WEBHOOK_SECRET=whsec_… node receiver.mjs --cert <cert.pem> --key <key.pem> [--port 8443] [--host 127.0.0.1]";
  let options;
  try {
    ({ values: options } = parseArgs({
      options: {
        cert: { type: "string" },
        key: { type: "string" },
        port: { type: "string", default: "8443" },
        host: { type: "string", default: "127.0.0.1" },
      },
    }));
  } catch (error) {
    throw new Error(`${error.message}\n${usage}`);
  }
  if (!options.cert || !options.key) throw new Error(`--cert and --key are required\n${usage}`);
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--port ${JSON.stringify(options.port)} is not a port number`);
  }
  const key = signingKey(process.env.WEBHOOK_SECRET);
  if (!key || key.length === 0) {
    throw new Error("set WEBHOOK_SECRET to the webhook's signing secret (whsec_ followed by base64)");
  }

  const server = createServer(
    { cert: readFileSync(options.cert), key: readFileSync(options.key) },
    (request, response) => {
      if (request.method !== "POST") {
        response.setHeader("allow", "POST");
        return answer(response, 405, { error: "POST only" });
      }
      // The signature is over the exact bytes received: read them raw, parse afterwards.
      const chunks = [];
      let size = 0;
      request.on("data", (chunk) => {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          answer(response, 413, { error: "body too large" });
          request.destroy();
          return;
        }
        chunks.push(chunk);
      });
      request.on("end", () => handle(key, request, Buffer.concat(chunks), response));
      request.on("error", (error) => console.error(`request failed: ${error.message}`));
    },
  );
  // A client gets this long for its handshake and headers, and for the whole request.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  server.on("tlsClientError", (error) => console.error(`TLS handshake failed: ${error.message}`));
  server.on("error", (error) => {
    console.error(`receiver-node: ${error.message}`);
    process.exit(1);
  });
  server.listen(port, options.host, () => {
    const { address, port: bound } = server.address();
    console.log(`listening on https://${address}:${bound}`);
  });
}

try {
  main();
} catch (error) {
  console.error(`receiver-node: ${error.message}`);
  process.exit(1);
}
