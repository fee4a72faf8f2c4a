#!/usr/bin/env bash
# make test: everything, starting what it needs. The integration tests start their own moto
# server on a free port, so a running `make dev` is neither needed nor disturbed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash infra/venv.sh
bash infra/check-template.sh
# infra/local/stack.py's pure parts (no emulator): references, data_only, the resolver...
.venv/bin/python -m unittest discover -s infra/local -p 'test_*.py'
# The Lambda binaries are run under a Runtime API emulator by the tests: build them first.
cargo build --workspace --bins
# The console's browser tests (tests/tests/browser) drive Debian's chromium (apt-get install
# chromium) with npm's playwright-core, which downloads no browser.
[ -d tests/browser/node_modules/playwright-core ] && [ -d tests/browser/node_modules/axe-core ] ||
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
cargo test --workspace -- --test-threads="${TEST_THREADS:-8}"
# The README's commands as a reader runs them, in a fresh copy of this tree: its tour against a
# stack of its own on free ports, and its deploy (make deploy: make package, then sam deploy
# of the built template) rehearsed against moto's S3 and CloudFormation (infra/check-readme.py).
.venv/bin/python infra/check-readme.py
