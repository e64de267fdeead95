"""Admission of jobs onto a device by memory: a job starts only when its footprint fits beside the
footprints of the jobs already running there; otherwise it waits, first come first served.

A job larger than the whole capacity runs alone (nothing else is admitted beside it) rather than never.
Footprints are the caller's estimate in bytes (for kernels: ``qimeng.kernels.harness.footprint``); the
capacity of a GPU is its total memory (``nvidia-smi``, else torch's device properties) less what other
processes held when the gate was made, times ``Settings.gpu_memory_fraction``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import threading
from collections.abc import Iterator


class MemoryGate:
    """Per-device memory budgets shared by the threads of one process (e.g. an Executor's slots)."""

    def __init__(self, capacity_bytes: dict[str, int]) -> None:
        self.capacity = dict(capacity_bytes)
        self.in_use: dict[str, int] = dict.fromkeys(self.capacity, 0)
        self.running: dict[str, int] = dict.fromkeys(self.capacity, 0)
        self._queue: dict[str, list[int]] = {device: [] for device in self.capacity}
        self._tickets = itertools.count()
        self._changed = threading.Condition()

    def fits(self, device: str, nbytes: int) -> bool:
        """Whether ``nbytes`` more fit on ``device`` now (always, when nothing runs there)."""
        return self.running[device] == 0 or self.in_use[device] + nbytes <= self.capacity[device]

    @contextlib.contextmanager
    def admit(self, device: str, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` of ``device`` for the block, waiting (in arrival order) until they fit.
        A device the gate does not know is not limited."""
        if device not in self.capacity:
            yield
            return
        with self._changed:
            ticket = next(self._tickets)
            self._queue[device].append(ticket)
            self._changed.wait_for(lambda: self._queue[device][0] == ticket and self.fits(device, nbytes))
            self._queue[device].pop(0)
            self.in_use[device] += nbytes
            self.running[device] += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self.in_use[device] -= nbytes
                self.running[device] -= 1
                self._changed.notify_all()


def gpu_capacity_bytes(index: int, fraction: float) -> int | None:
    """Memory of GPU ``index`` that jobs may use: (total - used by others now) * ``fraction``; None
    when it cannot be found. Asks ``nvidia-smi`` first, so this process makes no CUDA context."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    physical = visible[index] if index < len(visible) else str(index)  # nvidia-smi counts every GPU
    try:
        out = subprocess.run(["nvidia-smi", f"--id={physical}", "--query-gpu=memory.total,memory.used",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=30)
        total_mib, used_mib = (float(v) for v in out.stdout.strip().splitlines()[0].split(","))
        return int((total_mib - used_mib) * 2**20 * fraction)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        pass
    try:
        import torch

        return int(torch.cuda.get_device_properties(index).total_memory * fraction)
    except Exception:  # noqa: BLE001  (no CUDA here)
        return None
