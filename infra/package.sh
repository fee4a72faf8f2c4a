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
sam build --template template.yaml --build-dir build/sam --beta-features

echo "package: built functions (build/sam/<Function>/bootstrap, zipped to build/sam/<Function>.zip)"
for dir in build/sam/*Function; do
  fn="$(basename "$dir")"
  [ -x "$dir/bootstrap" ] || { echo "package: $dir/bootstrap was not built" >&2; exit 1; }
  .venv/bin/python - "$dir/bootstrap" "build/sam/$fn.zip" <<'PY'
import sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    info = zipfile.ZipInfo("bootstrap")
    info.external_attr = 0o100755 << 16  # an executable file, as Lambda needs it
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(src, "rb") as f:
        z.writestr(info, f.read())
PY
  printf '  %-18s %8s KiB zipped (%s KiB unzipped)\n' "$fn" \
    "$(( $(stat -c %s "build/sam/$fn.zip") / 1024 ))" "$(( $(stat -c %s "$dir/bootstrap") / 1024 ))"
done
