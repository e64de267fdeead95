"""Options and results of evaluating one kernel candidate against its problem's reference."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from qimeng.core.verdict import BadInput, Status

MODES = ("train", "eval")
PROTOCOLS = ("qimeng", "kernelbench")
# What ``--protocol kernelbench`` fixes (harness/kernelbench.py): its trial counts, its warm-up, every timed
# trial (no time budget), training mode.
KERNELBENCH_OPTIONS: dict[str, Any] = {"correctness_trials": 5, "timing_trials": 100, "warmup": 3,
                                       "timing_budget_s": None, "mode": "train"}

# Default tolerances by output dtype name (atol, rtol). fp32 is strict; half types are loose; fp8 keeps
# 2-3 mantissa bits (a relative step of 1/8 and 1/4). Complex types take their parts' tolerances, each
# part compared on its own. Integer and boolean outputs are compared exactly.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-4, 1e-4),
    "float32": (1e-4, 1e-4),
    "float16": (1e-2, 1e-2),
    "bfloat16": (1e-2, 1e-2),
    "float8_e4m3fn": (1e-1, 1.25e-1),
    "float8_e4m3fnuz": (1e-1, 1.25e-1),
    "float8_e5m2": (1e-1, 2.5e-1),
    "float8_e5m2fnuz": (1e-1, 2.5e-1),
    "complex128": (1e-4, 1e-4),
    "complex64": (1e-4, 1e-4),
    "complex32": (1e-2, 1e-2),
}


# Flags that say how a result passed, not that it needs a look (random_reference: the reference draws
# random numbers, its outputs were matched under one generator seed): every other flag is an integrity flag
# (beyond_roofline, speedup_over_10x, work_left_on_side_stream, timing_unlocked, timing_unverified,
# output_aliases_input, degenerate_reference, and any flag added later), and a result that carries one
# counts in no score (bench metrics): it is listed apart.
BENIGN_FLAGS: frozenset[str] = frozenset({"within_reference_error", "timing_not_meaningful", "random_reference"})


def integrity_flags(flags: list[str]) -> list[str]:
    """The flags of a result that keep it out of the scores."""
    return [f for f in flags if f not in BENIGN_FLAGS]


@dataclass(frozen=True)
class EvalOptions:
    """How one evaluation runs. ``atol``/``rtol`` of ``None`` mean: by dtype (DEFAULT_TOLERANCES)."""

    device: str = "cpu"  # "cpu" or "cuda" (or "cuda:N")
    correctness_trials: int = 5
    timing_trials: int = 100
    warmup: int = 10
    timing_budget_s: float | None = 10.0  # slow calls: fewer timed rounds (at least 5) once it is spent; None: all
    timeout_s: float = 180.0
    atol: float | None = None
    rtol: float | None = None
    seed: int = 0
    baselines: tuple[str, ...] = ("eager",)  # subset of {"eager", "compile", "compile-max-autotune"}
    time_candidate: bool = True
    small: bool = False  # apply the problem's SMALL size overrides (CPU tests)
    kernel_share: bool = True  # CUDA: profile the candidate for ``own_kernel_share`` after its verdict (~0.5 s; its
    # worker is then discarded: CUPTI stays subscribed there, and a fresh worker takes ~5 s to start)
    mode: str = "train"  # "train": the modules as Model(*get_init_inputs()) builds them; "eval": .eval() first
    protocol: str = "qimeng"  # "qimeng" (strict) or "kernelbench" (that evaluator's timing: harness/kernelbench.py)
    # True: the torch.compile baselines are timed in each candidate's own rounds, beside eager and the
    # candidate (three-way, by the judge), not when the judge starts and never read from the store's cache
    interleave_baselines: bool = False


@dataclass
class EvalResult:
    """What ``qimeng eval`` reports. Serialises to the JSON object of ``qimeng eval --json``."""

    status: Status
    reason: str = ""
    device: str = "cpu"
    ref_ms: float | None = None
    candidate_ms: float | None = None
    ref_iqr_ms: float | None = None
    candidate_iqr_ms: float | None = None
    speedup: float | None = None  # reference / candidate; None when not timed
    compile_ms: float | None = None  # loading + first call (JIT compilation) of the candidate
    baselines_ms: dict[str, float] = field(default_factory=dict)  # e.g. {"eager": .., "compile": ..}
    # which measurement produced each baseline: "rounds" (this candidate's timed rounds, interleaved with
    # it), "start-up" (the judge's start, interleaved with eager only), "store" (cached), "failed: why"
    baselines_from: dict[str, str] = field(default_factory=dict)
    # per baseline timed in the rounds: a 95% interval of the median per-round ratio baseline / candidate
    # (order statistics; both calls of a ratio share their round); none under --protocol kernelbench
    speedup_ci: dict[str, list[float]] = field(default_factory=dict)
    trials: int = 0  # correctness trials that ran
    timing_trials: int = 0
    timing_meaningful: bool = True  # False e.g. under the Triton interpreter
    atol: float | None = None
    rtol: float | None = None
    flags: list[str] = field(default_factory=list)
    ops_called: list[str] = field(default_factory=list)  # ATen ops the candidate's forward dispatched
    own_kernel_share: float | None = None  # share of the candidate's GPU time in its own kernels
    roofline_ms: float | None = None  # fastest possible time on this GPU (bytes or FLOPs at peak)
    versions: dict[str, str] = field(default_factory=dict)  # torch, triton, cuda, python, gpu
    phases_s: dict[str, float] = field(default_factory=dict)  # wall seconds of each stage of the evaluation
    # seconds the judge waited for the GPU's lock while other evaluations held it (device_lock); the judge's
    # start-up wait is counted in the first result of its judge
    lock_wait_s: float = 0.0
    mode: str = "train"  # the module mode the evaluation ran in (EvalOptions.mode)
    protocol: str = "qimeng"  # the timing protocol (EvalOptions.protocol)
    backend_flags: dict[str, Any] = field(default_factory=dict)  # TF32, cuDNN, matmul precision during the run
    peak_device_bytes: int | None = None  # the candidate's worker: torch.cuda.max_memory_allocated (None on CPU)
    peak_rss_bytes: int | None = None  # the candidate's worker's peak resident set over the evaluation
    judge_peak_device_bytes: int | None = None  # the same for the judge (reference, its outputs, comparisons)
    judge_peak_rss_bytes: int | None = None
    problem_hash: str = ""
    candidate_hash: str = ""
    log: str = ""  # bounded captured stdout/stderr of the worker

    @property
    def correct(self) -> bool:
        return self.status is Status.OK

    @property
    def device_footprint_bytes(self) -> int | None:
        """The candidate's worker's and the judge's device peaks together (both hold the GPU at once);
        None when neither was measured (the CPU)."""
        peaks = [b for b in (self.peak_device_bytes, self.judge_peak_device_bytes) if b is not None]
        return sum(peaks) if peaks else None

    @property
    def clean(self) -> bool:
        """Correct, with no integrity flag: the only results that count in a score."""
        return self.correct and not integrity_flags(self.flags)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["status"] = self.status.value
        data["correct"] = self.correct
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EvalResult":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["status"] = Status(kwargs["status"])
        return cls(**kwargs)


def protocol_options(protocol: str = "qimeng", **given: Any) -> EvalOptions:
    """EvalOptions for ``protocol`` from the given fields; a field given as None takes the protocol's
    value (``KERNELBENCH_OPTIONS``) or EvalOptions' default. BadInput for an unknown protocol or mode, or
    a mode the protocol does not allow."""
    if protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    fixed = KERNELBENCH_OPTIONS if protocol == "kernelbench" else {}
    if protocol == "kernelbench" and given.get("mode") not in (None, "train"):
        raise BadInput("--protocol kernelbench evaluates in training mode, as KernelBench does (drop --mode eval)")
    fields = {k: v for k, v in given.items() if v is not None}
    options = EvalOptions(**{**{k: v for k, v in fixed.items() if given.get(k) is None}, **fields,
                             "protocol": protocol})
    check_options(options)
    return options


def check_options(options: EvalOptions) -> None:
    """BadInput unless the mode and protocol are known."""
    if options.mode not in MODES:
        raise BadInput(f"unknown mode {options.mode!r}: use one of {', '.join(MODES)}")
    if options.protocol not in PROTOCOLS:
        raise BadInput(f"unknown protocol {options.protocol!r}: use one of {', '.join(PROTOCOLS)}")
