"""Integer index expressions over iteration variables, kept in a canonical linear form.

An index is ``sum(coeff * atom) + const`` where an atom is an iteration variable, a floor division
or a modulo of another index by a positive constant. The constructors simplify with the variables'
ranges, so that views, permutes and broadcasts compose into plain strides where they can.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Var:
    """An iteration variable ranging over ``[0, size)``."""

    name: str
    size: int


@dataclass(frozen=True)
class Div:
    """``inner // divisor`` (floor division, divisor > 0)."""

    inner: "Index"
    divisor: int


@dataclass(frozen=True)
class Mod:
    """``inner % modulus`` (floor modulo, modulus > 0)."""

    inner: "Index"
    modulus: int


@dataclass(frozen=True)
class Value:
    """A data-dependent index: the integer value of expression ``expr`` (gather, index_select,
    embedding), trusted to lie in ``[lo, hi]`` like PyTorch's own indexing kernels require."""

    expr: object  # an ``ir.expr.Expr`` of an integer dtype
    lo: int
    hi: int


Atom = Var | Div | Mod | Value


@dataclass(frozen=True)
class Index:
    """``sum(c * a for a, c in terms) + const``; terms are sorted and carry non-zero coefficients."""

    terms: tuple[tuple[Atom, int], ...] = ()
    const: int = 0

    # ----- construction -------------------------------------------------------------------------
    @staticmethod
    def of(value: "Index | Atom | int") -> "Index":
        if isinstance(value, Index):
            return value
        if isinstance(value, int):
            return Index((), value)
        return Index(((value, 1),), 0)

    @staticmethod
    def _make(coeffs: dict, const: int) -> "Index":
        terms = tuple(sorted(((a, c) for a, c in coeffs.items() if c != 0), key=lambda t: repr(t[0])))
        return Index(terms, const)

    def __add__(self, other: "Index | Atom | int") -> "Index":
        other = Index.of(other)
        coeffs = dict(self.terms)
        for atom, c in other.terms:
            coeffs[atom] = coeffs.get(atom, 0) + c
        return Index._make(coeffs, self.const + other.const)

    __radd__ = __add__

    def __sub__(self, other: "Index | Atom | int") -> "Index":
        return self + Index.of(other) * -1

    def __mul__(self, k: int) -> "Index":
        if k == 0:
            return Index()
        return Index(tuple((a, c * k) for a, c in self.terms), self.const * k)

    def __floordiv__(self, d: int) -> "Index":
        assert d > 0, "floor division by a non-positive constant"
        if d == 1:
            return self
        exact = {a: c // d for a, c in self.terms if c % d == 0}
        rest = Index._make({a: c for a, c in self.terms if c % d != 0}, self.const % d)
        base = Index._make(exact, self.const // d)
        lo, hi = rest.bounds()
        if 0 <= lo and hi < d:
            return base
        if rest.is_atom() and isinstance(rest.terms[0][0], Div):  # (x // a) // b == x // (a * b)
            inner = rest.terms[0][0]
            return base + Index.of(Div(inner.inner, inner.divisor * d))
        return base + Index.of(Div(rest, d))

    def __mod__(self, m: int) -> "Index":
        assert m > 0, "modulo by a non-positive constant"
        if m == 1:
            return Index()
        rest = Index._make({a: c for a, c in self.terms if c % m != 0}, self.const % m)
        lo, hi = rest.bounds()
        if 0 <= lo and hi < m:
            return rest
        return Index.of(Mod(rest, m))

    # ----- queries ------------------------------------------------------------------------------
    def is_atom(self) -> bool:
        return self.const == 0 and len(self.terms) == 1 and self.terms[0][1] == 1

    def bounds(self) -> tuple[int, int]:
        """Inclusive (min, max) over the variables' ranges."""
        lo = hi = self.const
        for atom, c in self.terms:
            alo, ahi = atom_bounds(atom)
            lo += min(c * alo, c * ahi)
            hi += max(c * alo, c * ahi)
        return lo, hi

    def variables(self) -> set[Var]:
        out: set[Var] = set()
        for atom, _ in self.terms:
            out |= atom_variables(atom)
        return out

    def coeff(self, var: Var) -> int:
        return dict(self.terms).get(var, 0)

    def substitute(self, mapping: dict[Var, "Index"]) -> "Index":
        out = Index.of(self.const)
        for atom, c in self.terms:
            out = out + substitute_atom(atom, mapping) * c
        return out

    def __str__(self) -> str:
        parts = [f"{c}*{atom_str(a)}" if c != 1 else atom_str(a) for a, c in self.terms]
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts)


def atom_bounds(atom: Atom) -> tuple[int, int]:
    if isinstance(atom, Var):
        return 0, atom.size - 1
    if isinstance(atom, Value):
        return atom.lo, atom.hi
    lo, hi = atom.inner.bounds()
    if isinstance(atom, Div):
        return lo // atom.divisor, hi // atom.divisor
    if lo >= 0:
        return 0, min(hi, atom.modulus - 1)
    return 0, atom.modulus - 1


def atom_variables(atom: Atom) -> set[Var]:
    if isinstance(atom, Value):
        from qimeng.kernels.engine.ir.expr import walk

        out: set[Var] = set()
        for e in walk(atom.expr):
            index = getattr(e, "index", None)
            if isinstance(index, Index):
                out |= index.variables()
        return out
    return {atom} if isinstance(atom, Var) else atom.inner.variables()


def substitute_atom(atom: Atom, mapping: dict[Var, Index]) -> Index:
    if isinstance(atom, Var):
        return mapping.get(atom, Index.of(atom))
    if isinstance(atom, Value):
        from qimeng.kernels.engine.ir.transform import map_indices

        return Index.of(Value(map_indices(atom.expr, lambda ix: ix.substitute(mapping)), atom.lo, atom.hi))
    inner = atom.inner.substitute(mapping)
    return inner // atom.divisor if isinstance(atom, Div) else inner % atom.modulus


def atom_str(atom: Atom) -> str:
    if isinstance(atom, Var):
        return atom.name
    if isinstance(atom, Value):
        return f"value<{getattr(atom.expr, 'buffer', type(atom.expr).__name__)}>"
    if isinstance(atom, Div):
        return f"(({atom.inner}) // {atom.divisor})"
    return f"(({atom.inner}) % {atom.modulus})"


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, acc = [], 1
    for size in reversed(shape):
        strides.append(acc)
        acc *= max(size, 1)
    return tuple(reversed(strides))


def linearize(index: tuple[Index, ...], strides: tuple[int, ...]) -> Index:
    """The storage offset of a multi-index under the given strides."""
    out = Index()
    for i, s in zip(index, strides):
        out = out + i * s
    return out


def delinearize(flat: Index, shape: tuple[int, ...]) -> tuple[Index, ...]:
    """The row-major multi-index of a flat position in ``shape``."""
    strides = contiguous_strides(shape)
    return tuple((flat // st) % size if size > 1 else Index() for st, size in zip(strides, shape))


EXHAUSTIVE_POINTS = 1 << 22


def evaluate(index: Index, env: dict) -> "object | None":
    """``index`` at numpy arrays of variable values (None when it holds a data-dependent atom)."""
    total = index.const
    for atom, c in index.terms:
        value = _evaluate_atom(atom, env)
        if value is None:
            return None
        total = total + c * value
    return total


def _evaluate_atom(atom: Atom, env: dict):
    import numpy as np

    if isinstance(atom, Var):
        return env[atom]
    if isinstance(atom, Value):
        return None
    inner = evaluate(atom.inner, env)
    if inner is None:
        return None
    return np.floor_divide(inner, atom.divisor) if isinstance(atom, Div) else np.mod(inner, atom.modulus)


def equivalent(a: Index, b: Index) -> bool:
    """Do ``a`` and ``b`` agree at every point of their variables' ranges?

    Equal canonical forms agree. Otherwise both are evaluated at every point when the space has at
    most ``EXHAUSTIVE_POINTS`` points, else at its corners and a large random sample (the harness
    verification stays the backstop)."""
    import numpy as np

    if a == b:
        return True
    variables = sorted(a.variables() | b.variables(), key=lambda v: v.name)
    sizes = [v.size for v in variables]
    total = 1
    for s in sizes:
        total *= s
    if total <= EXHAUSTIVE_POINTS:
        flat = np.arange(total, dtype=np.int64)
        env, rest = {}, flat
        for v in reversed(variables):
            env[v] = rest % v.size
            rest = rest // v.size
    else:
        rng = np.random.default_rng(0)
        n = 1 << 20
        env = {v: np.concatenate([np.array([0, v.size - 1]), rng.integers(0, v.size, n)]) for v in variables}
    va, vb = evaluate(a, env), evaluate(b, env)
    if va is None or vb is None:
        return False
    return bool(np.array_equal(np.broadcast_to(va, np.broadcast(va, vb).shape), np.broadcast_to(vb, np.broadcast(va, vb).shape)))
