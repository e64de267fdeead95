"""The GEMM template under the Triton interpreter against a float64 oracle (one subprocess for all
cases: the interpreter is slow to start), and its pure-Python parts (source, configs, error metric)."""

import sys
from pathlib import Path

import pytest
import torch

from qimeng.kernels.engine.templates import epilogue as ep
from qimeng.kernels.engine.templates.gemm import (GEMV_SHAPES, STRICT_TENSOR_CORE, GemmConfig, Problem, _merge,
                                                  curated_configs, default_config, gemv_config, k_major, presplit,
                                                  is_own_transpose, stream_configs, strict_variant, symmetric_config,
                                                  whole_row_config)
from qimeng.kernels.engine.templates.gemm_source import PRECISIONS, render
from qimeng.kernels.engine.templates.gemm_tuning import compare

sys.path.insert(0, str(Path(__file__).parent))
from gemm_interp_check import CASES  # noqa: E402

NAMES = list(CASES) + ["tuning_cache"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("gemm")
    script = Path(__file__).with_name("gemm_interp_check.py")
    lines = interpreter(script, root, NAMES, str(root / "tuning.json"), timeout=400)
    return {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", NAMES)
def test_gemm_matches_float64(outcomes, name):
    assert outcomes[name]["ok"], outcomes[name]


@pytest.mark.parametrize("precision", PRECISIONS)
def test_each_precision_renders_its_own_product(precision):
    source = render(precision, ep.Epilogue(), "float32")
    compile(source, "gemm.py", "exec")
    expected = {"tf32x3": 'input_precision="tf32x3"', "tf32x3_split": "0xFFFFE000", "tf32x3_presplit": "alo_tile",
                "ieee": 'input_precision="ieee"',
                "tf32": 'input_precision="tf32"', "bf16": "tl.bfloat16"}[precision]
    assert expected in source


def test_row_reduction_source_stores_no_tile():
    source = render("tf32x3", ep.Epilogue(), "float32", row_reduce=ep.RowReduce("max"))
    assert "_qm_gemm_rows" in source and "tl.store(c_ptr + pid_b * scb" not in source
    with pytest.raises(ValueError, match="row reduction"):
        ep.RowReduce("median")
    with pytest.raises(ValueError, match="finish"):
        ep.RowReduce("sum", ep.ACC)


def test_whole_rows_fit_one_tile_without_split_k():
    wide = whole_row_config(Problem(4096, 1000, 4096), GemmConfig(128, 128, 64, 8, 4, 8, 3, True))
    # 1000 columns: one 1024-wide tile of 16 rows (16384 accumulators), BLOCK_K 16 and 2 stages, no split, no gemv
    assert (wide.block_m, wide.block_n, wide.block_k, wide.split_k, wide.num_stages, wide.gemv) == (16, 1024, 16, 1, 2, 0)
    narrow = whole_row_config(Problem(64, 23, 4096), GemmConfig(64, 16, 64, 8, 2, 4, 3))
    assert (narrow.block_m, narrow.block_n, narrow.split_k, narrow.num_warps) == (64, 32, 1, 4)
    with pytest.raises(ValueError, match="one tile"):
        whole_row_config(Problem(64, 1025, 64))


def test_a_product_with_its_own_transpose_is_symmetric():
    x = torch.randn(2, 5, 3)
    assert is_own_transpose(x, x.transpose(1, 2)) and is_own_transpose(x[0].t(), x[0])
    assert not is_own_transpose(x, x.transpose(1, 2).clone()) and not is_own_transpose(x[0], x[1].t())
    square = symmetric_config(GemmConfig(256, 128, 32, 8, 4, 8, 3, True))
    assert (square.block_m, square.block_n, square.split_k, square.gemv) == (128, 128, 1, 0)
    source = render("tf32x3", ep.chain(activation="relu"), "float32", symmetric=True)
    assert "if pid_n < pid_m:" in source and "tl.trans(rn * scm + rm * scn)" in source
    with pytest.raises(ValueError, match="symmetric"):
        render("tf32x3", ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1),
                                  operands=(ep.Operand("bias", "float32"),)), "float32", symmetric=True)


def test_epilogue_rejects_undeclared_and_reserved_tensors():
    with pytest.raises(ValueError, match="undeclared"):
        ep.chain(bias=ep.operand_load("bias", "float32", 0, 0, 1))
    with pytest.raises(ValueError, match="reserved"):
        ep.chain(bias=ep.operand_load("a", "float32", 0, 0, 1), operands=(ep.Operand("a", "float32"),))
    with pytest.raises(ValueError, match="unknown activation"):
        ep.chain(activation="swish2")


def test_small_problems_split_k_to_fill_the_machine():
    decode = gemv_config(Problem(1, 4096, 4096), *GEMV_SHAPES[0][:3], sms=132)
    # the small-M kernel: one row, 128 columns, BLOCK_K = 64 products x 128 threads / 128 columns; 32 column
    # blocks split 16 ways (512 programs; 32 ways would leave 2 K blocks of 64 per split, under 4)
    assert (decode.gemv, decode.block_m, decode.block_n, decode.block_k, decode.split_k) == (True, 1, 128, 64, 16)
    m16 = gemv_config(Problem(16, 8192, 8192), *GEMV_SHAPES[0][:3], sms=132)
    # 16 rows: BLOCK_K = 8192 / (16 x 128) = 4; 64 column blocks x 16 splits = 1024 >= 4 x 132 programs
    assert (m16.gemv, m16.block_m, m16.block_k, m16.split_k) == (True, 16, 4, 16)
    assert gemv_config(Problem(3, 50, 70), *GEMV_SHAPES[0][:3], sms=1).block_m == 4  # M rounded up to 2^k
    narrow = default_config(Problem(1, 4096, 4096), "ieee", False, sms=132)  # measured faster on the H200
    assert not narrow.gemv and narrow.block_m == 16 and narrow.split_k > 1
    square = default_config(Problem(4096, 4096, 4096), "tf32x3", False, sms=132)
    assert square.split_k == 1 and square.block_m == 128
    k_large = default_config(Problem(256, 256, 65536), "bf16", True, sms=132)
    assert k_large.split_k == 64
    assert len(curated_configs(Problem(4096, 4096, 4096), "bf16", True, 132)) <= 12


