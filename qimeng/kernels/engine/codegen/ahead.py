"""Compilation ahead of the first call in ``model_new.py``: every kernel at once, in parallel threads.

Triton compiles a kernel at its first launch, one after the other. A deep network's candidate launches
hundreds of distinct kernels: on the H200 a 200-layer DenseNet's 171 kernels took 90 s in its first
call that way, and 20 s when compiled from 16 threads beforehand (``JITFunction.warmup``: the same
cache key as the launch, no GPU work; the compilation's external tools and most of its passes run
outside the GIL).

Each launch site of the engine's kernels and of the convolution, depthwise and pooling templates registers its
signature at import (``ahead_line``): the kernel, its pointer arguments' dtypes (a 16-byte aligned pointer is
what ``warmup`` assumes, and the only kind the direct launch path takes), its constexprs, warps and stages.
The forward's first call that passes the guard compiles all registered kernels for the current device, then
runs as usual: each launch finds its kernel compiled. Not under the interpreter, and not while torch.compile
traces (the wrapped kernels then run from the compiled graph, and compile at their first launch as before). A
kernel that fails to compile here fails again, with its error, at its launch.
"""

from __future__ import annotations

RUNTIME = '''
_QM_AHEAD = []  # (kernel, pointer dtypes, size arguments, constexprs, warps, stages) of each launch site


def _qm_ahead(kernel, dtypes, sizes, consts, num_warps, num_stages):
    """Register a launch site: its kernel is compiled with the others before the first call."""
    _QM_AHEAD.append((kernel, dtypes, sizes, consts, num_warps, num_stages))


def _qm_compile_ahead():
    """Compile every registered kernel for the current device, in parallel threads, once."""
    sites, _QM_AHEAD[:] = list(_QM_AHEAD), []
    if _QM_API is None or len(sites) < 2:
        return
    from concurrent.futures import ThreadPoolExecutor

    def compile_one(site):
        kernel, dtypes, sizes, consts, num_warps, num_stages = site
        stages = {} if num_stages is None else {"num_stages": num_stages}  # None: the launch leaves Triton's default
        try:
            kernel.warmup(*dtypes, *sizes, grid=(1,), **consts, num_warps=num_warps, **stages)
        except Exception:  # the launch compiles it again and raises the error where it belongs
            pass

    with ThreadPoolExecutor(max_workers=min(len(sites), _qm_os.cpu_count() or 1, 32)) as pool:
        list(pool.map(compile_one, sites))
'''

CALL = "if _QM_AHEAD and not torch.compiler.is_compiling():"


def ahead_line(kernel: str, dtypes: list[str], consts: dict[str, int], num_warps: int, num_stages: int | None) -> str:
    """The module-level line registering a launch of ``kernel`` with pointer arguments of ``dtypes``
    (torch dtype names, in the kernel's parameter order) and constexpr values ``consts`` (``num_stages``
    None: a launch that leaves it to Triton)."""
    pointers = "".join(f"torch.{d}, " for d in dtypes)
    values = ", ".join(f"{k!r}: {v}" for k, v in consts.items())
    return f"_qm_ahead({kernel}, ({pointers}), (), {{{values}}}, {num_warps}, {num_stages})"


def call_lines(indent: str) -> list[str]:
    """The forward's lines that compile the registered kernels before its first kernel call."""
    return [f"{indent}{CALL}", f"{indent}    _qm_compile_ahead()"]
