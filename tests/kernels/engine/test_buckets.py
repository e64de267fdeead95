"""Block configurations per power-of-two bucket of the dynamic sizes: the buckets, the slots a bucket's
configuration turns into, and a generic model_new.py that launches each bucket's configuration
(Triton interpreter, against float64)."""

import os
import subprocess
import sys

import pytest

from qimeng.kernels.engine import buckets
from qimeng.kernels.engine.buckets import BucketTable, bucket, dim_buckets, odd_member, representative, slot, star
from qimeng.kernels.engine.dynamic_dims import DynamicDim, propose
from qimeng.kernels.engine.optimize import capture_problem
from qimeng.kernels.engine.optimize_dynamic import check_shapes, generic_file
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.render import render_schedule
from qimeng.kernels.engine.steps import Schedule

BATCH = DynamicDim("batch", ((0, 0),), 6, 2, 40)


def test_buckets_are_powers_of_two_over_the_range():
    assert [bucket(n) for n in (1, 2, 3, 4, 5, 8, 9, 40)] == [1, 2, 4, 4, 8, 8, 16, 64]
    assert dim_buckets(BATCH) == [2, 4, 8, 16, 32, 64]
    assert representative(BATCH, 16) == 16 and representative(BATCH, 64) == 40  # the top, inside the range
    assert [odd_member(BATCH, b) for b in (2, 4, 16, 64)] == [2, 3, 15, 39]
    assert [k for k, _ in star([BATCH])] == [(4,), (16,), (2,), (32,), (64,)]  # nearest the captured (8,) first
    assert dict(star([BATCH]))[(64,)] == {"batch": 40}


SAMPLE = '''@triton.jit
def k(x_ptr, BLOCK: tl.constexpr):
    y = {body}


def _launch(x):
    _qm_k = _qm_direct('k')
    k[(-(-{rows} // {block}),)](x, BLOCK={block}, num_warps={warps})
'''


def _text(rows=6, block=8, warps=4, body=4):
    return SAMPLE.format(rows=rows, block=block, warps=warps, body=body)


def test_launch_literals_of_a_bucket_become_slots_and_kernel_code_changes_keep_the_captured_row():
    samples = [_text(), _text(rows=12)]
    variants = [((16,), _text(block=16, warps=8)), ((2,), _text(body=5)), ((32,), _text(rows=7)),
                ((64,), _text())]
    out, table = slot(samples, variants, [BATCH])
    # the block size (two literals that always agree: one slot) and the warps; the rows depend on the size
    assert out[0] == _text().replace("// 8", "// _qm_cfg[0]").replace("BLOCK=8", "BLOCK=_qm_cfg[0]").replace(
        "num_warps=4", "num_warps=_qm_cfg[1]")
    assert out[1] == out[0].replace("-6", "-12")
    assert table.default == (8, 4) and table.rows == {(16,): (16, 8)}  # bucket 64 is as captured: no row
    assert any("(1, 2]" in n and "kernel's code" in n for n in table.notes)
    assert any("(16, 32]" in n and "depends on the size" in n for n in table.notes)


def test_the_table_is_read_once_per_function_and_compiled_kernels_are_kept_per_row():
    threaded = _text().replace("def _launch(x):", "def _launch(x, qm_batch):") + "\n\ndef _qm_guard(args):\n    pass\n"
    (text,), table = slot([threaded], [((16,), threaded.replace("8", "16"))], [BATCH])
    source = buckets.with_table(text, table, [BATCH])
    assert "def _launch(x, qm_batch):\n    _qm_cfg = _qm_config(qm_batch)\n    _qm_k = _qm_direct(('k', _qm_cfg))\n" \
        in source
    namespace = {}
    exec(source[source.index("_QM_CONFIG_CAPTURED"):source.index("def _qm_guard")], namespace)
    assert [namespace["_qm_config"](n) for n in (5, 8, 9, 16, 17)] == [(8,), (8,), (16,), (16,), (8,)]


def test_a_table_without_rows_changes_nothing():
    assert buckets.with_table(_text(), BucketTable(), [BATCH]) == _text()


PROBLEM = '''
import torch
import torch.nn as nn

rows, cols = 6, 24


class Model(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x * 2.0) + 1.0


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
'''

USE = '''
import importlib.util, sys, torch
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
ref, new = mod.Model(), mod.ModelNew()
(name,) = [n for n in dir(mod) if n.startswith("qm_kernel_")]
kernel, used = getattr(mod, name), []

class Spy:
    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            used.append(kwargs["BLOCK_P"])
            return kernel[grid](*args, **kwargs)
        return launch

setattr(mod, name, Spy())
with torch.no_grad():
    for rows in (6, 3, 13, 2):
        x = torch.randn(rows, 24)
        assert torch.allclose(new(x).double(), ref(x.double()), atol=1e-4, rtol=1e-4), rows
print("blocks", *used)
print("table", *(mod._qm_config(n) for n in (6, 3, 13, 2)))
'''


@pytest.fixture(scope="module")
def bucketed(tmp_path_factory):
    root = tmp_path_factory.mktemp("buckets")
    problem = root / "norm_relu.py"
    problem.write_text(PROBLEM)
    prob, graph = capture_problem(problem, False)
    schedule = ExpertPolicy().main_line(graph, Schedule())
    plan = render_schedule(PROBLEM, prob.model_cls, graph, schedule, "cpu").plan
    dims = propose(graph.user_args, ("batch=2:40",))
    source, kept, notes, table = generic_file(problem, PROBLEM, prob.model_cls, plan, schedule, dims, small=False,
                                              device_type="cpu")
    assert source is not None, notes
    (root / "model_new.py").write_text(source)
    return root, kept, table


def test_each_bucket_row_is_checked_once(bucketed):
    _, kept, table = bucketed
    # a pointwise kernel over rows x 24 floats: its block is the element count rounded up to a power of two
    # (16 to 1024), at the bucket's top: captured 6 rows 256; bucket 4 128; bucket 16 512; bucket 2 64
    assert table.default == (256,) and table.rows == {(4,): (128,), (16,): (512,), (2,): (64,)}
    assert sum("more configurations than the 3 verified" in n for n in table.notes) == 2  # buckets 32, 64: 1024
    assert check_shapes(kept, table) == [{"batch": 6}, {"batch": 3}, {"batch": 13}, {"batch": 2}]


def test_generic_model_new_launches_the_configuration_of_each_runtime_bucket(bucketed):
    root, _, _ = bucketed
    proc = subprocess.run([sys.executable, "-c", USE, str(root / "model_new.py")], capture_output=True, text=True,
                          env={**os.environ, "TRITON_INTERPRET": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "blocks 256 128 512 64" in proc.stdout  # 6 rows: captured bucket; 3: bucket 4; 13: bucket 16; 2: bucket 2
    assert "table (256,) (128,) (512,) (64,)" in proc.stdout
