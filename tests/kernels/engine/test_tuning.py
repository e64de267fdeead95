"""Expert defaults and the tuning variants per kernel kind (no GPU needed to build them)."""

from qimeng.kernels.engine.codegen.triton import resolve_config
from qimeng.kernels.engine.ir.expr import Load, ReduceRef, op
from qimeng.kernels.engine.ir.index import Index, Var
from qimeng.kernels.engine.ir.kernel import BufferArg, Kernel, Reduction, Store
from qimeng.kernels.engine.steps import KernelConfig
from qimeng.kernels.engine.tuning import config_from_json, variants


def _row_sum(rows: int, length: int, elementwise_out: bool = False) -> Kernel:
    p, r = Var("p0", rows), Var("r0", length)
    x = Load("x", Index.of(p) * length + Index.of(r), "float32")
    red = Reduction("s", "sum", x, "float32")
    stores = [Store("out", Index.of(p), ReduceRef("s", "float32"), True)]
    if elementwise_out:
        stores.append(Store("y", Index.of(p) * length + Index.of(r), op("sub", x, ReduceRef("s", "float32")), False))
    return Kernel("k", (p,), (r,), (BufferArg("x", (rows, length), (length, 1), "float32"),),
                  (BufferArg("out", (rows,), (1,), "float32"),), (red,), (), tuple(stores))


def test_expert_strategy_defaults_follow_the_sizes():
    assert resolve_config(_row_sum(4096, 1024), KernelConfig()).strategy == "one_pass"
    assert resolve_config(_row_sum(4096, 65536), KernelConfig()).strategy == "looped"
    split = resolve_config(_row_sum(1, 1 << 24), KernelConfig())
    assert split.strategy == "split" and split.block_p > 100  # many programs share the one long row
    assert resolve_config(_row_sum(1, 1 << 24, True), KernelConfig()).strategy == "looped"  # not splittable


def test_variants_start_with_the_default_and_differ():
    kernel = _row_sum(4096, 65536)
    configs = variants(kernel, KernelConfig())
    assert configs[0] == resolve_config(kernel, KernelConfig())
    assert len(set(configs)) == len(configs) >= 3
    assert config_from_json(configs[1].to_json()) == configs[1]
    for c in configs:
        assert c.block_r & (c.block_r - 1) == 0 and c.num_warps in (4, 8, 16)
