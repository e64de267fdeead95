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
out=$(mktemp)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} /usr/bin/time -v python -m qimeng.cli eval "$data/gelu_512mib.py" \
    "$candidate" --json --no-store --timeout 900 > "$out" 2> "$log" || true
python - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
rss = r["peak_rss_bytes"] / 2**30 if r["peak_rss_bytes"] else float("nan")
print(f"status {r['status']}, {r['timing_trials']} timed rounds, worker peak RSS during the evaluation {rss:.2f} GiB")
print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases_s"].items()))
PY
grep -E "Elapsed \(wall clock\)|Maximum resident set size|User time|System time" "$log"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$log" "$out"
