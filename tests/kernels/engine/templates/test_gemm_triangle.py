"""Which epilogues are triangular (``gemm_triangle.triangle_of``), the dead-tile condition against a brute force
over every element of every tile, and the rendered kernels skipping the K loop there. The products themselves
are checked under the interpreter in gemm_interp_check (``tril_*``/``triu_*``) and gemm_fusion_interp_check."""

import pytest

from qimeng.kernels.engine.ir.expr import Const, IndexValue, op, where
from qimeng.kernels.engine.ir.index import Index
from qimeng.kernels.engine.templates import epilogue as ep
from qimeng.kernels.engine.templates.gemm_source import render
from qimeng.kernels.engine.templates.gemm_triangle import Triangle, triangle_of

N, M = IndexValue(Index.of(ep.N_VAR), "int64"), IndexValue(Index.of(ep.M_VAR), "int64")
ZERO = Const(0.0, "float32")


def _k(value: int) -> Const:
    return Const(value, "int64")


@pytest.mark.parametrize("cond, acc_if_true, expected", [
    (op("le", op("sub", N, M), _k(0)), True, Triangle(True, 0)),  # tril
    (op("lt", op("sub", N, M), _k(3)), True, Triangle(True, 2)),  # tril(2)
    (op("ge", op("sub", N, M), _k(1)), True, Triangle(False, 1)),  # triu(1)
    (op("gt", op("sub", N, M), _k(-4)), True, Triangle(False, -3)),  # triu(-3)
    (op("ge", op("sub", M, N), _k(-2)), True, Triangle(True, 2)),  # m - n >= -2: n - m <= 2
    (op("gt", op("sub", N, M), _k(0)), False, Triangle(True, 0)),  # masked_fill of the upper side: tril
    (op("le", N, op("add", M, _k(5))), True, Triangle(True, 5)),  # n <= m + 5
])
def test_triangular_conditions_are_recognised(cond, acc_if_true, expected):
    value = where(cond, ep.ACC, ZERO) if acc_if_true else where(cond, ZERO, ep.ACC)
    assert triangle_of(value) == expected


@pytest.mark.parametrize("value", [
    op("add", where(op("le", op("sub", N, M), _k(0)), ep.ACC, ZERO), ep.ACC),  # the product read outside
    where(op("eq", op("sub", N, M), _k(0)), ep.ACC, ZERO),  # a diagonal band, not a triangle
    where(op("le", op("sub", N, op("mul", M, _k(2))), _k(0)), ep.ACC, ZERO),  # n <= 2m: not parallel to it
    where(op("le", IndexValue(Index.of(ep.N_VAR) // 2, "int64"), M), ep.ACC, ZERO),  # not affine
    ep.ACC,
])
def test_other_epilogues_are_not_triangular(value):
    assert triangle_of(value) is None


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("diagonal", [-45, -1, 0, 3, 50])
@pytest.mark.parametrize("block_m, block_n", [(16, 32), (32, 16)])
def test_a_tile_is_dead_exactly_when_none_of_its_elements_reads_the_product(lower, diagonal, block_m, block_n):
    code = Triangle(lower, diagonal).dead_tile()
    for pid_m in range(6):
        for pid_n in range(6):
            env = {"pid_m": pid_m, "pid_n": pid_n, "BLOCK_M": block_m, "BLOCK_N": block_n}
            dead = eval(code, {}, env)  # noqa: S307  (our own condition on plain integers)
            reads = any((j - i <= diagonal) if lower else (j - i >= diagonal)
                        for i in range(pid_m * block_m, (pid_m + 1) * block_m)
                        for j in range(pid_n * block_n, (pid_n + 1) * block_n))
            assert dead == (not reads), (pid_m, pid_n)


def test_each_product_kernel_skips_the_k_loop_of_dead_tiles():
    tril = ep.Epilogue(where(op("le", op("sub", N, M), _k(0)), ep.ACC, ZERO))
    assert render("tf32x3", tril, "float32").count("        k_hi = k_lo") == 3  # main, small-M, streaming
    assert "k_hi = k_lo" not in render("tf32x3", ep.Epilogue(), "float32")
