"""torch.compile's caches shared by the judges, and a warm-up that fills them ahead of the evaluations.

A judge (trusted: it never loads a candidate) compiles the torch.compile baselines with a first call; on a
network of hundreds of layers that compile takes minutes (DenseNet-200: 72 s on this repository's 2-core
CPU under load, 124 s on the H200). Judges started later in the same run (the winner's re-time, the next
problem of a bench, the next run) read Inductor's FX graph cache and Triton's kernel cache from
``Settings.compile_cache_dir`` instead (24 s -> 4 s on an idle 2-core CPU, DenseNet-200 at its small
size). Only judges write there: the candidates' workers keep private caches, so no candidate can plant a
compiled baseline.

``BaselineWarmer`` compiles the baselines of one problem in a judge process of its own while its caller
does other work (``optimize`` captures and renders meanwhile), so that the evaluations' judge finds them
cached. Its failures are returned as text, never raised: the judge then compiles as it would have.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from qimeng.core.command_job import Job
from qimeng.core.isolation import Binds, gpu_device_nodes
from qimeng.kernels.harness import device_lock
from qimeng.kernels.result import EvalOptions
from qimeng.settings import Settings

JUDGE_MODULE = "qimeng.kernels.harness.judge"
WARM_STARTUP_S = 120.0  # importing torch, loading the problem
WARM_PER_BASELINE_S = 600.0  # compiling one torch.compile baseline (as a judge's start-up allows)


@dataclass(frozen=True)
class JudgeCache:
    """What a judge's process gets for the shared caches: environment variables and writable directories."""

    env: dict[str, str]
    writable: tuple[Path, ...]


def judge_cache(settings: Settings) -> JudgeCache:
    """The shared compile caches for a judge; none (private caches) when the setting is off or the
    directory cannot be made."""
    root = settings.compile_cache_dir
    if root is None:
        return JudgeCache({}, ())
    root = root.resolve()
    inductor, triton = root / "inductor", root / "triton"
    try:
        inductor.mkdir(parents=True, exist_ok=True)
        triton.mkdir(parents=True, exist_ok=True)
    except OSError:
        return JudgeCache({}, ())
    return JudgeCache({"TORCHINDUCTOR_CACHE_DIR": str(inductor), "TRITON_CACHE_DIR": str(triton)}, (root,))


def judge_environment(settings: Settings, device: str) -> tuple[dict[str, str], tuple[Path, ...]]:
    """A judge's extra environment and writable directories: the shared compile caches and, on a GPU, the
    device lock's directory (a lock that cannot be made is flagged later, not fatal: ``device_lock``)."""
    cache = judge_cache(settings)
    env, writable = dict(cache.env), list(cache.writable)
    if device != "cpu":
        lock_dir = settings.device_lock_dir.resolve()
        env[device_lock.LOCK_DIR_ENV] = str(lock_dir)
        with contextlib.suppress(OSError):
            lock_dir.mkdir(parents=True, exist_ok=True)
            writable.append(lock_dir)
    return env, tuple(writable)


class BaselineWarmer:
    """Compiles the torch.compile baselines of ``options`` for ``problem`` in a judge of its own, from now
    until ``wait`` (nothing to do without a shared cache or a baseline to compile)."""

    def __init__(self, problem: Path, options: EvalOptions, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.started = time.monotonic()
        modes = [m for m in options.baselines if m != "eager"]
        self.timeout_s = WARM_STARTUP_S + WARM_PER_BASELINE_S * len(modes)
        self.job: Job | None = None
        env, writable = judge_environment(self.settings, options.device)
        if modes and "TORCHINDUCTOR_CACHE_DIR" in env:  # else a judge would compile into a cache of its own
            devices = gpu_device_nodes() if options.device.startswith("cuda") else ()
            self.job = Job(JUDGE_MODULE, {"problem": str(problem.resolve()), "options": dataclasses.asdict(options),
                                          "exchange": "", "baselines": modes, "warm_only": True},
                           settings=self.settings, extra_env=env,
                           binds=Binds(writable=writable, read_only=(problem.resolve(),), devices=devices))

    @property
    def compiling(self) -> bool:
        """Whether a compile was started and not yet waited for (or stopped)."""
        return self.job is not None

    def wait(self) -> str:
        """Wait for the compile (at most ``timeout_s`` from the start); what happened, in words. The job is
        closed either way."""
        if not self.compiling:
            return "not compiled ahead: no shared compile cache (QIMENG_COMPILE_CACHE=none) or no baseline to compile"
        try:
            message = self.job.receive(max(1.0, self.timeout_s - (time.monotonic() - self.started)))
            waited = time.monotonic() - self.started
            if message is None or message.get("kind") != "warm":
                why = message.get("reason") if message else f"the job {self.job.describe_exit()}"
                return f"not compiled ahead ({why}): the judge compiles the baselines itself"
        finally:
            self.close()
        errors = message.get("errors") or {}
        done = ", ".join(message.get("compiled") or []) or "nothing"
        cached = " (read back from the cache)" if message.get("cache_hits") else ""
        return (f"torch.compile baselines compiled ahead: {done} in {float(message.get('compile_s', 0.0)):.1f} s"
                f"{cached}, {waited:.1f} s after the start" + (f"; failed: {errors}" if errors else ""))

    def close(self) -> None:
        """Stop the compile, done or not."""
        if self.job is not None:
            self.job.close()
            self.job = None
