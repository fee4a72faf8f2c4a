#!/usr/bin/env bash
# make dev: the whole service on one laptop.
#  1. a pinned moto server in .venv, started on 127.0.0.1:4566 unless an emulator already
#     answers there (LocalStack can stand in: start it first, or set AWS_ENDPOINT_URL);
#  2. the data resources of template.yaml created in it, and each function's IAM role
#     (infra/local/stack.py up); a moto started here then enforces IAM, as AWS does;
#  3. the local gateway: the HTTP API on 127.0.0.1:3000 and the queue pollers, all calling
#     the real handlers, each with its own role's credentials.
# Ctrl-C stops what this script started (an emulator it found running is left alone).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ENDPOINT="${AWS_ENDPOINT_URL:-http://127.0.0.1:4566}"
LISTEN="${WEBHOOKS_LISTEN:-127.0.0.1:3000}"
export AWS_ENDPOINT_URL="$ENDPOINT"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"
mkdir -p .local

if [ ! -x .venv/bin/python ]; then
  echo "dev: first run: downloading and installing the pinned Python tools into .venv (moto, SAM CLI, cfn-lint...; pip is quiet)" >&2
fi
bash infra/venv.sh
# cargo's own progress is shown: the first build is long, and a silent one looks stuck.
if [ ! -x "${CARGO_TARGET_DIR:-target}/debug/local-gateway" ]; then
  echo "dev: first build of the local gateway and the four functions (debug, about 240 crates):" \
    "minutes (14 measured on a busy 2-core machine); later, only what changed" >&2
else
  echo "dev: building the local gateway (cargo rebuilds what changed)" >&2
fi
cargo build -p local-gateway

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

enforce=()
if curl -s -o /dev/null --max-time 2 "$ENDPOINT"; then
  echo "dev: using the AWS emulator already answering at $ENDPOINT, as it is" >&2
else
  enforce=(--enforce-iam)
  hostport="${ENDPOINT#*://}"; port="${hostport##*:}"; port="${port%%/*}"
  echo "dev: starting moto server on 127.0.0.1:$port (log: .local/moto.log)" >&2
  .venv/bin/python infra/local/moto_server.py --port "$port" > .local/moto.log 2>&1 &
  pids+=("$!")
  # Up to two minutes: a loaded machine starts it slowly, and its first answers can take
  # seconds (a check with a short timeout failed there while moto was fine).
  up=0
  for _ in $(seq 1 120); do
    if curl -s -o /dev/null --max-time 10 "$ENDPOINT"; then up=1; break; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 1
  done
  [ "$up" = 1 ] || { echo "dev: moto did not start; see .local/moto.log" >&2; exit 1; }
fi

echo "dev: creating the resources of template.yaml" >&2
# Alert settings from the shell become the template's parameters, so the stack describes them
# and the sender gets verified in the emulator's SES.
params=()
[ -n "${WEBHOOKS_ALERT_FROM:-}" ] && params+=(--parameter "AlertFrom=$WEBHOOKS_ALERT_FROM")
[ -n "${WEBHOOKS_ALERT_EMAILS:-}" ] && params+=(--parameter "AlertEmails=$WEBHOOKS_ALERT_EMAILS")
[ -n "${WEBHOOKS_ALERT_WINDOW_SECONDS:-}" ] && params+=(--parameter "AlertWindowSeconds=$WEBHOOKS_ALERT_WINDOW_SECONDS")
.venv/bin/python infra/local/stack.py up --endpoint "$ENDPOINT" --stack-name comps-webhooks-local \
  --out .local/stack.json "${params[@]}" "${enforce[@]}"
if grep -q '"iam_enforced": true' .local/stack.json; then
  echo "dev: IAM is enforced: each function calls AWS with its own role from template.yaml" >&2
else
  echo "dev: IAM is NOT enforced by this emulator: a permission missing from template.yaml would go unnoticed" >&2
fi

"${CARGO_TARGET_DIR:-target}/debug/local-gateway" --stack .local/stack.json --listen "$LISTEN" &
pids+=("$!")
wait "${pids[-1]}"
