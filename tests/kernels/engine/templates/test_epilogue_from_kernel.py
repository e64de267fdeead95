"""The engine's pointwise epilogue kernel re-expressed as a GEMM template epilogue (pure IR, no launch;
the interpreter run of a lowered problem is in gemm_interp_check.py)."""

from qimeng.kernels.engine.ir.expr import Const, Load, op
from qimeng.kernels.engine.ir.index import Index, Var
from qimeng.kernels.engine.ir.kernel import BufferArg, Kernel, Store
from qimeng.kernels.engine.templates.epilogue import ACC, M_VAR, N_VAR, Operand
from qimeng.kernels.engine.templates.epilogue_from_kernel import FusedEpilogue, epilogue_from_kernel

M, N = 6, 10
X0, X1 = Var("x0", M), Var("x1", N)
FLAT = Index.of(X0) * N + Index.of(X1)


def _kernel(product_index: Index, stores: int = 1, bias_index: Index = Index.of(X1)) -> Kernel:
    value = op("add", op("mul", Load("mm", product_index, "float32"), Const(2.0, "float32")),
               Load("bias", bias_index, "float32"))
    inputs = (BufferArg("mm", (M, N), (N, 1), "float32"), BufferArg("bias", (N,), (1,), "float32"))
    return Kernel("k", (X0, X1), (), inputs, (BufferArg("out", (M, N), (N, 1), "float32"),),
                  stores=(Store("out", FLAT, value, False),) * stores)


def test_product_load_becomes_acc_and_others_operands():
    fused = epilogue_from_kernel(_kernel(FLAT), "mm", 1, M, N)
    assert isinstance(fused, FusedEpilogue) and fused.output == "out" and fused.out_dtype == "float32"
    assert fused.epilogue.operands == (Operand("bias", "float32"),)
    mul, bias = fused.epilogue.value.args
    assert mul.args[0] == ACC
    assert bias == Load("bias", Index.of(N_VAR), "float32")


def test_coalesced_space_maps_back_to_rows_and_columns():
    flat = Var("x0", M * N)  # one variable over the whole output, as coalescing leaves it
    k = Kernel("k", (flat,), (), (BufferArg("mm", (M, N), (N, 1), "float32"), BufferArg("r", (M,), (1,), "float32")),
               (BufferArg("out", (M, N), (N, 1), "float32"),),
               stores=(Store("out", Index.of(flat), op("add", Load("mm", Index.of(flat), "float32"),
                                                        Load("r", Index.of(flat) // N, "float32")), False),))
    fused = epilogue_from_kernel(k, "mm", 1, M, N)
    assert isinstance(fused, FusedEpilogue)
    assert fused.epilogue.value.args[1] == Load("r", Index.of(M_VAR), "float32")  # a per-row operand


def test_inapplicable_kernels_say_why():
    transposed = Index.of(X1) * M + Index.of(X0)
    assert "another element" in epilogue_from_kernel(_kernel(transposed), "mm", 1, M, N)
    assert "one store" in epilogue_from_kernel(_kernel(FLAT, stores=2), "mm", 1, M, N)
    assert "iteration space" in epilogue_from_kernel(_kernel(FLAT), "mm", 2, M, N)
