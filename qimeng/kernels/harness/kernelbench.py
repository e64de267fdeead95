"""``--protocol kernelbench``: the timing protocol of KernelBench's public evaluator, so that our numbers
can stand next to published ones.

As its ``src/eval.py`` (``eval_kernel_against_ref``, ``time_execution_with_cuda_event``) and its baseline
script (``measure_program_time``) do:

- models in training mode as ``Model(*get_init_inputs())`` builds them, PyTorch's default backend flags;
- 5 correctness trials and 100 timed trials (the counts its scripts pass), 3 warm-up calls, each followed
  by a device synchronisation;
- each timed trial: a CUDA event, the call, a CUDA event, a device synchronisation; no L2 flush, no
  interleaving: the reference's trials, then the candidate's; the figure is the **mean**;
- the reference (its eager baseline) timed under ``torch.no_grad()``, the candidate without it (autograd
  records the candidate's graph, as it does there).

The counts are ``result.KERNELBENCH_OPTIONS``. Newer KernelBench versions flush L2 before each trial and drop the first; the published v0 / v0.1
numbers were taken without. Correctness stays our own (stricter) check; only the clock follows theirs:
the referee (``Referee.timing``) runs the warm-up and the trials as rounds, one command each, with its
outside clock and its round checks, and each side times its call with :func:`time_call`.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch

from qimeng.kernels.harness.guard import CudaEvent, cuda_synchronize, no_grad, perf_counter_ns


def time_call(fn: Callable[[], object], device: str, grad: bool) -> tuple[float, object]:
    """(milliseconds, output) of one call of ``fn`` by KernelBench's clock: a CUDA event, the call, a CUDA
    event, a device synchronisation (on the CPU the host clock); under ``no_grad`` unless ``grad``."""
    with contextlib.nullcontext() if grad else no_grad():
        if torch.device(device).type == "cuda":
            start, end = CudaEvent(enable_timing=True), CudaEvent(enable_timing=True)
            start.record()
            out = fn()
            end.record()
            cuda_synchronize()
            return start.elapsed_time(end), out
        t0 = perf_counter_ns()
        out = fn()
        return (perf_counter_ns() - t0) / 1e6, out
