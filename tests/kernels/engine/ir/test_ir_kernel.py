"""Kernel IR: structural hash (tuning cache key) and dimension coalescing."""

from qimeng.kernels.engine.ir.expr import Load, op
from qimeng.kernels.engine.ir.index import Index, Var, contiguous_strides, linearize
from qimeng.kernels.engine.ir.kernel import BufferArg, Kernel, Store
from qimeng.kernels.engine.ir.transform import coalesce


def _copy_kernel(name: str, shape=(4, 8, 16), bias_dim: int | None = None) -> Kernel:
    vars_ = tuple(Var(f"x{i}", s) for i, s in enumerate(shape))
    idx = tuple(Index.of(v) for v in vars_)
    flat = linearize(idx, contiguous_strides(shape))
    value = Load("a", flat, "float32")
    inputs = [BufferArg("a", shape, contiguous_strides(shape), "float32")]
    if bias_dim is not None:
        value = op("add", value, Load("b", idx[bias_dim], "float32"))
        inputs.append(BufferArg("b", (shape[bias_dim],), (1,), "float32"))
    return Kernel(name, vars_, (), tuple(inputs), (BufferArg("out", shape, contiguous_strides(shape), "float32"),),
                  stores=(Store("out", flat, value, False),))


def test_structural_hash_ignores_the_name_but_not_the_shape():
    assert _copy_kernel("k0").structural_hash() == _copy_kernel("k1").structural_hash()
    assert _copy_kernel("k0").structural_hash() != _copy_kernel("k0", (4, 8, 32)).structural_hash()


def test_structural_hash_ignores_buffer_names_but_not_which_buffer_is_read():
    def kernel(a: str, b: str, read: str) -> Kernel:
        shape = (4, 8)
        flat = linearize(tuple(Index.of(Var(f"x{i}", s)) for i, s in enumerate(shape)), contiguous_strides(shape))
        value = op("add", Load(read, flat, "float32"), Load(read, flat, "float32"))
        args = tuple(BufferArg(n, shape, contiguous_strides(shape), "float32") for n in (a, b))
        return Kernel("k", tuple(Var(f"x{i}", s) for i, s in enumerate(shape)), (), args,
                      (BufferArg("out", shape, contiguous_strides(shape), "float32"),),
                      stores=(Store("out", flat, value, False),))

    assert kernel("p", "q", "p").structural_hash() == kernel("add_1", "add_12", "add_1").structural_hash()
    assert kernel("p", "q", "p").structural_hash() != kernel("p", "q", "q").structural_hash()


def test_coalesce_merges_contiguous_dims_into_one():
    k = coalesce(_copy_kernel("k"))
    assert len(k.parallel) == 1 and k.parallel[0].size == 4 * 8 * 16
    assert str(k.stores[0].index) == k.parallel[0].name


def test_coalesce_keeps_a_broadcast_dim_apart():
    k = coalesce(_copy_kernel("k", bias_dim=1))
    assert [v.size for v in k.parallel] == [4, 8, 16]
    k_last = coalesce(_copy_kernel("k", bias_dim=2))
    assert [v.size for v in k_last.parallel] == [32, 16]
    assert "x" in str(k_last) and k_last.bytes_moved() == 2 * 4 * 8 * 16 * 4 + 16 * 4
