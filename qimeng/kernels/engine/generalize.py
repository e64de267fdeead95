"""Shape-generic ``model_new.py``: sizes of dynamic dimensions become runtime arguments.

The same schedule (groups and resolved block configs, pinned) is captured, lowered and emitted at
several sizes of the dynamic dimensions. The generated code must then be the same at every sample but
for integer literals (sizes, strides, offsets, grids). Each literal that differs must be a multilinear
polynomial of the sizes with integer coefficients, fitted on some samples and checked on all; it is
replaced by that expression of the size symbols (``qm_batch``); a float literal that differs must be
such a polynomial P, ``1 / P`` or ``P / (P - 1)`` (a count, a mean's divisor, a variance's correction:
``_FLOAT_FORMS``). Anything else that differs (a strategy that changes with the size, an int64 index at the
upper end) means the dimension is not generic there: the caller narrows the range or keeps it static. Then the
symbols are threaded through: each Triton kernel takes them as runtime arguments (``do_not_specialize``: one
compiled binary for every size, so the direct launch path stays exact), launchers, op wrappers and the forward
pass them on, and the guard binds them from the arguments and checks their range, while every other shape,
stride, dtype and device condition stays exact (the kernels mask every axis: no divisibility is assumed).
"""

from __future__ import annotations

import re
import tokenize
from dataclasses import replace
from fractions import Fraction
from itertools import combinations
from typing import Callable

from qimeng.kernels.engine import buckets
from qimeng.kernels.engine.buckets import BucketKey, BucketTable
from qimeng.kernels.engine.codegen import ops
from qimeng.kernels.engine.dynamic_dims import DynamicDim
from qimeng.kernels.engine.source_tokens import JIT_FUNCTION, tokens

Sizes = dict[str, int]
# names that hash what they name (shapes included): generated kernels and template kernels
_KERNEL_NAME = re.compile(r"(qm_kernel|_qm_mm|_qm_conv|_qm_pool)_[0-9a-f]{12}(?![0-9a-f])")
# a one-pass row (one BLOCK_R chunk from 0) whose length is a size symbol
_ONE_PASS_DYNAMIC = re.compile(r"rindex = \(?0 \+ tl\.arange\(0, BLOCK_R\).*\n\s*rmask = rindex < .*\bqm_\w")


# template kernels whose code holds sizes of the batch (rows of an implicit GEMM, a pooled tensor's numel),
# by the name they start with, and their first constexpr parameter (the size symbols go before it)
_TEMPLATE_CONSTEXPRS = {"_qm_conv_": "BLOCK_M", "_qm_pool_": "BLOCK"}


class NotGeneric(Exception):
    """The samples differ in more than polynomial integer literals (the message says where)."""


def canonical(source: str) -> str:
    """Kernel names (hashes of shapes) replaced by their order of appearance, the namespace blanked."""
    names: dict[str, str] = {}
    text = _KERNEL_NAME.sub(lambda m: names.setdefault(m.group(0), f"{m.group(1)}_g{len(names)}"), source)
    return re.sub(r'^_QM_NS = "[^"]*"$', ops.NAMESPACE_LINE.format(""), text, flags=re.M)


def _monomials(symbols: list[str]) -> list[tuple[str, ...]]:
    return [c for k in range(len(symbols) + 1) for c in combinations(symbols, k)]


