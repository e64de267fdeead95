"""What a candidate's forward calls: the ATen operators it dispatches, and (on CUDA) which share of its
GPU time is spent in kernels it defines itself (Triton ``@jit`` functions, ``__global__`` functions in
its source) rather than in PyTorch's library kernels.
"""

from __future__ import annotations

import re
import sys
from types import ModuleType
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class _OpRecorder(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # no torch._disable_dynamo wrapper: recording must not import torch._dynamo (slow)

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def dispatched_ops(fn: Callable[[], object]) -> list[str]:
    """Sorted names of the ATen operators (e.g. ``aten.add``) that ``fn()`` dispatches."""
    recorder = _OpRecorder()
    with recorder:
        fn()
    return sorted(recorder.ops)


def own_kernel_names(module: ModuleType, source: str) -> set[str]:
    """Kernels the candidate defines: Triton JIT functions in its module, ``__global__`` functions in its source."""
    names = set(re.findall(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(", source))
    triton_runtime = sys.modules.get("triton.runtime")
    if triton_runtime is not None:
        for value in vars(module).values():
            fn = value
            while isinstance(fn, triton_runtime.KernelInterface):
                fn = getattr(fn, "fn", None)
            if fn is not value and callable(fn):
                names.add(fn.__name__)
    return names


def warm_up_profiler() -> None:
    """Run the profiler once with host activity only: its first use imports modules that rebind torch
    functions (to be done before any guard snapshot), and host activity subscribes no CUPTI. A CUDA
    profile does, and kineto leaves CUPTI subscribed after it (no ``cuptiFinalize`` unless
    ``TEARDOWN_CUPTI=1``): on the H200 every later call of that process measured 1.3-2x the same call
    in a process never profiled (``scripts/gpu_burst_anatomy.py``)."""
    from torch.autograd import DeviceType  # noqa: F401  (imported here as own_kernel_share imports it)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        torch.ones(8) + 1
    prof.events()


def own_kernel_share(fn: Callable[[], object], own_names: set[str], calls: int = 3) -> float | None:
    """Share of ``fn``'s GPU kernel time spent in kernels named in ``own_names`` (None without kernels).
    It leaves CUPTI subscribed in this process (``warm_up_profiler``): nothing is timed here after it."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            fn()
        torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    total = sum(e.device_time_total for e in kernels)
    if total <= 0:
        return None
    patterns = [re.compile(rf"\b{re.escape(name)}\b") for name in own_names]
    own = sum(e.device_time_total for e in kernels if any(p.search(e.name) for p in patterns))
    return own / total
