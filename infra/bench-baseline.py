#!/usr/bin/env python3
"""`make baseline`: gathers the latest results of every bench into docs/bench-baseline.json,
the numbers behind docs/measurements.md (bench-results/ is not committed). A part whose
bench was not run keeps its earlier numbers, with their own date inside."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
BASELINE = ROOT / "docs" / "bench-baseline.json"

# The baseline's parts and the result file each is read from.
PARTS = {
    "throughput": "latest.json",
    "init": "init-latest.json",
    "cost": "cost-latest.json",
    "isolation_silent": "isolation-silent-latest.json",
    "isolation_slow": "isolation-slow-latest.json",
    "isolation_fail503": "isolation-fail503-latest.json",
    "subscribers": "subscribers-latest.json",
    "chaos": "chaos-latest.json",
}


def main() -> int:
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    if "events" in baseline and "throughput" not in baseline:
        baseline = {"throughput": baseline}  # the file once held `make bench`'s run alone
    updated = []
    for part, name in PARTS.items():
        path = RESULTS / name
        if path.exists():
            baseline[part] = json.loads(path.read_text())
            updated.append(part)
    BASELINE.write_text(json.dumps({p: baseline[p] for p in PARTS if p in baseline}, indent=1) + "\n")
    print(f"{BASELINE.relative_to(ROOT)}: updated {', '.join(updated) or 'nothing'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
