"""How much GPU memory evaluating a problem takes: measured by an earlier evaluation (the store's
``peak_device_bytes`` of the candidate's worker plus the judge's), else estimated from the sizes of its inputs, parameters and outputs.

For admission of jobs by memory (``qimeng.core.admission.MemoryGate``): ``qimeng bench`` with several
jobs per GPU, and ``qimeng optimize --jobs`` (``problem_footprint`` is what it calls). The harness
process imports no torch: the sizes come from a sandboxed job on the meta device
(``footprint_job.py``).

The estimate follows what the two processes on the GPU hold at their peaks: in each, two input sets
(the inputs and a clone), its model's output plus a poisoned block of its size and room for the same
again in intermediates, two copies of its model's parameters (the model, the state each trial starts
from), the slots of a verification burst (every call's outputs, ``burst_slot_bytes``), plus
``OVERHEAD_BYTES`` for two CUDA contexts, the L2 flush buffers and the allocator's slack. A measured peak is counted with the same overhead and
``MEASURED_SLACK`` more, for the allocator's fragmentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qimeng.core.sandbox import run_job
from qimeng.kernels.harness.outside_clock import BURST_BYTES, BURST_MAX_CALLS
from qimeng.kernels.harness.problem import problem_hash
from qimeng.settings import Settings

if TYPE_CHECKING:
    from qimeng.kernels.store import Store

JOB_MODULE = "qimeng.kernels.harness.footprint_job"
OVERHEAD_BYTES = 2 << 30
MEASURED_SLACK = 1.2
INPUT_COPIES, OUTPUT_COPIES, PARAM_COPIES = 4, 6, 4  # the judge's and the candidate's worker's together
JOB_TIMEOUT_S = 120.0


def burst_slot_bytes(outputs: int) -> int:
    """What one side's verification burst holds at most: every call's outputs (outside_clock.burst_calls)."""
    return max(min(BURST_BYTES["cuda"], BURST_MAX_CALLS * outputs), outputs)


def estimate_bytes(inputs: int, params: int, outputs: int | None) -> int:
    """The estimated peak of an evaluation from the problem's sizes (outputs unknown: as the inputs)."""
    outputs = inputs if outputs is None else outputs
    return (INPUT_COPIES * inputs + OUTPUT_COPIES * outputs + PARAM_COPIES * params + 2 * burst_slot_bytes(outputs)
            + OVERHEAD_BYTES)


def from_measured(peak_device_bytes: int) -> int:
    return int(peak_device_bytes * MEASURED_SLACK) + OVERHEAD_BYTES


def problem_sizes(problem: Path, small: bool, settings: Settings | None = None) -> dict | None:
    """{"inputs", "params", "outputs"} in bytes (each None when unknown), or None when the job failed."""
    sandbox = run_job(JOB_MODULE, {"problem": str(Path(problem).resolve()), "small": small},
                      timeout_s=JOB_TIMEOUT_S, settings=settings)
    reply = sandbox.payload
    return reply if reply is not None and reply.get("kind") == "sizes" else None


def problem_footprint(problem: Path, *, small: bool, store: "Store | None" = None,
                      settings: Settings | None = None) -> int | None:
    """Bytes of GPU memory that evaluating ``problem`` needs; None when neither measured nor estimable
    (a caller should then run it alone)."""
    if store is not None:
        peak = store.peak_device_bytes(problem_hash(problem, small=small))
        if peak:
            return from_measured(peak)
    sizes = problem_sizes(problem, small, settings)
    if sizes is None or sizes.get("inputs") is None or sizes.get("params") is None:
        return None
    return estimate_bytes(sizes["inputs"], sizes["params"], sizes.get("outputs"))
