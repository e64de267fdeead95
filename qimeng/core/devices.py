"""The ``--device`` of ``eval``, ``bench`` and ``optimize``: ``auto`` (the default) is ``cuda`` when a CUDA
device is visible, else ``cpu``; an explicit ``cuda`` or ``cuda:N`` is checked before any work starts.

The CUDA devices are counted by torch in a short subprocess, so that a process which must not import
torch (the evaluation harness) stays free of it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Callable

from qimeng.core.verdict import BadInput

AUTO = "auto"
PROBE_TIMEOUT_S = 120.0
_PROBE = "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)"


def cuda_device_count() -> int:
    """CUDA devices torch sees here (0 when torch cannot tell)."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    text = done.stdout.strip().splitlines()
    return int(text[-1]) if done.returncode == 0 and text and text[-1].isdigit() else 0


def resolve_device(device: str, count: Callable[[], int] = cuda_device_count) -> tuple[str, str]:
    """The device to use and how it was chosen (a line to print); BadInput for an unusable ``device``."""
    if device == "cpu":
        return "cpu", "device: cpu"
    if device != AUTO and not re.fullmatch(r"cuda(:\d+)?", device):
        raise BadInput(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    visible = count()
    if device == AUTO:
        if visible:
            return "cuda", f"device: cuda (auto: {visible} CUDA device(s) visible)"
        return "cpu", "device: cpu (auto: no CUDA device visible; the Triton interpreter runs the kernels)"
    if not visible:
        raise BadInput(f"device {device!r} requested but no CUDA device is visible here; use --device cpu or auto")
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= visible:
        raise BadInput(f"device {device!r} requested but only {visible} CUDA device(s) are visible")
    return device, f"device: {device}"
