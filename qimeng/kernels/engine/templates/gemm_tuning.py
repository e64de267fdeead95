"""Measuring the GEMM template on the target: each precision's error against a float64 product, the
strict-fp32 choice that follows from it, and block configurations timed and cached by
(kernel hash, device, problem).

Strict fp32 is verified, not assumed: ``strict_precision`` runs 3xTF32 at the given K on random
inputs and keeps it where every element meets ``|out - ref| <= atol + rtol * |ref|`` (the
harness's fp32 rule, 1e-4 each) against the float64 product, or where it is at least as accurate as
plain fp32; otherwise it answers ``ieee``. Under
the Triton interpreter every product is a float32 numpy product, so this measures float32 rounding
only (TF32 is not emulated there): the real check is the one on the GPU.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from qimeng.kernels.engine.templates.epilogue import Epilogue
from qimeng.kernels.engine.templates.gemm import GemmConfig, Problem, gemm, load, template_source
from qimeng.kernels.engine.templates.gemm_source import source_hash

STRICT_TOLERANCE = 1e-4


@dataclass(frozen=True)
class PolicyError:
    precision: str
    k: int
    max_abs: float  # max |out - ref|
    rel_fro: float  # ||out - ref|| / ||ref||
    tol_ratio: float  # max |out - ref| / (atol + rtol * |ref|): <= 1 meets the strict tolerance

    @property
    def strict_ok(self) -> bool:
        return self.tol_ratio <= 1.0


def float64_product(a: torch.Tensor, b: torch.Tensor, rows: int = 1024) -> torch.Tensor:
    """``a @ b`` in float64 on ``a``'s device, ``rows`` rows of A at a time (bounded memory)."""
    b64 = b.double()
    out = torch.empty(*a.shape[:-1], b.shape[-1], dtype=torch.float64, device=a.device)
    for start in range(0, a.shape[-2], rows):
        out[..., start:start + rows, :] = a[..., start:start + rows, :].double() @ b64
    return out


def compare(out: torch.Tensor, ref: torch.Tensor, precision: str, k: int,
            tolerance: float = STRICT_TOLERANCE) -> PolicyError:
    diff = (out.double() - ref).abs()
    ratio = (diff / (tolerance + tolerance * ref.abs())).max().item()
    rel = (diff.norm() / ref.norm().clamp_min(1e-300)).item()
    return PolicyError(precision, k, diff.max().item(), rel, ratio)


def policy_error(precision: str, problem: Problem, device: str, seed: int = 0,
                 config: GemmConfig | None = None) -> PolicyError:
    """The template's error at ``precision`` on random normal inputs of ``problem``'s sizes."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    a = torch.randn(problem.batch, problem.m, problem.k, generator=gen).to(device)
    b = torch.randn(problem.batch, problem.k, problem.n, generator=gen).to(device)
    out = gemm(a, b, precision=precision, config=config)
    return compare(out, float64_product(a, b), precision, problem.k)


_STRICT: dict[tuple[int, str], tuple[str, list[PolicyError]]] = {}


def strict_precision(k: int, device: str, m: int = 256, n: int = 256) -> tuple[str, list[PolicyError]]:
    """``tf32x3`` where it meets the strict tolerance at this K on this device, or where it is at least
    as accurate as ``ieee`` (plain fp32 misses 1e-4 against float64 too at large K); else ``ieee``.
    With the measurements (kept per (K, device) for the process)."""
    key = (k, device)
    if key not in _STRICT:
        fast = policy_error("tf32x3", Problem(m, n, k), device)
        if fast.strict_ok:
            _STRICT[key] = ("tf32x3", [fast])
        else:
            plain = policy_error("ieee", Problem(m, n, k), device)
            _STRICT[key] = ("tf32x3" if fast.tol_ratio <= plain.tol_ratio else "ieee", [fast, plain])
    return _STRICT[key]


class TuningCache:
    """Best configuration per (kernel hash, device, problem), kept in a JSON file."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict[str, dict] = {}
        if path is not None and path.exists():
            self.entries = json.loads(path.read_text())

    @staticmethod
    def key(kernel_hash: str, device: str, problem: Problem, b_k_major: bool = False) -> str:
        """B's layout is part of it: the small-M kernels' best shapes follow B's contiguous axis."""
        return (f"{kernel_hash}|{device}|{problem.batch}x{problem.m}x{problem.n}x{problem.k}"
                + ("|B K-major" if b_k_major else ""))

    def get(self, key: str) -> GemmConfig | None:
        entry = self.entries.get(key)
        return GemmConfig(**entry["config"]) if entry else None

    def put(self, key: str, config: GemmConfig, ms: float) -> None:
        self.entries[key] = {"config": asdict(config), "ms": ms}
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.entries, indent=1, sort_keys=True))


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


@dataclass
class TuneResult:
    best: GemmConfig
    times: dict[str, float]  # config key -> ms (inf: failed); empty when the cache answered
    failures: dict[str, str]  # config key -> why it failed to compile or run


def autotune(a: torch.Tensor, b: torch.Tensor, configs: list[GemmConfig], timer: Callable[[Callable], float], *,
             precision: str = "tf32x3", epilogue: Epilogue = Epilogue(),
             operands: dict[str, torch.Tensor] | None = None, cache: TuningCache | None = None) -> TuneResult:
    """The fastest of ``configs`` by ``timer`` (milliseconds of one call, e.g. ``do_bench``); a config
    that fails to compile or run (shared memory, registers) is skipped. Cached when ``cache`` is given."""
    problem = Problem(a.shape[-2], b.shape[-1], a.shape[-1], math.prod(torch.broadcast_shapes(a.shape[:-2],
                                                                                             b.shape[:-2])))
    out_dtype = str(a.dtype).removeprefix("torch.")
    digest = source_hash(template_source(precision, epilogue, out_dtype))
    key = TuningCache.key(digest, device_name(a.device), problem, b.stride(-2) == 1 and b.shape[-1] > 1)
    if cache is not None and cache.get(key) is not None:
        return TuneResult(cache.get(key), {}, {})
    load(precision, epilogue, out_dtype)
    times: dict[str, float] = {}
    failures: dict[str, str] = {}
    for config in configs:
        try:
            times[config.key()] = timer(lambda: gemm(a, b, precision=precision, epilogue=epilogue,
                                                     operands=operands, config=config))
        except Exception as exc:  # recorded as a value: the other configs still run
            times[config.key()] = math.inf
            failures[config.key()] = f"{type(exc).__name__}: {str(exc)[:300]}"
    best = min(configs, key=lambda c: times[c.key()])
    if cache is not None and math.isfinite(times[best.key()]):
        cache.put(key, best, times[best.key()])
    return TuneResult(best, times, failures)
