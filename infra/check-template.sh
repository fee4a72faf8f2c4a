#!/usr/bin/env bash
# Translate template.yaml (SAM) to plain CloudFormation and lint the result.
# Exits non-zero on any translation or cfn-lint error/warning. Works from any cwd.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash infra/venv.sh

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
mkdir -p build
.venv/bin/python infra/local/stack.py translate \
  --region "$AWS_DEFAULT_REGION" \
  --template template.yaml \
  --out build/template.translated.json

# cfn-lint exit codes are a bit mask: 2 = error, 4 = warning, 8 = informational.
.venv/bin/cfn-lint --regions "$AWS_DEFAULT_REGION" -- build/template.translated.json
# And the operator's own check.
SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint --template template.yaml --region "$AWS_DEFAULT_REGION"
echo "check-template: template.yaml translates and lints clean" >&2
