"""Where the verification bursts' wall time goes, side by side, on a CUDA machine (issue 9, part B).

Runs real evaluations (``evaluate_many``: the judge and the candidate's worker in their sandboxes,
driven by the harness's own ``Referee``) of honest short candidates (the reference kept as it is, a
Triton kernel, other PyTorch ops) on an elementwise problem, with 8 verification bursts instead of 4,
and records every burst command on both sides: the harness's wall time of the command, the time the
side's main thread waited for a core, and the anatomy the side reports with its answer (diagnosis
only: ``burst.Laps``; the referee ignores it): its own calls' sum, restoring the state, the loop
(making each call's inputs, flush and synchronisation, call, slot copy, reading the events), the
digests, and by the shared monotonic clock the wake-up (command sent to handler started) and the
answer's delivery (handler done to answer read). ``rest`` is the wall less all of these. Then the
bursts' figures as the referee computes them (``outside_clock.Bursts``) and the verdict. The first
problem runs a second time with ``kernel_share=False`` (no profiler pass in the candidate's worker
before timing: the judge never runs one), to see whether CUPTI left active there slows its calls.

    PYTHONPATH=$PWD python3 scripts/gpu_burst_anatomy.py [--device cuda:0] [--bursts 8] [--rounds 20] [--sizes 512,4096]

Needs a CUDA GPU and Triton; about 1-2 minutes. The short table comes last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_harness_check import SHORT_CANDIDATES, elementwise  # noqa: E402

from qimeng.kernels.harness import evaluate as evaluate_mod, outside_clock  # noqa: E402
from qimeng.kernels.harness.referee import Referee  # noqa: E402
from qimeng.kernels.harness.stats import quantile  # noqa: E402
from qimeng.kernels.result import EvalOptions  # noqa: E402

KEPT = """
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        return torch.relu(x * self.scale + y)
"""
CANDIDATES = {"kept_reference": KEPT, **{name: source for name, (_, source) in SHORT_CANDIDATES.items()}}
RECORDS: list[dict[str, Any]] = []  # one per burst command, both sides, in the order they ran
LOOP_PHASES = ("inputs", "flush", "call", "keep", "events")
SIDE_PHASES = ("restore", "digests")


class RecordingReferee(Referee):
    """The harness's referee, unchanged, that also records each burst command of either side."""

    def _recorded(self, side: str, job: Any, command: dict, ask: Any) -> dict:
        queued = job.queued_ns()
        answer = ask()
        received_ms = time.monotonic() * 1e3
        RECORDS.append({"side": side, "calls": command["calls"], "wall_ms": answer["wall_ms"],
                        "queued_ms": (job.queued_ns() - queued) / 1e6, "received_ms": received_ms,
                        "anatomy": answer.get("anatomy") or {}, "judge_call_ms": answer.get("call_ms")})
        return answer

    def judge_timed(self, command: dict, expect: str) -> dict:
        if command.get("cmd") != "burst":
            return super().judge_timed(command, expect)
        return self._recorded("judge", self.judge, command, lambda: super(RecordingReferee, self).judge_timed(command, expect))

    def ask_worker(self, command: dict, expect: str) -> dict:
        if command.get("cmd") != "burst":
            return super().ask_worker(command, expect)
        return self._recorded("worker", self.worker, command, lambda: super(RecordingReferee, self).ask_worker(command, expect))


def breakdown(record: dict) -> dict[str, float]:
    """One burst command's wall, split into the side's own phases, wake-up, delivery and the rest."""
    side, loop = record["anatomy"].get("side", {}), record["anatomy"].get("loop", {})
    sent_ms = record["received_ms"] - record["wall_ms"]  # the referee's clock started about here
    parts = {"wall": record["wall_ms"], "queued": record["queued_ms"], "own_calls": side.get("call_ms", float("nan"))}
    parts.update({p: side.get(p, 0.0) for p in SIDE_PHASES})
    parts.update({f"loop.{p}": loop.get(p, 0.0) for p in LOOP_PHASES})
    parts["wake"] = side.get("start_ms", sent_ms) - sent_ms
    parts["deliver"] = record["received_ms"] - side.get("end_ms", record["received_ms"])
    accounted = sum(parts[p] for p in (*SIDE_PHASES, *(f"loop.{p}" for p in LOOP_PHASES), "wake", "deliver"))
    parts["rest"] = record["wall_ms"] - accounted
    return parts


COLUMNS = ("wall", "queued", "own_calls", "wake", "restore", "loop.inputs", "loop.flush",
           "loop.call", "loop.keep", "loop.events", "digests", "deliver", "rest")


