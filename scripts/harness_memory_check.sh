#!/usr/bin/env bash
# The harness's CPU memory and time target (issue 10): `qimeng eval` of a GELU problem on one 512 MiB fp32
# input, with default trials, under /usr/bin/time -v. Prints the wall time, the peak RSS (the worker is
# counted: time -v reports the largest of the process tree) and the machine's load.
# Usage: scripts/harness_memory_check.sh [CANDIDATE]   (default: the reference kept as it is)
set -euo pipefail
cd "$(dirname "$0")/.."
data=tests/kernels/harness/data
candidate=${1:-$data/gelu_kept.py}
log=$(mktemp)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} /usr/bin/time -v python -m qimeng.cli eval "$data/gelu_512mib.py" \
    "$candidate" --json --no-store --timeout 900 2> "$log" | python -c '
import json, sys
r = json.load(sys.stdin)
print(f"status {r[\"status\"]}  timed rounds {r[\"timing_trials\"]}  worker peak RSS {r[\"peak_rss_bytes\"] / 2**30:.2f} GiB")
print("phases (s):", ", ".join(f"{k} {v:.1f}" for k, v in r["phases_s"].items()))' || true
grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$log"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$log"
