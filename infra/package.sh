#!/usr/bin/env bash
# make package: what an operator runs before `sam deploy`, so CI runs it too:
#   sam validate --lint   the template, translated and linted by SAM itself;
#   sam build             cargo-lambda builds each function for arm64 (BuildMethod:
#                         rust-cargolambda, no Docker; a beta feature of SAM CLI 1.170);
# then each built function zipped as Lambda receives it (sam deploy zips the same files),
# sizes printed. Everything is pinned in infra/requirements.txt (aws-sam-cli, cargo-lambda
# with its zig).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash infra/venv.sh
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu \
  || rustup target add aarch64-unknown-linux-gnu
export PATH="$ROOT/.venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
REGION="${AWS_DEFAULT_REGION:-us-east-1}"

sam validate --lint --template template.yaml --region "$REGION"
echo "package: sam build: the four functions for arm64 in release (several minutes the first time)"
sam build --template template.yaml --build-dir build/sam --beta-features

echo "package: built functions (build/sam/<Function>/bootstrap, zipped to build/sam/<Function>.zip)"
# Issue 10's budget, checked on every package (CI runs this): each zip at most 3 MB (decimal),
# and none carrying a crate a Lambda function must not link (a second TLS stack, HTTP/2, the
# SDK's own HTTP client: what leaked in when `cargo lambda build --bin` resolved features
# over the tools and examples too; see default-members in Cargo.toml).
MAX_ZIP_BYTES=3000000
FORBIDDEN='aws-lc-rs|aws-lc-sys|/h2-[0-9]|aws-smithy-http-client'
over=0
for dir in build/sam/*Function; do
  fn="$(basename "$dir")"
  [ -x "$dir/bootstrap" ] || { echo "package: $dir/bootstrap was not built" >&2; exit 1; }
  # Deflate at zlib's default level, as `sam deploy`'s own zip of the same file.
  .venv/bin/python - "$dir/bootstrap" "build/sam/$fn.zip" <<'PY'
import sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o100755 << 16  # an executable file, as Lambda needs it
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(src, "rb") as f:
        z.writestr(info, f.read())
PY
  zipped="$(stat -c %s "build/sam/$fn.zip")"
  printf '  %-18s %9s bytes zipped (%s unzipped)\n' "$fn" "$zipped" "$(stat -c %s "$dir/bootstrap")"
  if [ "$zipped" -gt "$MAX_ZIP_BYTES" ]; then
    echo "package: $fn.zip is $zipped bytes, over the $MAX_ZIP_BYTES-byte budget" >&2
    over=1
  fi
  linked="$(grep -aoE "registry/src/[^/]+/($FORBIDDEN)[^/]*" "$dir/bootstrap" | sed 's|.*/||' | sort -u | tr '\n' ' ' || true)"
  if [ -n "$linked" ]; then
    echo "package: $fn links what no function may: $linked" >&2
    over=1
  fi
done
[ "$over" -eq 0 ] || exit 1
