"""Generated kernels pass Triton's compiler for a Hopper target, on the CPU.

The interpreter (every other codegen test) runs kernels as Python and never type-checks them; a GPU
compiles them first. This compiles, for sm_90 with ``triton.compile``, each rendered kernel of a
training-mode batch norm (looped, online and split reductions with row stores between the loops) and of
every codegen case under every strategy it is checked with. The H200 found what this now finds first: a
loop re-assigning a temporary with another shape than it had before the loop.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import triton

from qimeng.kernels.engine.codegen.triton import HELPERS
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.steps import KernelConfig
from interp_check import STRATEGIES as CODEGEN_STRATEGIES, main_line  # noqa: E402  (this directory's modules)
from test_triton_codegen import CASES, HEADER, RUNS  # noqa: E402
from test_welford_split import PROBLEM as BATCH_NORM  # noqa: E402

GPUTarget = pytest.importorskip("triton.backends.compiler").GPUTarget
ASTSource = triton.compiler.ASTSource

POINTER = {"float32": "*fp32", "float16": "*fp16", "bfloat16": "*bf16", "int64": "*i64", "int32": "*i32",
           "bool": "*i1"}
STRATEGIES = {"default": None, "looped": KernelConfig("looped", 0, 16, 4), "online": KernelConfig("online"),
              "split": KernelConfig("split")}


def _compiled(problem: Path, strategies: dict[str, KernelConfig | None], strategy: str) -> None:
    """Capture ``problem`` at its full size (meta device), take the expert policy's main line under
    ``strategy``, and compile every kernel of the plan for sm_90; fail naming the kernel that does not."""
    _, graph = capture_problem(problem, small=False)
    plan = build_plan(graph, main_line(graph, strategies[strategy]))
    assert plan.kernels, "nothing was lowered"
    for unit in plan.kernels:
        source = unit.rendered.source
        module = problem.parent / f"{unit.rendered.name}.py"
        module.write_text(f"import triton\nimport triton.language as tl\n{HELPERS}\n\n{source}")
        fn = _load(module, unit.rendered.name)
        constants = {k: int(v) for k, v in re.findall(r"\b(BLOCK_\w+)=(\d+)", source)}
        buffers = {f"{b.name}_ptr": POINTER[b.dtype] for b in unit.kernel.inputs + unit.kernel.outputs}
        # a split reduction's partial results are fp32 buffers of its own, not the kernel's
        signature = {a: "constexpr" if a in constants else buffers.get(a, "*fp32") for a in fn.arg_names}
        try:
            triton.compile(ASTSource(fn, signature, constants), target=GPUTarget("cuda", 90, 32))
        except Exception as exc:  # noqa: BLE001  (the compiler's message is the finding)
            pytest.fail(f"{unit.rendered.name} ({strategy}) does not compile: {exc}"[:3000])


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_training_batch_norm_kernels_compile_for_sm90(tmp_path, strategy):
    problem = tmp_path / "bn_train.py"
    problem.write_text(BATCH_NORM.format(n=32, c=16, h=64, w=64))
    _compiled(problem, STRATEGIES, strategy)


@pytest.mark.parametrize("name,strategy", RUNS)
def test_codegen_cases_compile_for_sm90(tmp_path, name, strategy):
    problem = tmp_path / f"{name}.py"
    problem.write_text(HEADER + CASES[name].strip() + "\n\ndef get_init_inputs():\n    return []\n")
    _compiled(problem, CODEGEN_STRATEGIES, strategy)


def _load(path: Path, name: str):
    """The @triton.jit function ``name`` of the file (Triton's JIT reads its functions' source files)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)
