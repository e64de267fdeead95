"""Options and results of evaluating one kernel candidate against its problem's reference."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from qimeng.core.verdict import BadInput, Status

# Default tolerances by output dtype name (atol, rtol). fp32 is strict; half types are loose.
MODES = ("train", "eval")
PROTOCOLS = ("qimeng", "kernelbench")
# What ``--protocol kernelbench`` fixes (harness/kernelbench.py): its trial counts, its warm-up, every timed
# trial (no time budget), training mode.
KERNELBENCH_OPTIONS: dict[str, Any] = {"correctness_trials": 5, "timing_trials": 100, "warmup": 3,
                                       "timing_budget_s": None, "mode": "train"}

DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-4, 1e-4),
    "float32": (1e-4, 1e-4),
    "float16": (1e-2, 1e-2),
    "bfloat16": (1e-2, 1e-2),
}


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
    kernel_share: bool = True  # CUDA: profile the candidate for ``own_kernel_share`` (~5 s per worker, ~0.5 s each)
    mode: str = "train"  # "train": the modules as Model(*get_init_inputs()) builds them; "eval": .eval() first
    protocol: str = "qimeng"  # "qimeng" (strict) or "kernelbench" (that evaluator's timing: harness/kernelbench.py)


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
    mode: str = "train"  # the module mode the evaluation ran in (EvalOptions.mode)
    protocol: str = "qimeng"  # the timing protocol (EvalOptions.protocol)
    backend_flags: dict[str, Any] = field(default_factory=dict)  # TF32, cuDNN, matmul precision during the run
    peak_device_bytes: int | None = None  # torch.cuda.max_memory_allocated over the evaluation (None on CPU)
    peak_rss_bytes: int | None = None  # the worker's peak resident set over the evaluation
    problem_hash: str = ""
    candidate_hash: str = ""
    log: str = ""  # bounded captured stdout/stderr of the worker

    @property
    def correct(self) -> bool:
        return self.status is Status.OK

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
