"""GPU benchmark of the GEMM template (qimeng/kernels/engine/templates/gemm.py) in one call.

    PYTHONPATH=$PWD python3 scripts/gpu_gemm_bench.py [--sizes 4096 8192] [--budget 150] [--no-sweep]
    PYTHONPATH=$PWD python3 scripts/gpu_gemm_bench.py --candidates --budget 240  # the tuning candidates alone

Without a GPU it runs the same code under TRITON_INTERPRET=1 at sizes divided by 32 (a test of the
script, no timing meaning): TRITON_INTERPRET=1 python3 scripts/gpu_gemm_bench.py --sizes 64 --ks 256

Sections, each skipped once the time budget is spent (the default 150 s reaches the first four; 380
runs them all): correctness on odd shapes (every precision, transposes, broadcast batches, split-K, a
fused epilogue, a matrix-vector product) against float64; decode shapes (1 and 8 x 8192 x 8192, both B
layouts, every small-M candidate swept, TFLOP/s and GB/s against cuBLAS and torch.compile, and in a CUDA
graph); bf16 at the first size
(every curated tile swept); each precision's error against a float64 product over K; a config sweep
per precision at the first size; TFLOP/s of ours against cuBLAS (strict fp32 with allow_tf32=False,
TF32, bf16) and torch.compile; GEMM + bias + GELU against eager and torch.compile; M = 64 and K-large
shapes with split-K; the attention template
against F.scaled_dot_product_attention (fp32 strict and bf16, causal or not). ``--candidates`` runs the
decode section and ``attention_candidates`` (bf16, six shapes of B 4-16, H 16-32, L 1024-8192, D 64/128,
causal and not: every curated tile against SDPA and torch.compile) alone, and closes with a table of
each case's fastest candidate and its ratio to the vendor. Times are medians of
``triton.testing.do_bench`` on random data (never zeros); errors are against float64 products
computed on the GPU in row chunks. JSON goes to $OUT/gemm_bench.json; a short table is printed last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import triton
from triton.testing import do_bench

from qimeng.kernels.engine.templates import epilogue as ep
from qimeng.kernels.engine.templates.attention import AttentionConfig, attention
from qimeng.kernels.engine.templates.attention import curated_configs as attention_configs
from qimeng.kernels.engine.templates.gemm import GemmConfig, Problem, curated_configs, gemm, sm_count
from qimeng.kernels.engine.templates.gemm_source import PRECISIONS
from qimeng.kernels.engine.templates.gemm_tuning import (TuningCache, autotune, compare, float64_product,
                                                         strict_precision)

OUT = Path(os.environ.get("OUT", "."))
RESULTS: dict = {"rows": [], "errors": [], "checks": [], "sweeps": {}, "best_ms": {}, "best": []}
# --smoke: the same code on the CPU under TRITON_INTERPRET=1 at tiny sizes (a test of this script only)
SMOKE = not torch.cuda.is_available()
DEVICE = "cpu" if SMOKE else "cuda"
SHRINK = 32 if SMOKE else 1
STRICT_VARIANTS = ("tf32x3", "tf32x3_split", "tf32x3_presplit")
PASS_RULE = {"tf32x3": ("tol", 1e-4), "tf32x3_split": ("tol", 1e-4), "tf32x3_presplit": ("tol", 1e-4),
             "ieee": ("tol", 1e-4),
             "tf32": ("rel", 2e-3), "bf16": ("rel", 1e-2)}


class Budget:
    def __init__(self, seconds: float):
        self.end = time.time() + seconds

    def left(self) -> float:
        return self.end - time.time()


def log(*args) -> None:
    print(*args, flush=True)


def save() -> None:
    (OUT / "gemm_bench.json").write_text(json.dumps(RESULTS, indent=1, default=str))


def ms(fn, rep: int = 150) -> float:
    if SMOKE:
        start = time.perf_counter()
        fn()
        return (time.perf_counter() - start) * 1e3
    return do_bench(fn, warmup=min(25, rep), rep=rep, return_mode="median")


def sweep_ms(fn) -> float:
    """A shorter median for candidate sweeps (a config's rank, not its figure)."""
    return ms(fn, rep=40)


def graph_ms(fn) -> float:
    """The GPU time alone: ``fn`` captured in a CUDA graph and replayed (no host time between kernels)."""
    return ms(fn) if SMOKE else triton.testing.do_bench_cudagraph(fn, rep=50, return_mode="median")


def compile_fn(fn):
    return fn if SMOKE else torch.compile(fn)


def tflops(m: int, n: int, k: int, t_ms: float, batch: int = 1) -> float:
    return 2.0 * m * n * k * batch / (t_ms * 1e-3) / 1e12


def passes(precision: str, err) -> bool:
    kind, bound = PASS_RULE[precision]
    return err.tol_ratio <= 1.0 if kind == "tol" else err.rel_fro <= bound


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def check_correctness() -> None:
    """Odd sizes, strides, batches, split-K and an epilogue for every precision, against float64 (and
    cuBLAS SGEMM's error on the same inputs)."""
    g = torch.Generator(device=DEVICE).manual_seed(1)

    def r(*shape):
        return torch.randn(*(max(1, d // SHRINK) for d in shape), device=DEVICE, generator=g)

    bias = r(999)
    e = ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1), activation="gelu",
                 operands=(ep.Operand("bias", "float32"),))
    cases = {
        "odd 1000x999x1037": lambda: (r(1000, 1037), r(1037, 999), {}, None),
        "A^T B^T": lambda: (r(1037, 1000).t(), r(999, 1037).t(), {}, None),
        "broadcast 4-D": lambda: (r(64, 32, 129, 257)[:2, :1], r(96, 257, 131)[:3], {}, None),
        "matvec split-K": lambda: (r(32, 8191)[:1], r(8191, 999), {}, None),
        "K-large split-K": lambda: (r(130, 65537), r(65537, 127), {}, None),
        "bias+gelu epilogue": lambda: (r(1000, 1037), r(1037, 999), {"bias": bias}, e),
    }
    made = {name: make() for name, make in cases.items()}
    for name, (a, b, ops, epi) in made.items():
        ref = torch.matmul(a.double(), b.double())
        if epi is not None:
            ref = F.gelu(ref + bias.double())
        set_tf32(False)
        vendor = torch.matmul(a, b)
        vendor = F.gelu(vendor + bias) if epi is not None else vendor
        vendor_err = compare(vendor, ref, "cublas", a.shape[-1])
        for precision in PRECISIONS + ("strict",):
            out = guarded(f"check {precision} {name}", lambda: gemm(a, b, precision=precision,
                                                                     epilogue=epi or ep.Epilogue(), operands=ops))
            if out is None:
                RESULTS["checks"].append({"precision": precision, "case": name, "ok": False, "tol_ratio": math.inf})
                continue
            err = compare(out, ref, precision, a.shape[-1])
            rule = "tf32x3" if precision == "strict" else precision
            # strict: 1e-4 against float64, or at least as accurate as cuBLAS SGEMM (which misses it at large K)
            ok = (passes(rule, err) or (PASS_RULE[rule][0] == "tol" and err.tol_ratio <= vendor_err.tol_ratio)) \
                and not torch.isnan(out).any().item()
            RESULTS["checks"].append({"precision": precision, "case": name, "ok": ok, "cublas_tol_ratio":
                                      vendor_err.tol_ratio, **err.__dict__})
            log(f"check {precision:15s} {name:20s} {'ok ' if ok else 'BAD'} tol_ratio={err.tol_ratio:.3g} "
                f"(cublas {vendor_err.tol_ratio:.3g}) rel={err.rel_fro:.2e} max_abs={err.max_abs:.2e}")
    save()


def error_over_k(ks: list[int]) -> None:
    """Each policy's error against float64 at M = N = 512 for each K, and cuBLAS's for reference."""
    g = torch.Generator(device=DEVICE).manual_seed(2)
    for k in ks:
        a = torch.randn(512 // SHRINK, k // SHRINK, device=DEVICE, generator=g)
        b = torch.randn(k // SHRINK, 512 // SHRINK, device=DEVICE, generator=g)
        ref = float64_product(a, b)
        for name, fn in (("tf32x3", lambda: gemm(a, b, precision="tf32x3")),
                         ("tf32x3_split", lambda: gemm(a, b, precision="tf32x3_split")),
                         ("tf32x3_presplit", lambda: gemm(a, b, precision="tf32x3_presplit")),
                         ("ieee", lambda: gemm(a, b, precision="ieee")),
                         ("tf32", lambda: gemm(a, b, precision="tf32")),
                         ("bf16", lambda: gemm(a, b, precision="bf16")),
                         ("cublas_fp32", lambda: (set_tf32(False), a @ b)[1]),
                         ("cublas_tf32", lambda: (set_tf32(True), a @ b)[1])):
            err = compare(fn(), ref, name, k)
            set_tf32(False)
            RESULTS["errors"].append({"who": name, **err.__dict__, "strict_ok": err.strict_ok})
            log(f"error K={k:6d} {name:15s} tol_ratio={err.tol_ratio:8.3g} rel={err.rel_fro:.2e} "
                f"strict={'yes' if err.strict_ok else 'no'}")
        choice, measured = strict_precision(k, DEVICE, 256 // SHRINK, 256 // SHRINK)
        RESULTS.setdefault("strict_choice", {})[k] = choice
        log(f"strict_precision K={k}: {choice} ({', '.join(f'{e.precision} {e.tol_ratio:.3g}' for e in measured)})")
    save()


def inputs(n: int, dtype=torch.float32, seed: int = 3):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    a = torch.randn(n, n, device=DEVICE, generator=g).to(dtype)
    b = torch.randn(n, n, device=DEVICE, generator=g).to(dtype)
    return a, b


def sweep(n: int, precision: str, budget: Budget, cache: TuningCache, configs: list[GemmConfig]) -> list[GemmConfig]:
    """``configs`` timed at n x n x n (row-major inputs); returns them fastest first."""
    sixteen = precision == "bf16"
    a, b = inputs(n, torch.bfloat16 if sixteen else torch.float32)
    if budget.left() < 60:
        return configs
    result = autotune(a, b, configs, ms, precision=precision, cache=cache)
    if result.times:  # else the cache answered (this size was swept earlier in the run)
        RESULTS["sweeps"][f"{precision} {n}"] = {"times_ms": result.times, "failures": result.failures,
                                                 "best": result.best.key()}
    for key, t in sorted(result.times.items(), key=lambda kv: kv[1]):
        log(f"sweep {precision:15s} n={n} {key:28s} {t:8.3f} ms {tflops(n, n, n, t):7.1f} TFLOP/s"
            + (f"  ({result.failures[key][:120]})" if key in result.failures else ""))
    save()
    rest = sorted((c for c in configs if c != result.best), key=lambda c: result.times.get(c.key(), math.inf))
    return [result.best] + rest


def guarded(label: str, fn, *args):
    """Run one section or measurement; a failure is logged and recorded, and the run goes on."""
    try:
        return fn(*args)
    except Exception as exc:  # the one GPU call must bring back everything that did work
        RESULTS.setdefault("failures", []).append(f"{label}: {type(exc).__name__}: {str(exc)[:500]}")
        log(f"FAILED {label}: {type(exc).__name__}: {str(exc)[:500]}")
        return None


def timed(section: str, who: str, n: int, fn, ref, precision: str, m=None, k=None, elem=4) -> None:
    guarded(f"{section} {who} {n}", lambda: row(section, who, n, ms(fn), compare(fn(), ref, precision, k or n),
                                                 m=m, k=k, elem=elem))


def gbs(m: int, n: int, k: int, t_ms: float, batch: int = 1, elem: int = 4) -> float:
    """GB/s of the compulsory traffic: A and B read once, C written once."""
    return elem * batch * (m * k + k * n + m * n) / (t_ms * 1e-3) / 1e9


def row(section: str, who: str, n: int, t: float, err=None, m=None, k=None, batch=1, elem=4) -> None:
    m = m or n
    k = k or n
    entry = {"section": section, "who": who, "m": m, "n": n, "k": k, "batch": batch, "ms": t,
             "tflops": tflops(m, n, k, t, batch), "gbs": gbs(m, n, k, t, batch, elem)}
    if err is not None:
        entry.update(tol_ratio=err.tol_ratio, rel_fro=err.rel_fro, max_abs=err.max_abs, strict_ok=err.strict_ok)
    RESULTS["rows"].append(entry)
    log(f"time {section:10s} {who:22s} {m}x{n}x{k}: {t:8.3f} ms {entry['tflops']:7.1f} TFLOP/s {entry['gbs']:7.0f} GB/s"
        + (f" tol_ratio={err.tol_ratio:.3g} rel={err.rel_fro:.2e}" if err is not None else ""))
    save()


def square(n: int, best: dict[str, GemmConfig], budget: Budget) -> None:
    a, b = inputs(n)
    b_kmajor = b.t().contiguous().t()  # the same values, laid out as nn.Linear's weight.t()
    ref = float64_product(a, b)
    set_tf32(False)
    compiled = compile_fn(lambda x, y: x @ y)
    strict = [("cublas sgemm", lambda: a @ b, "ieee"), ("torch.compile fp32", lambda: compiled(a, b), "ieee")]
    for variant in STRICT_VARIANTS:
        strict.append((f"ours {variant}", lambda v=variant: gemm(a, b, precision=v, config=best[v]), variant))
    fastest = min(STRICT_VARIANTS, key=lambda v: RESULTS["best_ms"].get(f"{v} {n}", math.inf))
    strict.append((f"ours {fastest} B K-major", lambda: gemm(a, b_kmajor, precision=fastest, config=best[fastest]),
                   fastest))
    strict.append(("cublas sgemm B K-major", lambda: a @ b_kmajor, "ieee"))
    for who, fn, prec in strict:
        if budget.left() < 20:
            return
        timed("strict", who, n, fn, ref, prec)
    set_tf32(True)
    timed("tf32", "cublas tf32", n, lambda: a @ b, ref, "tf32")
    set_tf32(False)
    timed("tf32", "ours tf32", n, lambda: gemm(a, b, precision="tf32", config=best["tf32"]), ref, "tf32")
    timed("tf32", "ours tf32 B K-major", n, lambda: gemm(a, b_kmajor, precision="tf32", config=best["tf32"]), ref,
          "tf32")
    ah, bh = a.bfloat16(), b.bfloat16()
    ref16 = float64_product(ah, bh)
    timed("bf16", "cublas bf16", n, lambda: ah @ bh, ref16, "bf16")
    timed("bf16", "ours bf16", n, lambda: gemm(ah, bh, precision="bf16", config=best["bf16"]), ref16, "bf16")
    del ref, ref16


def linear_gelu(n: int, variant: str, config: GemmConfig, budget: Budget) -> None:
    """y = gelu(x @ w.T + bias) at strict fp32: ours fused (w.T as strides) vs eager vs torch.compile."""
    g = torch.Generator(device=DEVICE).manual_seed(4)
    x = torch.randn(n, n, device=DEVICE, generator=g)
    w = torch.randn(n, n, device=DEVICE, generator=g) / math.sqrt(n)
    bias = torch.randn(n, device=DEVICE, generator=g)
    set_tf32(False)
    eager = lambda: F.gelu(F.linear(x, w, bias))  # noqa: E731
    compiled_fn = compile_fn(lambda x, w, bias: F.gelu(F.linear(x, w, bias)))
    e = ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1), activation="gelu",
                 operands=(ep.Operand("bias", "float32"),))
    ours = lambda: gemm(x, w.t(), precision=variant, epilogue=e, operands={"bias": bias}, config=config)  # noqa: E731
    ref = F.gelu(float64_product(x, w.t()) + bias.double())
    for who, fn in (("eager", eager), ("torch.compile", lambda: compiled_fn(x, w, bias)), (f"ours {variant}", ours)):
        if budget.left() < 15:
            return
        timed("linear+gelu", who, n, fn, ref, "tf32x3")
    # only the row sums are needed: ours never writes the [n, n] activations (not yet run on a GPU)
    ref_sum = ref.sum(-1)
    compiled_sum = compile_fn(lambda x, w, bias: F.gelu(F.linear(x, w, bias)).sum(-1))
    for who, fn in (("torch.compile", lambda: compiled_sum(x, w, bias)),
                    (f"ours {variant} row_reduce", lambda: gemm(x, w.t(), precision=variant, epilogue=e,
                                                                operands={"bias": bias}, config=config,
                                                                row_reduce="sum"))):
        if budget.left() < 15:
            return
        timed("linear+gelu+rowsum", who, n, fn, ref_sum, "tf32x3")


def best_row(case: str, best: str, ours: float, vendor: str, vendor_ms: float, compiled_ms: float | None = None,
             err=None, ours_graph: float | None = None, vendor_graph: float | None = None) -> None:
    """One line of the closing table: a case's fastest candidate against the vendor's call."""
    RESULTS["best"].append({"case": case, "best": best, "ours_ms": ours, "vendor": vendor, "vendor_ms": vendor_ms,
                            "ratio": vendor_ms / ours, "compile_ms": compiled_ms, "ours_graph_ms": ours_graph,
                            "vendor_graph_ms": vendor_graph,
                            "tol_ratio": None if err is None else err.tol_ratio})
    save()


def small_m(budget: Budget, cache: TuningCache, rows: tuple[int, ...] = (1, 8)) -> None:
    """Decode products at strict fp32 (``rows`` x 8192 x 8192, B row-major and K-major as nn.Linear's
    ``weight.t()``): every small-M candidate for B's layout swept (the narrow tensor-core tile, the
    streaming kernel's shapes, the small-M kernel's), then cuBLAS SGEMV/SGEMM, torch.compile, ours at the
    default and at the sweep's best, in TFLOP/s and GB/s (B is 256 MiB: the time is one read of it; the
    H200's copy ceiling is 4.27 TB/s, about 0.063 ms), and the best and cuBLAS once more in a CUDA graph
    (GPU time without the host's: ``gemm()`` costs tens of microseconds of Python a call)."""
    set_tf32(False)
    g = torch.Generator(device=DEVICE).manual_seed(7)
    sms = sm_count(torch.device(DEVICE))
    compiled = compile_fn(lambda x, y: x @ y)
    for m in rows:
        n, k = 8192 // SHRINK, 8192 // SHRINK
        a = torch.randn(m, k, device=DEVICE, generator=g)
        b = torch.randn(k, n, device=DEVICE, generator=g)
        ref = float64_product(a, b)
        for layout, bb in ((" B row-major", b), (" B K-major", b.t().contiguous().t())):
            if budget.left() < 20:
                return
            configs = curated_configs(Problem(m, n, k), "ieee", False, sms, b_k_major=bb.stride(-2) == 1)
            result = autotune(a, bb, configs, sweep_ms, precision="ieee", cache=cache)
            RESULTS["sweeps"][f"small-M {m}x{n}x{k}{layout}"] = {"times_ms": result.times, "failures": result.failures,
                                                                "best": result.best.key()}
            for key, t in sorted(result.times.items(), key=lambda kv: kv[1]):
                log(f"sweep small-M {m}x{n}x{k}{layout} {key:32s} {t:8.4f} ms {gbs(m, n, k, t):7.0f} GB/s"
                    + (f"  ({result.failures[key][:120]})" if key in result.failures else ""))
            best = lambda: gemm(a, bb, config=result.best)  # noqa: E731
            times = {}
            for who, fn in (("cublas sgemm", lambda: a @ bb), ("torch.compile fp32", lambda: compiled(a, bb)),
                            ("ours default", lambda: gemm(a, bb)), (f"ours best {result.best.key()}", best)):
                times[who] = guarded(f"small-M{layout} {who} {m}", ms, fn)
                if times[who] is not None:
                    guarded(f"small-M{layout} {who} {m} error", lambda: row(
                        "small-M" + layout, who, n, times[who], compare(fn(), ref, "ieee", k), m=m, k=k))
            graphs = {who: guarded(f"small-M{layout} {who} {m} graph", graph_ms, fn)
                      for who, fn in (("ours", best), ("cublas", lambda: a @ bb))}
            if times.get(f"ours best {result.best.key()}") and times.get("cublas sgemm"):
                best_row(f"decode {m}x{n}x{k}{layout} fp32", result.best.key(), times[f"ours best {result.best.key()}"],
                         "cuBLAS", times["cublas sgemm"], times.get("torch.compile fp32"),
                         compare(best(), ref, "ieee", k), graphs["ours"], graphs["cublas"])


def bf16_square(n: int, budget: Budget, cache: TuningCache, max_configs: int) -> None:
    """bf16 at n³ first (the gap at 4096): every curated bf16 tile swept, then cuBLAS, torch.compile and ours."""
    ah, bh = inputs(n, torch.bfloat16, seed=8)
    configs = curated_configs(Problem(n, n, n), "bf16", True, sm_count(torch.device(DEVICE)))[:max_configs]
    ranked = sweep(n, "bf16", budget, cache, configs)
    ref16 = float64_product(ah, bh)
    compiled = compile_fn(lambda x, y: x @ y)
    for who, fn in (("cublas bf16", lambda: ah @ bh), ("torch.compile bf16", lambda: compiled(ah, bh)),
                    (f"ours bf16 {ranked[0].key()}", lambda: gemm(ah, bh, precision="bf16", config=ranked[0]))):
        if budget.left() < 10:
            return
        timed("bf16 first", who, n, fn, ref16, "bf16", elem=2)


def skinny(budget: Budget) -> None:
    """Small-M (64) and K-large products at strict fp32: ours (default split-K; FMA and 3xTF32, to place
    the crossover that ``strict_variant`` encodes) vs cuBLAS."""
    set_tf32(False)
    g = torch.Generator(device=DEVICE).manual_seed(5)
    for m, n, k in ((64, 4096, 4096), (512, 512, 131072)):
        if budget.left() < 15:
            return
        m, n, k = max(1, m // SHRINK), n // SHRINK, k // SHRINK
        a = torch.randn(m, k, device=DEVICE, generator=g)
        b = torch.randn(k, n, device=DEVICE, generator=g)
        ref = float64_product(a, b)
        timed("skinny", "cublas sgemm", n, lambda: a @ b, ref, "ieee", m=m, k=k)
        for variant in ("ieee", "tf32x3", "tf32x3_presplit"):
            timed("skinny", f"ours {variant}", n, lambda v=variant: gemm(a, b, precision=v), ref, variant, m=m, k=k)


def attention_sweep(q, k, v, precision: str) -> AttentionConfig | None:
    """The fastest of the template's curated tiles (non-causal) at this size; None keeps the default."""
    times = {}
    for config in attention_configs(q.shape[-1], precision):
        t = guarded(f"attention sweep {precision} {config}",
                    lambda: sweep_ms(lambda: attention(q, k, v, precision=precision, config=config)))
        if t is not None:
            times[config] = t
            log(f"sweep attention {precision:6s} {config}: {t:.3f} ms")
    RESULTS["sweeps"][f"attention {precision} {q.shape[2]}"] = {str(c): t for c, t in times.items()}
    return min(times, key=times.get) if times else None


def attention_bench(budget: Budget, seqs: list[int]) -> None:
    """Ours against F.scaled_dot_product_attention (PyTorch's flags: fp32 strict), B=4, H=16, D=128.
    TFLOP/s counts 4·B·H·S²·D (dense, also for causal); the error is on batch 0 against float64 SDPA."""
    set_tf32(False)
    bsz, heads, d = (1, 2, 32) if SMOKE else (4, 16, 128)
    g = torch.Generator(device=DEVICE).manual_seed(6)
    for dtype, precision in ((torch.float32, "strict"), (torch.bfloat16, "bf16")):
        for seq in seqs:
            seq = seq // SHRINK
            q, k, v = (torch.randn(bsz, heads, seq, d, device=DEVICE, generator=g).to(dtype) for _ in range(3))
            config = attention_sweep(q, k, v, precision) if seq == max(seqs) // SHRINK else None
            for causal in (False, True):
                if budget.left() < 15:
                    return
                ref = F.scaled_dot_product_attention(q[:1].double(), k[:1].double(), v[:1].double(), is_causal=causal)
                for who, fn in (("sdpa", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal)),
                                (f"ours {precision}", lambda: attention(q, k, v, causal=causal, precision=precision,
                                                                       config=config))):
                    label = f"attention {'causal' if causal else 'full'} {str(dtype)[6:]}"
                    guarded(f"{label} {who} {seq}", lambda: row(label, who, seq, ms(fn),
                                                                compare(fn()[:1], ref, precision, d),
                                                                m=seq, k=d, batch=2 * bsz * heads))


# bf16 attention cases (batch, heads, sequence, head dim), each causal and not: B 4-16, H 16-32, L 1024-8192
ATTENTION_CASES = ((16, 16, 1024, 64), (8, 32, 1024, 128), (4, 32, 4096, 64), (4, 16, 4096, 128),
                   (4, 16, 8192, 128), (8, 16, 8192, 64))
BF16_ATTENTION_TOL = 2e-2  # the bf16 policy's tolerance (steps.PRECISION_TOLERANCES)


def attention_candidates(budget: Budget) -> None:
    """bf16 attention: every curated tile of the template timed per case and causal or not against SDPA
    (flash) and torch.compile in the same run; the fastest tile, its ratio and its error (batch 0, two
    heads, against float64 SDPA, at the bf16 tolerance) go to the closing table."""
    g = torch.Generator(device=DEVICE).manual_seed(9)
    compiled = compile_fn(lambda q, k, v, causal: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
    for bsz, heads, seq, d in ATTENTION_CASES[:1] if SMOKE else ATTENTION_CASES:
        bsz, heads, seq = (1, 2, 40) if SMOKE else (bsz, heads, seq)
        q, k, v = (torch.randn(bsz, heads, seq, d, device=DEVICE, generator=g).bfloat16() for _ in range(3))
        for causal in (False, True):
            if budget.left() < 15:
                return
            case = f"attention bf16 B={bsz} H={heads} L={seq} D={d}" + (" causal" if causal else "")
            vendor = guarded(f"{case} sdpa", ms, lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
            times = {}
            for config in attention_configs(d, "bf16"):
                t = guarded(f"{case} {config}", sweep_ms,
                            lambda: attention(q, k, v, causal=causal, precision="bf16", config=config))
                if t is not None:
                    times[config] = t
                    log(f"sweep {case} {config.key()}: {t:.3f} ms")
                if budget.left() < 10:
                    break
            RESULTS["sweeps"][case] = {c.key(): t for c, t in times.items()}
            if not times or vendor is None:
                continue
            best = min(times, key=times.get)
            ours = ms(lambda: attention(q, k, v, causal=causal, precision="bf16", config=best))
            compiled_ms = guarded(f"{case} torch.compile", ms, lambda: compiled(q, k, v, causal)) \
                if budget.left() > 60 else None
            qs, ks, vs = q[:1, :2], k[:1, :2], v[:1, :2]
            ref = F.scaled_dot_product_attention(qs.double(), ks.double(), vs.double(), is_causal=causal)
            err = compare(attention(qs, ks, vs, causal=causal, precision="bf16", config=best), ref, "bf16", d,
                          tolerance=BF16_ATTENTION_TOL)
            for who, t in (("sdpa", vendor), (f"ours {best.key()}", ours), ("torch.compile", compiled_ms)):
                if t is not None:
                    row(case, who, seq, t, err if who.startswith("ours") else None, m=seq, k=d, batch=2 * bsz * heads,
                        elem=2)
            best_row(case, best.key(), ours, "SDPA", vendor, compiled_ms, err)


def table() -> None:
    log("\n| section | who | m x n x k | ms | TFLOP/s | GB/s | tol_ratio (1e-4) | rel err |")
    log("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in RESULTS["rows"]:
        log(f"| {r['section']} | {r['who']} | {r['m']}x{r['n']}x{r['k']} | {r['ms']:.4f} | {r['tflops']:.1f} | "
            f"{r['gbs']:.0f} | "
            f"{r.get('tol_ratio', float('nan')):.3g} | {r.get('rel_fro', float('nan')):.2e} |")
    if RESULTS["best"]:
        log("\n| case | best candidate | ours ms | vendor | vendor ms | vendor / ours | torch.compile ms | "
            "graph: ours / vendor ms | tol_ratio |")
        log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in RESULTS["best"]:
        graph = (f"{r['ours_graph_ms']:.4f} / {r['vendor_graph_ms']:.4f}" if r["ours_graph_ms"] and r["vendor_graph_ms"]
                 else "-")
        log(f"| {r['case']} | {r['best']} | {r['ours_ms']:.4f} | {r['vendor']} | {r['vendor_ms']:.4f} | "
            f"**{r['ratio']:.2f}x** | {r['compile_ms'] or float('nan'):.4f} | {graph} | "
            f"{r['tol_ratio'] if r['tol_ratio'] is None else round(r['tol_ratio'], 3)} |")
    bad = [c for c in RESULTS["checks"] if not c["ok"]]
    log(f"correctness checks: {len(RESULTS['checks']) - len(bad)}/{len(RESULTS['checks'])} ok"
        + "".join(f"\n  BAD {c['precision']} {c['case']} tol_ratio={c['tol_ratio']:.3g}" for c in bad))
    for failure in RESULTS.get("failures", []):
        log(f"FAILED {failure[:300]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    p.add_argument("--budget", type=float, default=150.0, help="seconds for the whole run (380: every section)")
    p.add_argument("--no-sweep", action="store_true")
    p.add_argument("--ks", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    p.add_argument("--seqs", type=int, nargs="+", default=[1024, 4096], help="attention sequence lengths")
    p.add_argument("--no-attention", action="store_true")
    p.add_argument("--only-attention", action="store_true", help="the attention comparison alone")
    p.add_argument("--max-configs", type=int, default=8, help="configurations swept per precision")
    p.add_argument("--candidates", action="store_true",
                   help="the tuning candidates alone: decode GEMMs (1 and 8 x 8192 x 8192, both B layouts) and bf16 "
                        "attention (six shapes, causal and not), each against the vendor; ~4 min at --budget 240")
    args = p.parse_args()
    budget = Budget(args.budget)
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS["env"] = {"torch": torch.__version__, "triton": triton.__version__,
                      "device": "cpu (interpreter smoke run)" if SMOKE else torch.cuda.get_device_name(),
                      "sms": sm_count(torch.device(DEVICE)), "argv": sys.argv}
    log(json.dumps(RESULTS["env"]))
    set_tf32(False)
    if args.candidates:
        cache = TuningCache(OUT / "tuning.json")
        for name, fn in (("small-M", lambda: small_m(budget, cache)), ("attention candidates",
                                                                        lambda: attention_candidates(budget))):
            t0 = time.time()
            if budget.left() > 20:
                guarded(name, fn)
            log(f"[{name}: {time.time() - t0:.1f} s, {budget.left():.0f} s left]")
        table()
        save()
        return 0
    if args.only_attention:
        guarded("attention", attention_bench, budget, args.seqs)
        table()
        save()
        return 0
    cache = TuningCache(OUT / "tuning.json")
    sms = sm_count(torch.device(DEVICE))
    first = args.sizes[0]
    # the open gaps first (small M, bf16 at the first size), so that the default budget measures them
    steps = [("correctness", check_correctness), ("small-M", lambda: small_m(budget, cache)),
             ("bf16 first", lambda: bf16_square(first, budget, cache, args.max_configs + 2)),
             ("error over K", lambda: error_over_k(args.ks))]
    for name, fn in steps:
        t0 = time.time()
        if budget.left() > 20:
            guarded(name, fn)
        log(f"[{name}: {time.time() - t0:.1f} s, {budget.left():.0f} s left]")
    ranked: dict[str, list[GemmConfig]] = {}
    for precision in STRICT_VARIANTS + ("tf32", "bf16"):
        t0 = time.time()
        configs = curated_configs(Problem(first, first, first), precision, precision == "bf16", sms)
        swept = None if args.no_sweep else guarded(f"sweep {precision}", sweep, first, precision, budget, cache,
                                                   configs[:args.max_configs])
        ranked[precision] = swept or configs
        log(f"[sweep {precision}: {time.time() - t0:.1f} s, best {ranked[precision][0].key()}, "
            f"{budget.left():.0f} s left]")
    for n in args.sizes:
        best = {}
        for precision, configs in ranked.items():
            top = configs if n == first or args.no_sweep else (
                guarded(f"sweep {precision} {n}", sweep, n, precision, budget, cache, configs[:3]) or configs)
            best[precision] = top[0]
            times = RESULTS["sweeps"].get(f"{precision} {n}", {}).get("times_ms", {})
            RESULTS["best_ms"][f"{precision} {n}"] = times.get(top[0].key(), math.inf)
        if budget.left() > 30:
            guarded(f"square {n}", square, n, best, budget)
        fastest = min(STRICT_VARIANTS, key=lambda v: RESULTS["best_ms"][f"{v} {n}"])
        if budget.left() > 30:
            guarded(f"linear+gelu {n}", linear_gelu, n, fastest, best[fastest], budget)
    if budget.left() > 20:
        guarded("skinny", skinny, budget)
    if budget.left() > 20 and not args.no_attention:
        guarded("attention", attention_bench, budget, args.seqs)
    table()
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
