"""Every process-wide knob of qimeng in one typed place, read from ``QIMENG_*`` environment variables.

Per-call options (tolerances, trial counts of one evaluation, ...) live in the option objects of the
command that takes them (for example ``qimeng.kernels.result.EvalOptions``); this module holds only
what is the same for a whole process.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

# Environment variables a sandboxed worker may inherit. Everything else (API keys, tokens, cloud
# credentials) is dropped before generated code runs.
DEFAULT_ENV_ALLOWLIST: tuple[str, ...] = (
    "PATH",
    "LANG",
    "LC_ALL",
    "TZ",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_VISIBLE_DEVICES",  # so that a worker's cuda:N is the parent's cuda:N (qimeng bench)
    "LD_LIBRARY_PATH",
    "TRITON_INTERPRET",
    "TRITON_PTXAS_PATH",
    "NCCL_NVLS_ENABLE",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS",
)


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not a number") from exc


@dataclass(frozen=True)
class Settings:
    """Process-wide settings. Build with :meth:`from_env`; every field names its variable."""

    store_path: Path = Path(".qimeng/qimeng.db")  # QIMENG_STORE
    work_dir: Path = Path(".qimeng")  # QIMENG_WORK_DIR: reports, caches, temporary trees
    eval_timeout_s: float = 180.0  # QIMENG_EVAL_TIMEOUT: hard wall-clock limit of one sandboxed job
    max_captured_output_bytes: int = 64 * 1024  # QIMENG_MAX_OUTPUT: stdout/stderr kept per job
    env_allowlist: tuple[str, ...] = field(default=DEFAULT_ENV_ALLOWLIST)  # QIMENG_ENV_ALLOW (comma list, added)
    # QIMENG_DEVICE_LOCKS: lock files that let one process at a time time work on a GPU, so that
    # evaluations started side by side (several `qimeng optimize`, `--jobs`) never disturb each other's clocks
    device_lock_dir: Path = Path(tempfile.gettempdir()) / "qimeng-device-locks"
    # QIMENG_GPU_MEMORY_FRACTION: share of a GPU's free memory that jobs sharing it may reserve together
    # (core/admission.py); the rest is slack for what footprint estimates miss
    gpu_memory_fraction: float = 0.9

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        extra = tuple(v for v in env.get("QIMENG_ENV_ALLOW", "").split(",") if v)
        return cls(
            store_path=Path(env.get("QIMENG_STORE", str(cls.store_path))),
            work_dir=Path(env.get("QIMENG_WORK_DIR", str(cls.work_dir))),
            eval_timeout_s=_env_float("QIMENG_EVAL_TIMEOUT", cls.eval_timeout_s),
            max_captured_output_bytes=int(_env_float("QIMENG_MAX_OUTPUT", cls.max_captured_output_bytes)),
            env_allowlist=DEFAULT_ENV_ALLOWLIST + extra,
            device_lock_dir=Path(env.get("QIMENG_DEVICE_LOCKS", str(cls.device_lock_dir))),
            gpu_memory_fraction=_env_float("QIMENG_GPU_MEMORY_FRACTION", cls.gpu_memory_fraction),
        )
