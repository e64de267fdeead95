"""Shape-generic model_new.py: literals that differ across sizes become polynomials of size symbols;
the generic file runs its kernels at sizes other than the captured one (against float64), warns once
per shape on a guard miss, and works under torch.compile and torch.export (Triton interpreter)."""

import os
import subprocess
import sys

import pytest

from qimeng.kernels.engine.capture import TensorMeta
from qimeng.kernels.engine.dynamic_dims import propose, resized
from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.generalize import NotGeneric, anti_unify, odd_sizes, sample_points
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.optimize_dynamic import pinned
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import Schedule


def test_differing_integers_become_polynomials_checked_on_every_sample():
    text = "n = {a}\nm = {b} + 1\nk = 7\n"
    samples = [({"qm_b": b, "qm_s": s}, text.format(a=b * s * 4 + 3, b=4 * b - s)) for b, s in
               ((2, 3), (5, 3), (2, 7), (5, 7), (9, 4))]
    out = anti_unify(samples)
    assert out == "n = (3 + 4 * qm_b * qm_s)\nm = (4 * qm_b - qm_s) + 1\nk = 7\n"


@pytest.mark.parametrize("values, message", [
    ([4, 9, 25], "no polynomial"),  # b * b: not multilinear
    (["0.3", "0.7", "0.1"], "non-integer"),  # no count, no count's reciprocal, no variance's correction
    ([repr(1.0 / (b * b)) for b in (2, 3, 5)], "non-integer"),  # 1 / b**2: its count is no polynomial
])
def test_what_is_no_multilinear_integer_polynomial_is_not_generic(values, message):
    samples = [({"qm_b": b}, f"x = {v}\n") for b, v in zip((2, 3, 5), values)]
    with pytest.raises(NotGeneric, match=message):
        anti_unify(samples)


@pytest.mark.parametrize("form, expected", [
    (lambda n: float(n), "x = ((4 * qm_b) * 1.0)\n"),  # a count
    (lambda n: 1.0 / n, "x = (1.0 / (4 * qm_b))\n"),  # a mean's divisor as its reciprocal
    (lambda n: n / (n - 1), "x = ((4 * qm_b) / ((4 * qm_b) - 1.0))\n"),  # Bessel's correction
])
def test_a_float_that_depends_on_the_size_through_a_count_becomes_its_code(form, expected):
    sizes = (2, 3, 5, 64)
    samples = [({"qm_b": b}, f"x = {form(4 * b)!r}\n") for b in sizes]
    out = anti_unify(samples)
    assert out == expected
    for b in sizes:  # the code gives each sample's literal back, bit for bit
        assert eval(out.removeprefix("x = "), {"qm_b": b}) == form(4 * b)


def test_other_differences_are_not_generic():
    with pytest.raises(NotGeneric, match="differs"):
        anti_unify([({"qm_b": 2}, "x = a + 2\n"), ({"qm_b": 3}, "x = b + 3\n")])


def test_sample_sizes_are_odd_in_range_and_not_the_captured_one():
    (batch,) = propose([TensorMeta((8, 4), (4, 1), "float32")])
    assert odd_sizes(batch) == [3, 17]
    assert sample_points([batch]) == [{"qm_batch": 8}, {"qm_batch": 3}, {"qm_batch": 17}]


PROBLEM = '''
import torch
import torch.nn as nn

rows, cols = 6, 24


class Model(nn.Module):
    def __init__(self, cols: int):
        super().__init__()
        self.norm = nn.LayerNorm(cols)

    def forward(self, x, y):
        return torch.sigmoid(self.norm(x * 2.0 + y)) + x.t().sum(0, keepdim=True).t()


def get_inputs():
    return [torch.randn(rows, cols), torch.randn(rows, cols)]


def get_init_inputs():
    return [cols]
'''

