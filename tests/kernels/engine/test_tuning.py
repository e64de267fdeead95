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


def _column_sum(rows: int, length: int) -> Kernel:
    """out[c] = sum over r of x[r, c]: the reduced axis strided, the rows (columns of x) contiguous."""
    p, r = Var("p0", rows), Var("r0", length)
    x = Load("x", Index.of(r) * rows + Index.of(p), "float32")
    red = Reduction("s", "sum", x, "float32")
    return Kernel("k", (p,), (r,), (BufferArg("x", (length, rows), (rows, 1), "float32"),),
                  (BufferArg("out", (rows,), (1,), "float32"),), (red,), (),
                  (Store("out", Index.of(p), ReduceRef("s", "float32"), True),))


def _transpose_add(rows: int, cols: int) -> Kernel:
    """out[i, j] = x[i, j] + y[j, i]: y read across its contiguous axis."""
    i, j = Var("x0", rows), Var("x1", cols)
    value = op("add", Load("x", Index.of(i) * cols + Index.of(j), "float32"),
               Load("y", Index.of(j) * rows + Index.of(i), "float32"))
    return Kernel("t", (i, j), (), (BufferArg("x", (rows, cols), (cols, 1), "float32"),
                                    BufferArg("y", (cols, rows), (rows, 1), "float32")),
                  (BufferArg("out", (rows, cols), (cols, 1), "float32"),), (), (),
                  (Store("out", Index.of(i) * cols + Index.of(j), value, False),))


def test_strided_axis_reductions_loop_over_tiles_of_contiguous_rows():
    config = resolve_config(_column_sum(32768, 4096), KernelConfig())
    assert config.strategy == "looped" and 16 <= config.block_p <= 128 and config.block_p * config.block_r <= 8192
    assert resolve_config(_column_sum(4096, 64), KernelConfig()).strategy == "one_pass"  # short: whole rows fit
    for c in variants(_column_sum(32768, 4096), KernelConfig())[1:]:
        assert c.block_p >= 16 and c.block_p * c.block_r == 4096


def test_transposed_reads_are_tiled_over_both_axes_and_tuned_as_tiles():
    kernel = _transpose_add(8192, 4096)
    config = resolve_config(kernel, KernelConfig())
    assert config.strategy == "tiled" and config.block_p > 1 and config.block_r > 1
    configs = variants(kernel, KernelConfig())
    assert len(set(configs)) == len(configs) >= 3 and all(c.strategy == "tiled" for c in configs)
    assert resolve_config(_row_sum(64, 64), KernelConfig()).strategy != "tiled"


def test_offsets_past_two_to_the_31_are_computed_in_int64_on_both_axes():
    from qimeng.kernels.engine.codegen.triton import render

    source = render(_column_sum(65536, 40000), KernelConfig()).source  # row r at r * 65536: up to 2.6e9
    assert "tl.program_id(0).to(tl.int64)" in source and "tl.arange(0, BLOCK_R)[None, :]).to(tl.int64)" in source
    small = render(_column_sum(64, 64), KernelConfig()).source
    assert "tl.int64" not in small


def _linear_graph(rows: int):
    import torch

    from qimeng.kernels.engine.capture import capture

    model = torch.nn.Sequential(torch.nn.Linear(96, 40), torch.nn.ReLU())
    return capture(model, [torch.randn(rows, 96)])


def _template_schedule(graph):
    from qimeng.kernels.engine.policies.expert import ExpertPolicy
    from qimeng.kernels.engine.steps import Precision, Schedule

    return ExpertPolicy().main_line(graph, Precision("strict").apply(Schedule(), {}), through="templates")


def test_template_units_are_tuned_through_template_config_steps():
    from dataclasses import astuple

    from qimeng.kernels.engine.lowering_plan import build_plan
    from qimeng.kernels.engine.steps import TemplateConfig, step_from_json
    from qimeng.kernels.engine.templates.gemm import GemmConfig, Problem, default_config, stream_configs
    from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates
    from qimeng.kernels.engine.tuning import config_json, template_step_from_json, template_trials

    graph = _linear_graph(3)
    schedule = _template_schedule(graph)
    plan = with_templates(graph, build_plan(graph, schedule), schedule, "cpu")
    unit = next(u for u in plan.units if isinstance(u, TemplateUnit))
    default = default_config(Problem(3, 40, 96), "ieee", False, 1)
    assert repr(default.launch()) in "\n".join(unit.lines)
    [(node, key, steps)] = template_trials(graph, plan, schedule, "cpu")
    assert node == unit.node.name and "3x40x96" in key and 1 <= len(steps) <= 5
    assert all(GemmConfig(*s.config) != default for s in steps)
    # nn.Linear's weight.t() is K-major: the streaming kernel's first shapes are those for that layout
    assert steps[0].config == astuple(stream_configs(Problem(3, 40, 96), True, 1)[0]) and steps[0].config[-1] == 2
    step = steps[0]
    assert step_from_json(step.to_json()) == step and template_step_from_json(node, config_json(step)) == step
    tuned = step.apply(schedule, {})
    again = with_templates(graph, build_plan(graph, tuned), tuned, "cpu")
    lines = "\n".join(next(u for u in again.units if isinstance(u, TemplateUnit)).lines)
    assert repr(GemmConfig(*step.config).launch()) in lines.split("else:")[-1]  # strict's call; TF32's keeps its own
    # once tuned, the chosen config is the unit's current one and is not offered again
    [(_, _, later)] = template_trials(graph, again, tuned, "cpu")
    assert TemplateConfig(node, step.variant, step.config) not in later and astuple(default) in [s.config for s in later]