def test_batch_dimensions_merge_where_strides_allow():
    # (2, 3) batch, A contiguous over both, B broadcast over both: merge to one dimension of 6
    sizes, strides = _merge((2, 3), [(3 * 20, 20), (0, 0)])
    assert sizes == (1, 6) and strides == [(0, 20), (0, 0)]
    # A broadcast over the second, B over the first: two dimensions stay
    sizes, strides = _merge((2, 3), [(20, 0), (0, 30)])
    assert sizes == (2, 3) and strides == [(20, 0), (0, 30)]
    with pytest.raises(ValueError):
        _merge((2, 3, 4), [(20, 0, 5), (0, 30, 0)])


def test_compare_uses_the_harness_rule():
    ref = torch.tensor([[1.0, 100.0]], dtype=torch.float64)
    out = torch.tensor([[1.0 + 1e-4, 100.0 + 2.02e-2]])
    err = compare(out, ref, "tf32x3", 8)
    # 2.02e-2 / (1e-4 + 1e-4 * 100) = 2.0 (float32 rounding of the output: 1e-3 relative)
    assert err.tol_ratio == pytest.approx(2.0, rel=1e-3) and not err.strict_ok
    assert err.max_abs == pytest.approx(2.02e-2, rel=1e-3)


def test_presplit_parts_are_exact_k_major_and_tf32_representable():
    b = torch.randn(9, 5)  # [K, N], N-major: the parts come back K-major
    b[0, 0], b[1, 1] = float("inf"), float("nan")
    hi, lo = presplit(b, -2)
    assert hi.stride() == lo.stride() and hi.stride(-2) == 1
    finite = b.isfinite()
    assert torch.equal((hi + lo)[finite], b[finite])
    assert torch.all((hi.view(torch.int32) & 8191)[finite] == 0)
    assert torch.all(lo.abs()[finite] <= hi.abs()[finite] * 2**-11)  # rounded, not truncated
    assert hi[0, 0] == float("inf") and hi[1, 1].isnan()


def test_k_major_copies_only_when_needed():
    a = torch.randn(4, 6)
    assert k_major(a, -1) is a and k_major(a, -2).stride() == (1, 4)
    assert torch.equal(k_major(a, -2), a)


def test_strict_runs_fma_on_memory_bound_shapes():
    assert strict_variant(Problem(1, 4096, 4096)) == "ieee"
    assert strict_variant(Problem(4096, 16, 4096)) == "ieee"
    assert strict_variant(Problem(64, 4096, 4096)) == STRICT_TENSOR_CORE


def test_config_key_names_every_field():
    assert GemmConfig(64, 32, 16, 4, 2, 4, 3).key() == "64x32x16 g4 s2 w4 st3"
    assert GemmConfig(1, 128, 64, 1, 16, 4, 3, True).key() == "1x128x64 g1 s16 w4 st3 gemv"


def test_small_m_tuning_list_offers_every_kernel():
    configs = curated_configs(Problem(1, 8192, 8192), "ieee", False, 132)
    assert configs[0] == default_config(Problem(1, 8192, 8192), "ieee", False, 132) and not configs[0].gemv
    assert sum(c.gemv == 1 for c in configs) >= 4 and sum(c.gemv == 2 for c in configs) >= 4  # small-M kernels
    assert len(set(configs)) == len(configs)
    assert configs[1].gemv == 2  # the streaming kernel next: tuning in optimize measures the first five


def test_stream_shapes_follow_b_layout():
    k_major = stream_configs(Problem(1, 8192, 8192), True, 132)
    # K-major: 8 rows of W, 1024 k a step (4 x 32 lanes x 4 warps at least; 64 elements a thread); 1024
    # column blocks already cover 4 x 132 programs: no split
    assert (k_major[0].block_m, k_major[0].block_n, k_major[0].block_k, k_major[0].split_k) == (1, 8, 1024, 1)
    n_major = stream_configs(Problem(1, 8192, 8192), False, 132)
    # N-major: 512 columns = 4 x 32 lanes x 4 warps, 16 k a step; 16 column blocks split 64 ways (1024 programs)
    assert (n_major[0].block_n, n_major[0].block_k, n_major[0].split_k) == (512, 16, 64)
    for config in stream_configs(Problem(16, 8192, 8192), None, 132):  # registers bound the partial sums
        threads = 32 * config.num_warps
        partials = config.block_m * config.block_n * (config.block_k // 4 if config.block_n < 4 * threads else 1)
        assert config.gemv == 2 and partials <= 64 * threads
    assert GemmConfig(1, 8, 1024, 1, 1, 4, 1, 2).key() == "1x8x1024 g1 s1 w4 st1 stream"
