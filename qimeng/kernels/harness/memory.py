"""Memory of one evaluation, worker side: peak device memory and host RSS, and freeing between trials.

The worker reports ``EvalResult.peak_device_bytes`` (``torch.cuda.max_memory_allocated`` since the
evaluation started; None on the CPU) and ``peak_rss_bytes`` (the worker process's peak resident set since the
evaluation started: Linux's ``VmHWM``, reset per evaluation through ``/proc/self/clear_refs``; where
that cannot be reset, the process's peak so far). Both include what the worker held before the
evaluation started (torch itself: ~0.3-0.5 GiB of RSS). The bench and the engine's job admission read them back from the store.
"""

from __future__ import annotations

import contextlib
import gc
import re
import resource
import sys
from pathlib import Path

import torch


def start(device: str) -> None:
    """Begin measuring one evaluation: the peak counters start from what is held now."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def peak_device_bytes(device: str) -> int | None:
    """Most device memory allocated by tensors since :func:`start` (None off CUDA)."""
    if torch.device(device).type != "cuda":
        return None
    return int(torch.cuda.max_memory_allocated(torch.device(device)))


def peak_rss_bytes() -> int:
    """The peak resident set of this process since :func:`start`, in bytes."""
    with contextlib.suppress(OSError, AttributeError):
        found = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
        return int(found.group(1)) * 1024  # type: ignore[union-attr]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB, macOS bytes


def release(device: str) -> None:
    """Give memory freed by dropped outputs back: collect cycles, and on CUDA return the caching
    allocator's free blocks (only worth it between large trials: other processes may need them)."""
    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.empty_cache()


def backend_flags() -> dict[str, object]:
    """The numeric backend settings a measurement ran under (recorded in ``EvalResult.backend_flags``)."""
    return {
        "cuda.matmul.allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn.allow_tf32": bool(torch.backends.cudnn.allow_tf32),
        "cudnn.benchmark": bool(torch.backends.cudnn.benchmark),
        "cudnn.deterministic": bool(torch.backends.cudnn.deterministic),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
