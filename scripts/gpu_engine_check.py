#!/usr/bin/env python3
"""GPU check of the expert engine: ``qimeng optimize`` on every problem under problems/ at full size.

Prints one row per problem (status, kernels, speed-up vs eager and vs torch.compile, the three times,
achieved GB/s of memory-bound problems with bytes = inputs + parameters + outputs once, optimize wall
time) and the geometric means; under a problem that kept the reference, why each candidate lost (failed,
flagged, or slower: its ms against the reference's); writes engine.json (rows carry every candidate's
outcome) under $OUT when it is set.

    python3 scripts/gpu_engine_check.py [--budget S] [--family F ...] [--limit N] [--no-compile] [--jobs N]
                                        [--benchmark-subset] [--template-subset] [--layout-subset] [--pool-subset]
                                        [--family-table] [PROBLEM.py ...]

``--benchmark-subset`` runs BENCHMARK_SUBSET: eleven problems at the scale of today's public suites
(2-8 GiB memory-bound norms and softmax, training-mode batch norm, deep CNNs, recurrent stacks, a GPT block);
``--template-subset`` runs TEMPLATE_SUBSET (the GEMM, convolution, pooling and attention templates in optimize).
``--layout-subset`` runs LAYOUT_SUBSET (the three convolution problems of the ChannelsLast step).
``--pool-subset`` runs POOL_SUBSET (the pooling kernels alone, and fused with the pointwise ops after a convolution).

A problem takes roughly 30-90 s on an H100 (worker start, torch.compile baseline, candidates, tuning);
``--budget 1`` skips tuning, ``--no-compile`` skips the torch.compile baseline, ``--family`` splits the
set over several runs. torch.compile baselines are cached in the check's store across runs.
``--jobs N`` optimises N problems at once (spread over the visible GPUs, each in its own process): the
harness's device lock lets one process at a time run its clock on a GPU, so the timings stay clean,
but each problem's wall time then includes waiting for the others: its row says how long (``wait s``), and
its budget counts its own work only, under a wall cap of the budget times the runs sharing its GPU (at most
4; engine/budget.py). ``--family-table`` prints docs/PERFORMANCE.md's per-family table at the end
(``engine_family_table.py``, which also reads a saved engine.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCHMARK_SUBSET = (  # elementwise and full reductions at the copy ceiling (GELU, a whole sum) keep eager: left out
    "norm/02_rms_norm", "softmax/01_softmax_last_dim", "training/01_batch_norm_train_2d",
    "training/04_conv_bn_relu_train", "cnn/01_resnet_basic_stack", "cnn/02_dense_cnn_200",
    "recurrent/03_rnn_tanh_stack", "recurrent/04_lstm_6layer_bidirectional", "recurrent/05_gru_hidden_returned",
    "transformer/02_minigpt_block", "conv_epilogue/06_conv_transpose_add_min_gelu_mul",
)

# Issue 11: problems whose GEMMs, convolutions, poolings and attentions the `templates` stage takes. Each
# report's step trajectory shows the template candidates (variant, epilogue folded or not) next to the
# vendor-call candidate, and the log gives 3xTF32's measured error vs float64 per K.
TEMPLATE_SUBSET = (
    "gemm_epilogue/01_linear_bias_gelu", "gemm_epilogue/02_matmul_scale_residual", "gemm_epilogue/03_mlp_relu_chain",
    "gemm_epilogue/04_batched_matmul", "gemm_epilogue/05_matmul_transposed_weight_bias_silu",
    "conv_epilogue/01_conv2d_bias_relu", "conv_epilogue/02_conv2d_batchnorm_silu", "conv_epilogue/03_conv2d_add_clamp",
    "conv_epilogue/04_pointwise_conv_hardswish", "conv_epilogue/05_depthwise_conv_gelu", "cnn/01_resnet_basic_stack",
    "cnn/03_inception_stack", "transformer/02_minigpt_block",
    # the attention template against SDPA (eager: flash / memory-efficient) and torch.compile
    "attention/02_sdpa_manual_causal", "attention/04_sdpa_functional_causal", "attention/06_sdpa_gqa_key_padding",
    "attention/08_sdpa_causal_bf16",
    "conv_epilogue/07_depthwise_conv_bias_relu_large", "cnn/04_depthwise_separable_block",
    # 3-D and transposed convolutions through the implicit-GEMM template
    "conv_epilogue/06_conv_transpose_add_min_gelu_mul", "conv_epilogue/08_conv3d_bias_relu",
    "conv_epilogue/09_conv_transpose3d_bias_tanh", "conv_epilogue/10_conv_transpose2d_grouped_dilated_silu",
    # a reduction over N folded into the GEMM template (the [M, N] product never written); diagonal operands
    # rewritten to a broadcast multiply (no GEMM); tril skipping its upper tiles;
    # a softmax over rows that fit one tile; a symmetric x @ x^T computing half its tiles
    "gemm_epilogue/07_linear_gelu_row_mean", "gemm_epilogue/08_matmul_row_max",
    "gemm_epilogue/09_diag_scale_both_sides", "gemm_epilogue/10_matmul_tril", "gemm_epilogue/11_linear_softmax_classifier",
    "gemm_epilogue/12_gram_matrix_scaled",
)

# Issue 11, layout: the convolution problems whose vendor path (cuDNN) ran NCHW at 0.73-0.77x torch.compile;
# the `layout` stage's ChannelsLast candidate (NHWC convolutions, kernels on NHWC) is measured against it.
LAYOUT_SUBSET = (
    "conv_epilogue/01_conv2d_bias_relu", "cnn/01_resnet_basic_stack", "training/04_conv_bn_relu_train",
)

# Issue 11, pooling: max/avg/adaptive pooling kernels of the engine (1-3 D, indices) and the pooling that
# computes the pointwise chain after a convolution at each tap (the activation never written).
POOL_SUBSET = tuple(f"pooling/{p.stem}" for p in sorted((ROOT / "problems" / "pooling").glob("[0-9][0-9]_*.py")))


def _geomean(values: list[float]) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def _fmt(value, spec: str) -> str:
    width = int(spec.split(".")[0] or 0) if spec[0].isdigit() else 0
    return "-".rjust(width) if value is None else format(value, spec)


def error_row(problem: str, cause: str, wall_s: float, device: str) -> dict:
    """The row of a problem that raised instead of giving a result (it must not end the table)."""
    return {"problem": problem, "status": f"error: {cause}"[:200], "kernels": 0, "speedup": None,
            "speedup_compile": None, "eager_ms": None, "compile_ms": None, "ours_ms": None, "gbps": None,
            "memory_bound": False, "wall_s": wall_s, "device": device}


def problem_row(path: Path, device: str, budget: float, compare_compile: bool, out_root: Path,
                store_path: Path, sharing: int = 1) -> dict:
    """``qimeng optimize`` on one problem, as a table row (an exception is a row too)."""
    from qimeng.kernels.store import Store
    from qimeng.kernels.engine.optimize import optimize

    name = f"{path.parent.name}/{path.stem}"
    t0 = time.monotonic()
    store = Store(store_path)
    try:
        r = optimize(path, out_root / path.parent.name / path.stem, device=device, budget_s=budget, store=store,
                     compare_compile=compare_compile, sharing=sharing, log=lambda m: None)
        gbps = (r.io_bytes / (r.ours_ms * 1e-3) / 1e9) if r.memory_bound and r.ours_ms else None
        return {"problem": name, "status": r.status, "kernels": r.kernels, "speedup": r.speedup,
                "speedup_compile": r.speedup_compile, "eager_ms": r.eager_ms, "compile_ms": r.compile_ms,
                "ours_ms": r.ours_ms, "gbps": gbps, "memory_bound": r.memory_bound, "io_bytes": r.io_bytes,
                "wall_s": r.wall_s, "fallbacks": r.fallbacks, "first_failure": r.first_failure, "device": device,
                "selection_speedup": r.selection_speedup, "candidates": r.candidates,
                "capture_error": r.capture_error, "lock_wait_s": r.lock_wait_s, "budget": r.budget,
                "reason": r.reason, "peak_device_bytes": r.peak_device_bytes}
    except Exception as exc:  # one broken problem must not end the table
        return error_row(name, f"{type(exc).__name__}: {exc}", time.monotonic() - t0, device)
    finally:
        store.close()


def _in_subprocess(path: Path, slot: str, args: argparse.Namespace, out_root: Path, store_path: Path) -> dict:
    """One problem in its own Python process (torch.export and the store stay per process)."""
    cmd = [sys.executable, __file__, "--one", str(path), "--device", slot, "--budget", str(args.budget),
           "--sharing", str(args.sharing), "--out-root", str(out_root), "--store", str(store_path)] + (["--no-compile"] if args.no_compile else [])
    done = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if lines:
        return json.loads(lines[-1])
    tail = " | ".join(done.stderr.strip().splitlines()[-2:])
    return error_row(f"{path.parent.name}/{path.stem}", f"exit {done.returncode}: {tail}", 0.0, slot)


def _print_row(row: dict) -> None:
    print(f"{row['problem'][:44]:44} {row['status'][:15]:15} {row['kernels']:>4} {_fmt(row['speedup'], '8.2f')} "
          f"{_fmt(row['speedup_compile'], '9.2f')} {_fmt(row['eager_ms'], '9.4f')} {_fmt(row['compile_ms'], '10.4f')} "
          f"{_fmt(row['ours_ms'], '9.4f')} {_fmt(row['gbps'], '7.0f')} {row['wall_s']:7.1f} "
          f"{_fmt(row.get('lock_wait_s'), '6.1f')}", flush=True)
    if row.get("reason"):
        print(f"    {row.get('budget', '')}; {row['reason'][:200]}", flush=True)
    if row.get("capture_error"):
        print(f"    capture failed: {row['capture_error'][:200]}", flush=True)
    if row["status"] != "optimized":  # why no candidate was kept: each one's loss
        for c in row.get("candidates", []):
            print(f"    #{c['index']} [{c['stage']}] {c['note'][:40]}: {c['why'][:150]}", flush=True)


def main() -> int:
    from qimeng.core.executor import Executor
    from qimeng.kernels.engine.optimize import DEFAULT_BUDGET_S

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", nargs="*", type=Path)
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S)
    parser.add_argument("--family", action="append", default=[])
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--jobs", type=int, default=1,
                        help="problems optimised at once, spread over the visible GPUs (timing is serialised "
                             "per GPU by the harness's device lock)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline")
    parser.add_argument("--benchmark-subset", action="store_true",
                        help="the problems of BENCHMARK_SUBSET (benchmark scale, about 8 minutes with --jobs 4)")
    parser.add_argument("--template-subset", action="store_true",
                        help="the problems of TEMPLATE_SUBSET (GEMM, convolution, pooling, attention templates)")
    parser.add_argument("--layout-subset", action="store_true",
                        help="the problems of LAYOUT_SUBSET (channels-last convolutions vs torch.compile, issue 11)")
    parser.add_argument("--pool-subset", action="store_true",
                        help="the problems of POOL_SUBSET (pooling kernels, fused after convolutions, issue 11)")
    parser.add_argument("--family-table", action="store_true",
                        help="also print the per-family table (engine_family_table.py) after the rows")
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sharing", type=int, default=1, help=argparse.SUPPRESS)  # runs on the child's GPU
    parser.add_argument("--out-root", type=Path, help="where model_new.py and report.md of each problem go")
    parser.add_argument("--store", type=Path, default=Path(tempfile.gettempdir()) / "qimeng-engine-check.db",
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:  # child process of --jobs: one row as JSON on the last line
        print(json.dumps(problem_row(args.one, args.device, args.budget, not args.no_compile, args.out_root,
                                     args.store, args.sharing)))
        return 0
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device (this check is for the GPU)", file=sys.stderr)
        return 2
    names = dict.fromkeys((BENCHMARK_SUBSET if args.benchmark_subset else ()) + (TEMPLATE_SUBSET if args.template_subset
                          else ()) + (LAYOUT_SUBSET if args.layout_subset else ()) + (POOL_SUBSET if args.pool_subset
                                                                                      else ()))
    subset = [ROOT / "problems" / f"{name}.py" for name in names]
    problems = args.problems or subset or sorted((ROOT / "problems").glob("*/*.py"))
    if args.family:
        problems = [p for p in problems if p.parent.name in args.family]
    if args.limit:
        problems = problems[: args.limit]
    out_root = args.out_root or Path(tempfile.mkdtemp(prefix="qimeng-engine-"))  # model_new.py + report.md each
    gpus = torch.cuda.device_count() if args.device == "cuda" else 0
    slots = [f"cuda:{i % gpus}" for i in range(args.jobs)] if gpus else [args.device] * args.jobs
    args.sharing = max(Counter(slots).values()) if args.device != "cpu" else 1  # runs sharing a GPU (budget.py)
    stream = Path(os.environ["OUT"]) / "engine_rows.jsonl" if os.environ.get("OUT") else None
    print(f"{len(problems)} problems, {args.jobs} at a time on {sorted(set(slots))}", flush=True)
    header = (f"{'problem':44} {'status':15} {'kern':>4} {'x eager':>8} {'x compile':>9} {'eager ms':>9} "
              f"{'compile ms':>10} {'ours ms':>9} {'GB/s':>7} {'wall s':>7} {'wait s':>6}")
    print(header, flush=True)
    rows = []
    run = (lambda p, slot: _in_subprocess(p, slot, args, out_root, args.store)) if args.jobs > 1 else (
        lambda p, slot: problem_row(p, slot, args.budget, not args.no_compile, out_root, args.store, args.sharing))
    for event in Executor(slots).stream(lambda p, slot, emit: emit(run(p, slot)), problems):
        if event.done and event.error is None:
            continue  # its row came as the value it emitted
        row = event.value if not event.done else error_row(str(event.item), str(event.error), 0.0, event.slot)
        rows.append(row)
        _print_row(row)
        if stream is not None:
            with stream.open("a") as f:
                f.write(json.dumps(row) + "\n")
    rows.sort(key=lambda r: r["problem"])
    eager_sp = _geomean([r["speedup"] for r in rows])
    compile_sp = _geomean([r["eager_ms"] / r["compile_ms"] for r in rows if r["eager_ms"] and r["compile_ms"]])
    vs_compile = _geomean([r["speedup_compile"] for r in rows])
    slower = [r["problem"] for r in rows if r["speedup"] is not None and r["speedup"] < 0.97]
    summary = {"problems": len(rows), "optimized": sum(r["status"] == "optimized" for r in rows),
               "geomean_speedup_vs_eager": eager_sp, "geomean_compile_vs_eager": compile_sp,
               "geomean_speedup_vs_compile": vs_compile, "slower_than_eager": slower,
               "max_wall_s": max((r["wall_s"] for r in rows), default=None)}
    print(f"\ngeomean speed-up vs eager: ours {_fmt(eager_sp, '.3f')}, torch.compile {_fmt(compile_sp, '.3f')}; "
          f"ours vs torch.compile {_fmt(vs_compile, '.3f')}; optimized {summary['optimized']}/{len(rows)}; "
          f"slower than eager: {slower or 'none'}; max wall {_fmt(summary['max_wall_s'], '.1f')} s; reports under {out_root}")
    if args.family_table:
        from engine_family_table import family_rows, markdown

        print("\n" + markdown(family_rows(rows)), end="")
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "engine.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
