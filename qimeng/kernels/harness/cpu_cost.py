"""What evaluating a problem on the CPU will cost, estimated from its sizes before anything runs, so
that ``qimeng eval`` can propose ``--small`` up front instead of timing out after minutes.

The estimate counts the bytes one call moves (inputs, parameters and outputs, taken on the meta
device by ``footprint.problem_sizes``) at rates measured here; it is rough (within a few times), and
FLOPs are not counted. A Triton candidate on the CPU runs under the interpreter, some hundred times
slower than eager PyTorch. The evaluation still runs: the advice is printed first, with progress after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from qimeng.kernels.result import EvalOptions
from qimeng.settings import Settings

# Rates in bytes per second, measured on a 2-core development machine: the interpreter ran an
# elementwise kernel at 2-6 MB/s, eager PyTorch at 0.3-0.8 GB/s, torch.randn at 0.15-0.5 GB/s.
INTERPRETER_BYTES_PER_S = 10e6
EAGER_BYTES_PER_S = 1e9
INPUTS_BYTES_PER_S = 0.5e9
TIMED_ROUNDS_AT_LEAST = 5  # rounds that run even when the timing budget is spent (referee.MIN_BUDGET_ROUNDS)
_TRITON_IMPORT = re.compile(r"^\s*(import|from)\s+triton\b", re.MULTILINE)  # as referee.py tells it


@dataclass(frozen=True)
class CpuCost:
    call_s: float  # one call of the candidate
    total_s: float  # the whole evaluation (both sides, every trial and timed round)
    interpreted: bool


def estimate(bytes_per_call: int, input_bytes: int, options: EvalOptions, interpreted: bool) -> CpuCost:
    """The time the evaluation takes on the CPU (see the module's docstring)."""
    call = bytes_per_call / (INTERPRETER_BYTES_PER_S if interpreted else EAGER_BYTES_PER_S)
    reference = bytes_per_call / EAGER_BYTES_PER_S
    checked = options.correctness_trials + 2  # the first call, the trials, the check after timing
    timed = 0
    if options.time_candidate and options.timing_trials > 0:
        timed = options.warmup + min(options.timing_trials, TIMED_ROUNDS_AT_LEAST)
    inputs = 2 * (checked + timed) * input_bytes / INPUTS_BYTES_PER_S  # both processes make every input set
    return CpuCost(call, (checked + timed) * (call + reference) + inputs, interpreted)


def cpu_cost(problem: Path, candidate_source: str, options: EvalOptions,
             settings: Settings | None = None) -> CpuCost | None:
    """The estimate for ``problem`` at the sizes ``options`` chose; None when its sizes are unknown."""
    from qimeng.kernels.harness.footprint import problem_sizes

    sizes = problem_sizes(problem, options.small, settings)
    if sizes is None or sizes.get("inputs") is None:
        return None
    inputs, params = sizes["inputs"], sizes.get("params") or 0
    outputs = sizes["outputs"] if sizes.get("outputs") is not None else inputs
    return estimate(inputs + params + outputs, inputs, options, bool(_TRITON_IMPORT.search(candidate_source)))


def advice(cost: CpuCost, options: EvalOptions) -> str | None:
    """A line proposing ``--small`` when one call is estimated past ``options.timeout_s``; None otherwise."""
    if cost.call_s <= options.timeout_s:
        return None
    runner = "under the Triton interpreter" if cost.interpreted else "in eager PyTorch"
    return (f"one call of the candidate {runner} is estimated at ~{cost.call_s:.0f} s on the CPU at these sizes "
            f"(the whole evaluation ~{cost.total_s:.0f} s), more than the timeout of {options.timeout_s:g} s "
            "per step: rerun with --small (the problem's SMALL sizes) or a larger --timeout")