def _fit(points: list[tuple[Sizes, int]], symbols: list[str]) -> list[tuple[tuple[str, ...], int]] | None:
    """Integer coefficients of a multilinear polynomial through every point, or None."""
    monos = _monomials(symbols)
    rows = [[Fraction(_eval_mono(m, sizes)) for m in monos] + [Fraction(value)] for sizes, value in points]
    pivots, r = [], 0
    for c in range(len(monos)):
        p = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if p is None:
            continue
        rows[r], rows[p] = rows[p], rows[r]
        rows[r] = [v / rows[r][c] for v in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                rows[i] = [a - rows[i][c] * b for a, b in zip(rows[i], rows[r])]
        pivots.append(c)
        r += 1
    if any(row[-1] != 0 for row in rows[r:]):
        return None
    coeffs = [Fraction(0)] * len(monos)
    for i, c in enumerate(pivots):
        coeffs[c] = rows[i][-1]
    if any(x.denominator != 1 for x in coeffs):
        return None
    if any(sum(int(x) * _eval_mono(m, s) for m, x in zip(monos, coeffs)) != v for s, v in points):
        return None
    return [(m, int(x)) for m, x in zip(monos, coeffs) if x != 0]


# A float constant that depends on the sizes, as code of an integer polynomial P of them: a count (P), a
# mean's divisor or its reciprocal (1 / P), Bessel's correction of a variance (P / (P - 1)). Each form maps
# the literal to P's value, and back, exactly as the capture computed it in float64.
_FLOAT_FORMS: tuple[tuple[Callable[[float], float], Callable[[int], float], str], ...] = (
    (lambda v: v, lambda n: float(n), "({p} * 1.0)"),
    (lambda v: 1.0 / v, lambda n: 1.0 / n, "(1.0 / {p})"),
    (lambda v: v / (v - 1.0), lambda n: n / (n - 1), "({p} / ({p} - 1.0))"),
)


def _float_form(points: list[tuple[Sizes, float]], symbols: list[str]) -> str | None:
    """Code of the sizes that gives every sample's float literal (one of ``_FLOAT_FORMS``), or None."""
    for to_count, back, code in _FLOAT_FORMS:
        try:
            counts = [round(to_count(v)) for _, v in points]
        except (ZeroDivisionError, OverflowError, ValueError):
            continue
        if any(n <= 1 or back(n) != v for n, (_, v) in zip(counts, points)):
            continue
        terms = _fit([(sizes, n) for (sizes, _), n in zip(points, counts)], symbols)
        if terms is not None:
            return code.format(p=_expression(terms))
    return None


def _eval_mono(mono: tuple[str, ...], sizes: Sizes) -> int:
    out = 1
    for s in mono:
        out *= sizes[s]
    return out


def _expression(terms: list[tuple[tuple[str, ...], int]]) -> str:
    parts = []
    for mono, c in terms:
        factor = " * ".join(mono)
        parts.append(str(c) if not mono else factor if c == 1 else f"-{factor}" if c == -1 else f"{c} * {factor}")
    return "(" + " + ".join(parts).replace("+ -", "- ") + ")" if parts else "0"


def anti_unify(samples: list[tuple[Sizes, str]]) -> str:
    """The first sample's source with every literal that differs across samples replaced by its
    polynomial of the sizes (keys of ``Sizes`` are the symbols). Raises NotGeneric."""
    streams = [tokens(canonical(src)) for _, src in samples]
    base_sizes, base_src = samples[0]
    symbols = sorted(base_sizes)
    first = streams[0]
    if any(len(s) != len(first) for s in streams):
        raise NotGeneric("the generated code has a different structure at another size")
    edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
    for k, tok in enumerate(first):
        values = [s[k].string for s in streams]
        if all(v == tok.string for v in values):
            continue
        line = tok.line.strip()[:120]
        if tok.type != tokenize.NUMBER or any(s[k].type != tokenize.NUMBER for s in streams):
            raise NotGeneric(f"the generated code differs at another size: `{line}`")
        try:
            ints = [int(v) for v in values]
        except ValueError:
            text = _float_form([(sizes, float(v)) for (sizes, _), v in zip(samples, values)], symbols)
            if text is None:
                raise NotGeneric(f"a non-integer constant depends on the size: `{line}`") from None
            edits.append((tok.start, tok.end, text))
            continue
        terms = _fit([(sizes, v) for (sizes, _), v in zip(samples, ints)], symbols)
        if terms is None:
            raise NotGeneric(f"a size in the generated code is no polynomial of the dynamic sizes: `{line}`")
        edits.append((tok.start, tok.end, _expression(terms)))
    lines = canonical(base_src).splitlines(keepends=True)
    for (row, col), (row2, col2), text in reversed(edits):
        assert row == row2
        lines[row - 1] = lines[row - 1][:col] + text + lines[row - 1][col2:]
    return "".join(lines)


def thread_symbols(source: str, dims: list[DynamicDim]) -> str:
    """Pass the size symbols to every kernel, launcher and op wrapper, bind them in the forward and
    in the guard (with the range check)."""
    names = [d.symbol for d in dims]
    plain, typed = ", ".join(names), ", ".join(f"{n}: int" for n in names)
    source = re.sub(r"@triton\.jit\ndef (\w+)\(([^)]*?)BLOCK_P: tl\.constexpr",
                    lambda m: f"@triton.jit(do_not_specialize={names!r})\ndef {m.group(1)}({m.group(2)}{plain}, "
                              "BLOCK_P: tl.constexpr", source)
    for kernel, first in _TEMPLATE_CONSTEXPRS.items():  # template kernels: before their first constexpr
        source = re.sub(rf"@triton\.jit\ndef ({kernel}\w+)\(([^)]*?){first}: tl\.constexpr",
                        lambda m: f"@triton.jit(do_not_specialize={names!r})\ndef {m.group(1)}({m.group(2)}{plain}, "
                                  f"{first}: tl.constexpr", source)
        source = re.sub(rf"(\b{kernel}\w+\[[^\n]*?), {first}=", rf"\1, {plain}, {first}=", source)
    source = source.replace(", BLOCK_P=", f", {plain}, BLOCK_P=")  # the JIT launch
    source = re.sub(r"(None, None, None, (?:_qm_p\d+, )*_qm_p\d+)", rf"\1, {plain}", source)  # the direct launch
    captured = "".join(f"{d.captured}, " for d in dims)  # any size in range compiles the same binary
    source = re.sub(r"(_qm_ahead\(\w+, \([^)]*\), )\(\)", rf"\1({captured})", source)  # the compilation ahead

    def add(m: re.Match) -> str:
        inner = m.group(2)
        extra = typed if ":" in inner else plain
        return f"{m.group(1)}({inner}, {extra})" if inner.strip() else f"{m.group(1)}({extra})"

    source = re.sub(r"\b(_launch_\w+|_qm_run_\w+|_qm_fake_\w+|_qm_call_\w+)\(([^()]*)\)", add, source)
    forward = re.search(r"^    def _qm_forward\(self[^)]*\):\n", source, re.M)
    if forward is None:
        raise NotGeneric("no generated forward")
    binds = "".join(f"        {d.symbol} = _qm_a{d.sites[0][0]}.shape[{d.sites[0][1]}]\n" for d in dims)
    source = source[:forward.end()] + binds + source[forward.end():]
    unpack = re.search(r"^def _qm_guard\(args\):\n(?:.*\n)*?    (a\d+, )+= args\n", source, re.M)
    if unpack is None:
        raise NotGeneric("no guard")
    prelude = []
    for d in dims:
        arg, axis = d.sites[0]
        prelude += [f"    if not (isinstance(a{arg}, torch.Tensor) and a{arg}.dim() > {axis}):",
                    "        return False",
                    f"    {d.symbol} = a{arg}.shape[{axis}]",
                    f"    if not {d.low} <= {d.symbol} <= {d.high}:",
                    "        return False"]
    source = source[:unpack.end()] + "\n".join(prelude) + "\n" + source[unpack.end():]
    for m in JIT_FUNCTION.finditer(source):
        unbound = [n for n in names if re.search(rf"\b{n}\b", m.group(3)) and n not in m.group(2)]
        if unbound:
            raise NotGeneric(f"the kernel {m.group(1)} is written for the captured sizes ({unbound[0]} in its code)")
        if _ONE_PASS_DYNAMIC.search(m.group(3)):  # BLOCK_R covers the captured row only
            raise NotGeneric(f"the kernel {m.group(1)} reduces a dynamic axis in one pass")
    return ops.with_namespace(source)


def sample_points(dims: list[DynamicDim]) -> list[Sizes]:
    """Sizes to emit at: the captured ones first, then each dimension at two odd sizes (the others
    as captured), then all of them at the first odd size (cross terms)."""
    base = {d.symbol: d.captured for d in dims}
    points = [base]
    for d in dims:
        for n in odd_sizes(d):
            points.append({**base, d.symbol: n})
    points.append({d.symbol: odd_sizes(d)[0] for d in dims})
    unique: list[Sizes] = []
    for p in points:
        if p not in unique:
            unique.append(p)
    return unique


def odd_sizes(dim: DynamicDim) -> list[int]:
    """Two sizes in the range other than the captured one, odd (no multiple of any block size) where
    the range has them: one near 3 and one near twice the captured size."""
    out: list[int] = []
    for wanted in (3, 2 * dim.captured + 1):
        centre = min(max(wanted, dim.low), dim.high)
        window = range(max(dim.low, centre - 4), min(dim.high, centre + 4) + 1)
        pick = next((n for n in sorted(window, key=lambda n: (n % 2 == 0, abs(n - centre)))
                     if n != dim.captured and n not in out), None)
        if pick is not None:
            out.append(pick)
    return out


def generalize(dims: list[DynamicDim], emit_at: Callable[[dict[str, int]], str],
               log: Callable[[str], None] = lambda _: None,
               variants: Callable[[list[DynamicDim]], list[tuple[BucketKey, str]]] | None = None
               ) -> tuple[str | None, list[DynamicDim], list[str], BucketTable]:
    """The shape-generic source over the largest set of ``dims`` the graph allows (all of them, else
    each alone), with each range narrowed until its ends check (None when no dimension is generic),
    the dimensions it covers, why the others were left static, and its block configurations per
    bucket (``buckets``: ``variants(kept dims)`` gives each bucket's source at the captured sizes).
    ``emit_at(sizes by dim name)`` is the static source at those sizes (raises NotGeneric or any error
    when the schedule does not apply there)."""
    cache: dict[tuple, str] = {}

    def emit(dset: list[DynamicDim], sizes: Sizes) -> str:
        key = tuple(sorted(sizes.items()))
        if key not in cache:
            cache[key] = emit_at({d.name: sizes[d.symbol] for d in dset})
        return cache[key]

    def attempt(dset: list[DynamicDim]) -> str:
        return anti_unify([(p, emit(dset, p)) for p in sample_points(dset)])

    notes: list[str] = []
    candidates = [dims] + ([[d] for d in dims] if len(dims) > 1 else [])
    for dset in candidates:
        try:
            attempt(dset)
        except Exception as exc:  # noqa: BLE001 - a schedule that does not apply at a size is a reason
            notes.append(f"{' + '.join(d.name for d in dset)}: {_reason(exc)}")
            continue
        kept = [_narrowed(d, dset, emit, log) for d in dset]
        points = _unique(sample_points(kept) + [{**{k.symbol: k.captured for k in kept}, d.symbol: e}
                                                for d in kept for e in (d.low, d.high)])
        try:
            samples = [canonical(emit(kept, p)) for p in points]
            table = BucketTable()
            if variants is not None:
                samples, table = buckets.slot(samples, [(k, canonical(v)) for k, v in variants(kept)], kept)
            generic = anti_unify(list(zip(points, samples)))
            return buckets.with_table(thread_symbols(generic, kept), table, kept), kept, notes, table
        except Exception as exc:  # noqa: BLE001
            notes.append(f"{' + '.join(d.name for d in kept)}: {_reason(exc)}")
    return None, [], notes, BucketTable()


def _narrowed(dim: DynamicDim, dset: list[DynamicDim], emit, log) -> DynamicDim:
    """``dim`` with the widest range whose ends give the same code (low: as asked, else 2, else the
    smallest sample; high: halved down to the largest sample; the samples themselves always do)."""
    base = {d.symbol: d.captured for d in dset}
    samples = sample_points(dset)
    inner = [p[dim.symbol] for p in samples]
    lo_floor, hi_floor = min(inner), max(inner)

    def ok(n: int) -> bool:
        pts = samples + [{**base, dim.symbol: n}]
        try:
            anti_unify([(p, emit(dset, p)) for p in _unique(pts)])
            return True
        except Exception:  # noqa: BLE001
            return False

    low = next(n for n in dict.fromkeys([dim.low, max(dim.low, 2), lo_floor]) if n == lo_floor or ok(n))
    high = dim.high
    while high > hi_floor and not ok(high):
        high = max(hi_floor, high // 2)
    if (low, high) != (dim.low, dim.high):
        log(f"dynamic {dim.name}: range narrowed to [{low}, {high}] (the code differs beyond)")
    return replace(dim, low=low, high=high)


def _unique(points: list[Sizes]) -> list[Sizes]:
    out: list[Sizes] = []
    for p in points:
        if p not in out:
            out.append(p)
    return out


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
