#!/usr/bin/env bash
# make package: the arm64 (Graviton) deployment zips of the Lambda functions, built with
# cargo-lambda (pinned in infra/requirements.txt, zig included), each size printed.
# `sam build` does the same through BuildMethod: rust-cargolambda.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash infra/venv.sh
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
export PATH="$ROOT/.venv/bin:$PATH"

FUNCTIONS=(admin-api fanout deliver alerter)
args=()
for f in "${FUNCTIONS[@]}"; do args+=(--package "$f"); done
cargo lambda build --release --arm64 --output-format zip "${args[@]}"

echo "package: deployment zips (target/lambda/<function>/bootstrap.zip)"
for f in "${FUNCTIONS[@]}"; do
  zip="target/lambda/$f/bootstrap.zip"
  [ -f "$zip" ] || { echo "package: $zip was not built" >&2; exit 1; }
  printf '  %-10s %8s KiB\n' "$f" "$(( $(stat -c %s "$zip") / 1024 ))"
done
