# comps-webhooks: the two commands are `make dev` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help dev test lint fmt check-template package deploy check-readme bench bench-isolation bench-subscribers baseline chaos openapi spec venv clean

help:
	@echo "make dev             run everything locally (moto on :4566 enforcing IAM, API on :3000)"
	@echo "make test            template check (samtranslator + cfn-lint, sam validate --lint), stack.py"
	@echo "                     unit tests, Rust unit tests, integration tests (moto enforcing IAM, each"
	@echo "                     function under its own role, HTTPS receivers, the built binaries),"
	@echo "                     and short runs under injected faults (tests/tests/faults)"
	@echo "make lint            cargo fmt --check and clippy -D warnings"
	@echo "make check-template  translate template.yaml with samtranslator, cfn-lint it, sam validate --lint"
	@echo "make package         sam validate --lint and sam build (arm64, cargo-lambda); zips and sizes printed"
	@echo "make deploy          make package, then sam deploy of the built template (build/sam/template.yaml);"
	@echo "                     asks its questions the first time (--guided), saved in samconfig.toml"
	@echo "make check-readme    the README's tour and deploy, run as written in a fresh copy (a deploy"
	@echo "                     rehearsed against moto: the built zips are what is uploaded); make test runs it"
	@echo "make bench           pipeline latency and throughput on this machine (bench-results/)"
	@echo "make bench-isolation a healthy endpoint's delivery latency beside a silent, slow or failing"
	@echo "                     one, each in a stack of its own (bench-results/isolation-*-latest.json)"
	@echo "make bench-subscribers one event type with 10,000 active webhooks: ingest 202, one queued"
	@echo "                     message per webhook per event, the list paged through"
	@echo "                     (bench-results/subscribers-latest.json)"
	@echo "make baseline        gather the latest bench results into docs/bench-baseline.json"
	@echo "make chaos           the pipeline under faults at scale: 2,000 events x 3 webhooks per fault"
	@echo "                     kind, 25 % of AWS calls failing (bench-results/chaos-latest.json)"
	@echo "make openapi         write functions/admin-api/openapi.json from the code (a test fails while"
	@echo "                     the file differs from what the code derives)"
	@echo "make spec            refresh docs/spec/ (SPEC.md, the user guide) from ../shared/spec"

venv:
	@bash infra/venv.sh

dev:
	@bash infra/dev.sh

test: venv
	@bash infra/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

openapi:
	cargo run --quiet -p integration-tests --bin openapi

check-template: venv
	@bash infra/check-template.sh

package: venv
	@bash infra/package.sh

# The built functions, never the source tree: plain `sam deploy` reads template.yaml, whose
# CodeUri is the repository root. samconfig.toml is kept at the root (sam looks beside the
# template by default, and sam build empties build/sam); while it is empty or missing, sam
# deploy asks its questions (--guided) and saves the answers there. It must exist for
# --config-file, hence the empty one.
SAM_DEPLOY_FLAGS ?=
deploy: package
	@flags="$(SAM_DEPLOY_FLAGS)"; \
	if [ ! -s samconfig.toml ]; then flags="--guided $$flags"; touch samconfig.toml; fi; \
	set -x; SAM_CLI_TELEMETRY=0 .venv/bin/sam deploy --template-file build/sam/template.yaml --config-file "$(CURDIR)/samconfig.toml" $$flags

# The README's commands as a reader runs them (infra/check-readme.py says how).
check-readme: venv
	@.venv/bin/python infra/check-readme.py

clean:
	rm -rf target build .local

# The Lambda binaries as they are zipped (release profile), timed from process start; the
# bench itself in the tools profile.
bench: venv
	cargo build --release -p admin-api -p fanout -p deliver -p alerter
	cargo run --profile tools -p integration-tests --bin bench -- --events $${EVENTS:-200} --webhooks $${WEBHOOKS:-3}

# One endpoint's failures or slowness must not delay another's deliveries: a healthy
# receiver's post-to-arrival latency alone and beside a silent, a slow and a failing one
# (the handlers run in the gateway, in the tools profile: no release build needed).
# As `make dev` runs it: the real retry schedule (a neighbour's retries come a minute on).
# Each neighbour in a stack of its own, beside its own `alone` baseline: one emulator process
# carries every scenario's leftovers (retries, hidden messages) into the next one's numbers.
bench-isolation: venv
	cargo build --profile tools -p integration-tests --bin isolation
	@for neighbour in $${NEIGHBOURS:-silent slow fail503}; do \
	  HARNESS_RETRY_DELAYS=$${HARNESS_RETRY_DELAYS:-60,120,240,480,900} target/tools/isolation \
	    --events $${EVENTS:-150} --rate $${RATE:-10} --scenarios alone,$$neighbour \
	    --name isolation-$$neighbour || exit 1; \
	done

# One event type with 10,000 active webhooks (issue 21): ingest answers 202 with an event's
# webhooks stored in pages, fan-out queues exactly one message per webhook (counted on a queue
# of the bench's own: deliveries are not made), the admin list pages through all of them.
bench-subscribers: venv
	cargo run --profile tools -p integration-tests --bin subscribers -- --webhooks $${WEBHOOKS:-10000} --events $${EVENTS:-5} --batch $${BATCH:-10}

# The numbers behind docs/measurements.md: every bench's latest results, committed.
baseline:
	python3 infra/bench-baseline.py

# docs/spec/ holds copies of the steering repository's spec (../shared/spec, when checked out
# beside this one); this refreshes them.
SPEC_SRC := ../shared/spec
SPEC_FILES := SPEC.md webhooks-user-guide.txt

chaos: venv
	cargo run --profile tools -p integration-tests --bin chaos -- --events $${EVENTS:-2000} --webhooks $${WEBHOOKS:-3} --rate $${RATE:-25}

spec:
	@if [ ! -d "$(SPEC_SRC)" ]; then \
	  echo "spec: $(SPEC_SRC) not found; docs/spec/ left as it is" >&2; \
	else \
	  mkdir -p docs/spec; \
	  for f in $(SPEC_FILES); do \
	    if cmp -s "$(SPEC_SRC)/$$f" "docs/spec/$$f"; then \
	      echo "spec: docs/spec/$$f unchanged"; \
	    else \
	      install -m 644 "$(SPEC_SRC)/$$f" "docs/spec/$$f" && echo "spec: docs/spec/$$f updated from $(SPEC_SRC)/$$f" || exit 1; \
	    fi; \
	  done; \
	fi
