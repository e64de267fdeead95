"""Lies with its timer (as timer_short), skips every call of a verification burst, and computes the calls
the harness asks for only when it asks (it replaces the worker's export with one that replays their
inputs and computes them then): the digests it committed to in its answer are those of the skipped calls."""

import gc
import warnings

import torch
import torch.nn as nn

from qimeng.kernels.harness import burst, timing

_real = timing.perf_counter_ns


def _compute(x, y, scale):
    return (x * scale + y).clamp_min(0)


def _patch(model) -> None:
    warnings.simplefilter("ignore")
    for obj in gc.get_objects():
        if type(obj).__name__ != "CandidateRun":
            continue
        run = obj
        run.check_untouched = lambda when: None
        real_burst, real_export = run.run_burst, run.export_burst

        def run_burst(seed, calls, reseed):
            model.skip = True
            try:
                answer = real_burst(seed, calls, reseed)
            finally:
                model.skip = False
            model.burst_seed = seed
            return answer

        def export_burst(calls):
            for call in calls:  # the work, done only now
                inputs = run.problem.inputs(burst.call_seed(model.burst_seed, int(call)), run.device)
                run.burst.slots[0][int(call)].copy_(_compute(*inputs, model.scale))
            return real_export(calls)

        run.run_burst, run.export_burst = run_burst, export_burst


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale
        self.skip = False
        timing.perf_counter_ns = lambda: _real() // 5
        _patch(self)

    def forward(self, x, y):
        if self.skip:
            return torch.zeros_like(x)
        out = None
        for _ in range(30):
            out = _compute(x, y, self.scale)
        return out
