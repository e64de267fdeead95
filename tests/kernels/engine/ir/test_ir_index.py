"""Index expressions: canonical linear form and range-based simplification."""

from qimeng.kernels.engine.ir.index import Div, Index, Mod, Var, contiguous_strides, delinearize, linearize


def _vars(*sizes):
    return tuple(Index.of(Var(f"v{i}", s)) for i, s in enumerate(sizes))


def test_delinearize_of_linearize_is_identity():
    idx = _vars(2, 3, 4)
    flat = linearize(idx, contiguous_strides((2, 3, 4)))
    assert str(flat) == "12*v0 + 4*v1 + v2"
    assert delinearize(flat, (2, 3, 4)) == idx


def test_merge_and_split_views_simplify():
    a, b, c = _vars(2, 3, 4)
    flat = linearize((a, b, c), contiguous_strides((2, 3, 4)))
    merged = delinearize(flat, (6, 4))
    assert merged == (a * 3 + b, c)


def test_floor_division_and_modulo_by_range():
    v = Index.of(Var("v", 8))
    assert v // 8 == Index()
    assert v % 8 == v
    assert (v * 4 + 3) // 4 == v
    assert (v * 4 + 3) % 4 == Index.of(3)
    d = v // 3
    assert isinstance(d.terms[0][0], Div)
    assert isinstance((v * 5) % 3, Index) and isinstance(((v * 5) % 3).terms[0][0], Mod)


def test_nested_division_folds():
    v = Index.of(Var("v", 1000))
    assert (v // 4) // 5 == v // 20


def test_bounds_and_substitution():
    x, y = Var("x", 4), Var("y", 5)
    e = Index.of(x) * 5 + y - 2
    assert e.bounds() == (-2, 17)
    assert e.substitute({x: Index.of(1)}) == Index.of(y) + 3
    assert e.variables() == {x, y}


def test_equivalence_sees_through_view_round_trips():
    from qimeng.kernels.engine.ir.index import equivalent

    p, r = Index.of(Var("p", 6)), Index.of(Var("r", 20))
    flat = p * 20 + r
    # flatten -> unflatten to [2, 3, 4, 5] -> flatten -> unflatten to [1, 6, 20]: the row is still p
    round_trip = linearize(delinearize(flat, (2, 3, 4, 5)), contiguous_strides((2, 3, 4, 5)))
    assert round_trip != flat and equivalent(round_trip, flat)
    assert equivalent(delinearize(round_trip, (1, 6, 20))[1], p)
    assert not equivalent(p * 20 + r, r * 6 + p)
