#!/usr/bin/env bash
# The harness's CPU memory and time target (issue 10): `qimeng eval` of a GELU problem on one 512 MiB fp32
# input, with default trials, under /usr/bin/time -v. Prints the wall time, the peak RSS of the candidate's
# worker and of the judge (each from the result), the largest of the process tree (time -v) and the load.
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
if "timing_trials" not in r:
    sys.exit(f"no evaluation: {r.get('status')}: {r.get('reason', '')}"[:500])
gib = lambda v: v / 2**30 if v else float("nan")
print(f"status {r['status']}, {r['timing_trials']} timed rounds, peak RSS during the evaluation: "
      f"candidate's worker {gib(r['peak_rss_bytes']):.2f} GiB, judge {gib(r['judge_peak_rss_bytes']):.2f} GiB")
print("phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in r["phases_s"].items()))
PY
grep -E "Elapsed \(wall clock\)|Maximum resident set size|User time|System time" "$log"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rm -f "$log" "$out"