USE = '''
import importlib.util, sys, warnings, torch
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
torch.manual_seed(0); ref = mod.Model(24).double().eval()
new = mod.ModelNew(24).eval(); new.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
ran = []
for name in [n for n in dir(mod) if n.startswith("_launch_")]:
    launch = getattr(mod, name)
    setattr(mod, name, lambda *a, _f=launch: (ran.append(1), _f(*a))[1])
def check(fn, rows):
    x, y = torch.randn(rows, 24), torch.randn(rows, 24)
    expected = ref(x.double(), y.double())
    assert torch.allclose(fn(x, y).double(), expected, atol=1e-4, rtol=1e-4), rows
with torch.no_grad():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rows in (6, 3, 13):
            before = len(ran); check(new, rows); assert len(ran) > before, rows
    assert not [w for w in caught if "no generated kernels" in str(w.message)]
    print("kernels ran at 6, 3, 13")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = len(ran)
        check(new, 200); check(new, 200); check(new, 1)
        assert len(ran) == before
    print("misses warned", len([w for w in caught if "no generated kernels" in str(w.message)]))
    compiled = torch.compile(new, dynamic=True)
    for rows in (5, 9):
        before = len(ran); check(compiled, rows); assert len(ran) > before
    print("compile ok")
    b = torch.export.Dim("b", min=2, max=%(high)d)
    ep = torch.export.export(new, (torch.randn(6, 24), torch.randn(6, 24)), dynamic_shapes=({0: b}, {0: b}))
    ops = [str(n.target) for n in ep.graph.nodes if n.op == "call_function"]
    assert any(o.startswith("qm_") for o in ops), ops
    check(ep.module(), 7)
    print("export ok")
'''


@pytest.fixture(scope="module")
def generic(tmp_path_factory):
    from qimeng.kernels.engine.generalize import generalize

    root = tmp_path_factory.mktemp("generic")
    problem = root / "norm_sum.py"
    problem.write_text(PROBLEM)
    prob, graph = capture_problem(problem, False)
    schedule = ExpertPolicy().main_line(graph, Schedule())
    plan = build_plan(graph, schedule)
    fixed = pinned(schedule, plan)
    dims = propose(graph.user_args, ("batch=1:40",))

    def emit_at(sizes):
        _, g = capture_problem(problem, False, lambda xs: resized(xs, dims, sizes))
        return emit_model_new(PROBLEM, prob.model_cls, g, build_plan(g, fixed), "cpu")

    source, kept, notes, _ = generalize(dims, emit_at)
    assert source is not None, notes
    (root / "model_new.py").write_text(source)
    return root, source, kept


def test_generic_source_takes_sizes_as_runtime_arguments(generic):
    _, source, (batch,) = generic
    assert (batch.low, batch.high) == (2, 40)  # size 1 renders other code: left to PyTorch
    assert "@triton.jit(do_not_specialize=['qm_batch'])" in source
    assert "if not 2 <= qm_batch <= 40:" in source and "qm_batch = _qm_a0.shape[0]" in source
    assert "_qm_fake_" in source and "torch.library.custom_op" in source
    ahead = [line for line in source.splitlines() if line.startswith("_qm_ahead(")]
    assert ahead and all(f"), ({batch.captured}, ), {{" in line for line in ahead)  # compiled at a size in range


def test_generic_model_new_runs_its_kernels_at_other_sizes_and_composes_with_compile_and_export(generic):
    root, _, (batch,) = generic
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", USE % {"high": batch.high}, str(root / "model_new.py")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "kernels ran at 6, 3, 13" in proc.stdout
    assert "misses warned 2" in proc.stdout  # 200 rows twice (once), 1 row (once)
    assert "compile ok" in proc.stdout and "export ok" in proc.stdout


KERNEL = '''@triton.jit
def qm_kernel_g0(x_ptr, BLOCK_P: tl.constexpr, BLOCK_R: tl.constexpr):
{body}


def _qm_guard(args):
    a0, = args
    return True


class ModelNew(Model):
    def _qm_forward(self, _qm_a0):
        return _qm_a0
'''


def test_a_one_pass_row_over_a_dynamic_axis_and_a_kernel_without_the_symbols_are_not_generic():
    from qimeng.kernels.engine.generalize import thread_symbols

    (seq,) = [d for d in propose([TensorMeta((2, 8, 4), (32, 4, 1), "float32")]) if d.name == "seq"]
    one_pass = "    rindex = 0 + tl.arange(0, BLOCK_R)[None, :]\n    rmask = rindex < (qm_seq)"
    looped = "    for roff in range(0, (qm_seq), BLOCK_R):\n        rindex = roff + tl.arange(0, BLOCK_R)[None, :]\n" \
             "        rmask = rindex < (qm_seq)"
    with pytest.raises(NotGeneric, match="reduces a dynamic axis in one pass"):
        thread_symbols(KERNEL.format(body=one_pass), [seq])
    assert "def qm_kernel_g0(x_ptr, qm_seq, BLOCK_P" in thread_symbols(KERNEL.format(body=looped), [seq])
    template = KERNEL.format(body=looped).replace("BLOCK_P: tl.constexpr, ", "")  # not threaded: a template's
    with pytest.raises(NotGeneric, match="written for the captured sizes"):
        thread_symbols(template, [seq])
