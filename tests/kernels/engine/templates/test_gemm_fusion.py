"""Structure around a product that the engine fuses from the captured graph (a reduction over N after it, a
diagonal operand, tril/triu of it, a softmax / log-softmax / logsumexp of rows that fit one tile, a matrix
times its own transpose): the plan the expert policy makes, and model_new.py under the Triton interpreter against
the float64 Model (one subprocess for every case)."""

import sys
from pathlib import Path

import pytest

from qimeng.kernels.engine.ir.expr import Const, Load, ReduceRef, op
from qimeng.kernels.engine.ir.index import Index, Var
from qimeng.kernels.engine.ir.kernel import BufferArg, Kernel, Reduction, Store
from qimeng.kernels.engine.templates.epilogue import ROW, RowReduce
from qimeng.kernels.engine.templates.epilogue_from_kernel import FusedRowReduction, row_reduction_from_kernel

sys.path.insert(0, str(Path(__file__).parent))
from gemm_fusion_interp_check import CASES  # noqa: E402

ROW_CASES = ["linear_relu_mean_keepdim", "mm_sum_two_n_tiles", "bmm_amax", "linear3d_gelu_sum", "mm_max_values",
             "mm_amin_keepdim"]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("gemm_fusion")
    lines = interpreter(Path(__file__).with_name("gemm_fusion_interp_check.py"), root, list(CASES), timeout=300)
    return {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_model_new_matches_float64(outcomes, name):
    assert outcomes[name]["ok"], outcomes[name]


@pytest.mark.parametrize("name", ROW_CASES)
def test_a_reduction_over_n_folds_into_the_template(outcomes, name):
    result = outcomes[name]
    assert result["kernels"] == 0, result  # no kernel reads an [M, N] product: none is written
    kind = {"amax": "max", "max_values": "max", "amin": "min"}
    expected = next((v for k, v in kind.items() if k in name), "sum")
    assert result["notes"] == [f"tf32x3; row {expected} over N folded in (no [M, N] written)"]


def test_a_reduction_over_m_stays_a_kernel(outcomes):
    result = outcomes["mm_sum_over_m_kept_apart"]
    assert result["kernels"] == 1 and "kept apart" in result["notes"][0]


@pytest.mark.parametrize("name, kernels", [("diag_left_matmul_relu", 1), ("diag_right_batched_and_left_vector", 2),
                                           ("diag_returned_and_multiplied", 2)])
def test_a_diagonal_operand_makes_a_broadcast_multiply(outcomes, name, kernels):
    result = outcomes[name]
    # no product at all: no template unit and no PyTorch call, only pointwise kernels (the returned
    # diagonal matrix is one of them)
    assert result["notes"] == [] and result["calls"] == [] and result["kernels"] == kernels, result


@pytest.mark.parametrize("name, triangle", [("tril_square_two_tiles", "tril 0"), ("triu_bmm_offset_plus_bias", "triu 1"),
                                            ("tril_negative_diagonal_relu", "tril -70")])
def test_a_triangular_epilogue_skips_the_tiles_past_its_diagonal(outcomes, name, triangle):
    result = outcomes[name]
    assert result["kernels"] == 0 and result["notes"] == [
        f"tf32x3; epilogue folded in; {triangle}: tiles past it run no K loop"], result


def test_a_triangle_that_also_reads_the_product_skips_nothing(outcomes):
    assert outcomes["tril_and_product_kept_whole"]["notes"] == ["tf32x3; epilogue folded in"]


@pytest.mark.parametrize("name", ["linear_softmax", "mm_scaled_log_softmax_wide", "bmm_logsumexp"])
def test_rows_that_fit_one_tile_fold_their_softmax_in(outcomes, name):
    result = outcomes[name]
    assert result["kernels"] == 0 and result["notes"] == [
        "tf32x3; row statistics (max, sum) over whole rows in one tile folded in"], result


def test_a_softmax_over_more_than_one_tile_stays_a_kernel(outcomes):
    result = outcomes["softmax_too_wide_kept_apart"]
    assert result["kernels"] == 1 and "<= 1024" in result["notes"][0], result


SYMMETRIC = "symmetric: the tiles below the diagonal are the mirror of those above"


@pytest.mark.parametrize("name", ["gram_relu_two_tile_rows", "gram_of_columns_and_batched"])
def test_a_matrix_times_its_own_transpose_computes_half_the_tiles(outcomes, name):
    result = outcomes[name]
    assert result["notes"] and all(note.endswith(SYMMETRIC) for note in result["notes"]), result


def test_an_epilogue_that_reads_a_tensor_keeps_every_tile(outcomes):
    assert SYMMETRIC not in outcomes["gram_plus_bias_not_symmetric"]["notes"][0]


def _mean_kernel(stride_n: int = 1) -> Kernel:
    """mean over the last axis of a [5, 7] product (a hand-built reduction kernel)."""
    p, r = Var("p0", 5), Var("r0", 7)
    load = Load("mm", Index.of(p) * 7 + Index.of(r) * stride_n, "float32")
    red = Reduction("mean_r0", "sum", op("maximum", load, Const(0.0, "float32")), "float32")
    store = Store("mean", Index.of(p), op("truediv", ReduceRef("mean_r0", "float32"), Const(7.0, "float32")), True)
    return Kernel("k", (p,), (r,), (BufferArg("mm", (5, 7), (7, 1), "float32"),),
                  (BufferArg("mean", (5, 1), (1, 1), "float32"),), (red,), (), (store,))


def test_row_reduction_keeps_the_finish_and_the_element_value():
    fused = row_reduction_from_kernel(_mean_kernel(), "mm", 1, 5, 7)
    assert isinstance(fused, FusedRowReduction)
    assert fused.rows == RowReduce("sum", op("truediv", ROW, Const(7.0, "float32")))
    assert fused.output == "mean" and fused.epilogue.operands == ()


def test_row_reduction_refuses_a_read_at_another_element():
    assert "another element" in row_reduction_from_kernel(_mean_kernel(stride_n=2), "mm", 1, 5, 7)
