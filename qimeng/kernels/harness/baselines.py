"""Baselines: PyTorch eager (the reference itself) and torch.compile, timed like a candidate, cached in
the store per (problem content hash, device name, torch version, mode).

The harness process imports no torch: :func:`device_name` and :func:`torch_version` find the cache key
without it; :func:`compile_model` runs inside the worker.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from functools import lru_cache
from typing import TYPE_CHECKING

COMPILE_PHASE = "baseline_compile"  # the judge's start-up phase compiling the torch.compile baselines (seconds)

if TYPE_CHECKING:
    import torch

    from qimeng.kernels.store import Store

COMPILE_MODES: dict[str, str] = {"compile": "default", "compile-max-autotune": "max-autotune"}


@lru_cache(maxsize=None)
def device_name(device: str) -> str:
    """Human name of ``device``: the GPU's name from nvidia-smi, or the CPU's model name."""
    kind, _, index = device.partition(":")
    if kind == "cuda":
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", index or "0"],
                capture_output=True, text=True, timeout=30, check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        return out or "cuda"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return "cpu: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def torch_version() -> str:
    return importlib.metadata.version("torch")


def cached_baselines(store: "Store | None", problem_hash: str, device: str, modes: tuple[str, ...]) -> dict[str, float]:
    """The baselines of ``modes`` that the store already holds for this problem, device and torch."""
    if store is None:
        return {}
    found = {}
    for mode in modes:
        ms = store.baseline_ms(problem_hash, device_name(device), torch_version(), mode)
        if ms is not None:
            found[mode] = ms
    return found


def save_baselines(store: "Store | None", problem_hash: str, device: str, baselines: dict[str, float]) -> None:
    if store is None:
        return
    for mode, ms in baselines.items():
        store.put_baseline(problem_hash, device_name(device), torch_version(), mode, ms)


def compile_model(model: "torch.nn.Module", mode: str) -> "torch.nn.Module":
    """``torch.compile`` of the reference for a baseline mode (``compile`` or ``compile-max-autotune``)."""
    import torch

    if mode not in COMPILE_MODES:
        raise ValueError(f"unknown baseline {mode!r}; known: eager, {', '.join(COMPILE_MODES)}")
    return torch.compile(model, mode=COMPILE_MODES[mode])