def print_bursts(label: str, records: list[dict]) -> dict[str, Any] | None:
    """Print one candidate's burst commands (ms); its bursts' figures as the referee computes them."""
    if not records:
        print(f"\n{label}: no verification bursts ran")
        return None
    calls = records[0]["calls"]
    print(f"\n{label}: {calls} calls per burst (first pair: warm-up, not counted); milliseconds")
    print(f"{'burst':>5} {'side':6} " + " ".join(f"{c[-11:]:>11}" for c in COLUMNS))
    pairs: dict[int, dict[str, dict]] = {}
    index: dict[str, int] = {"judge": 0, "worker": 0}
    for record in records:
        b = index[record["side"]]
        index[record["side"]] += 1
        pairs.setdefault(b, {})[record["side"]] = record
        parts = breakdown(record)
        print(f"{b:>5} {record['side']:6} " + " ".join(f"{parts[c]:11.3f}" for c in COLUMNS))
    counted = [pairs[b] for b in sorted(pairs) if b > 0 and len(pairs[b]) == 2]
    raw = outside_clock.Bursts(calls, [p["judge"]["wall_ms"] for p in counted], [p["worker"]["wall_ms"] for p in counted],
                               [float(p["judge"]["judge_call_ms"]) for p in counted])
    own = [p["worker"]["anatomy"].get("side", {}).get("call_ms", float("nan")) / calls for p in counted]
    figures = {"calls": calls, "measured_ms": quantile(raw.per_call_ms(), 0.5), "resolution_ms": raw.resolution_ms(),
               "worker_own_ms": quantile(own, 0.5), "judge_own_ms": quantile(raw.judge_call_ms, 0.5),
               "paired_ms": [w - j for w, j in zip(raw.worker_wall_ms, raw.judge_wall_ms)]}
    print(f"  per call: judge's own {figures['judge_own_ms']:.4f}, worker's own {figures['worker_own_ms']:.4f}, "
          f"measured {figures['measured_ms']:.4f}, resolution {figures['resolution_ms']:.5f}; paired wall "
          "differences (worker - judge): " + ", ".join(f"{d:.2f}" for d in figures["paired_ms"]))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--bursts", type=int, default=8, help="counted verification bursts per candidate")
    parser.add_argument("--rounds", type=int, default=20, help="timed rounds per candidate")
    parser.add_argument("--sizes", default="512,4096", help="N of the N x N problems (the first again without profiler)")
    args = parser.parse_args()
    outside_clock.BURSTS = args.bursts
    evaluate_mod.Referee = RecordingReferee  # the pool builds its referees from this name
    sizes = [int(n) for n in args.sizes.split(",")]
    runs = [(f"{n}x{n}", n, True) for n in sizes] + [(f"{sizes[0]}x{sizes[0]} no-profiler", sizes[0], False)]
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, n, kernel_share in runs:
            problem = Path(tmp) / f"scale_add_relu_{n}.py"
            problem.write_text(elementwise(n))
            options = EvalOptions(device=args.device, timeout_s=60.0, timing_trials=args.rounds, warmup=5,
                                  correctness_trials=1, kernel_share=kernel_share)
            seen = [len(RECORDS)]
            per_candidate: list[list[dict]] = []

            def on_result(index: int, result: Any) -> None:
                per_candidate.append(RECORDS[seen[0]:])
                seen[0] = len(RECORDS)

            started = time.perf_counter()
            results = evaluate_mod.evaluate_many(problem, list(CANDIDATES.values()),
                                                 options, on_result=on_result)
            print(f"\n=== {label}: {time.perf_counter() - started:.1f} s")
            for name, result, records in zip(CANDIDATES, results, per_candidate):
                figures = print_bursts(f"{label} {name}", records)
                table.append((label, name, result, figures))
    print(f"\n{'problem':20} {'candidate':20} {'claim':>7} {'calls':>5} {'judge':>7} {'worker':>7} {'measured':>8} "
          f"{'resol.':>7}  verdict")
    for label, name, result, figures in table:
        claim = "-" if result.candidate_ms is None else f"{result.candidate_ms:.4f}"
        cells = ("-",) * 5 if figures is None else (
            str(figures["calls"]), f"{figures['judge_own_ms']:.4f}", f"{figures['worker_own_ms']:.4f}",
            f"{figures['measured_ms']:.4f}", f"{figures['resolution_ms']:.4f}")
        verdict = f"{result.status.value} {','.join(result.flags)} {(result.reason or '')[:60]}"
        print(f"{label:20} {name:20} {claim:>7} {cells[0]:>5} {cells[1]:>7} {cells[2]:>7} {cells[3]:>8} {cells[4]:>7}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
