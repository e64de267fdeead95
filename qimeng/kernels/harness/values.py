"""Value comparison of floating outputs in bounded memory and time: chunk by chunk.

A whole-tensor comparison in float64 holds several copies of the output (two float64 casts, masks,
``isclose``'s temporaries): about 10x the output's size. Here each chunk of at most ``CHUNK_ELEMENTS``
elements is compared on its own, so the extra memory is a few chunks, whatever the output's size: first
cheaply (equal, or clearly within the tolerances in float32 with a margin), and only a chunk that fails
that gets the exact float64 comparison (NaN and Inf patterns, ``isclose``). Chunks are taken in
row-major order (slices of the leading dimensions: views, never a copy of the whole tensor), so the
first mismatch found is the first in the tensor. The candidate's tensor may live elsewhere than the
reference's (the judge reads it from a read-only host mapping): each chunk is moved to the reference's
device. Complex values are compared by their real and imaginary parts, each with the same tolerances
(an element is bad when either part is). Uses the torch functions bound in ``guard.TRUSTED`` before
candidate code was imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from qimeng.kernels.harness.guard import TRUSTED

CHUNK_ELEMENTS = 1 << 22  # 4M elements: 32 MiB per float64 temporary

_isclose = TRUSTED["torch.isclose"]
_isnan = TRUSTED["torch.isnan"]
_isinf = TRUSTED["torch.isinf"]
_equal = TRUSTED["torch.equal"]
_MARGIN = 1e-5  # relative: far above float32 rounding of a difference and a bound

VALUES_DIFFER = "values differ"  # in the reason of outputs that match in all but their finite values


def pieces(shape: tuple[int, ...], budget: int = CHUNK_ELEMENTS) -> Iterator[tuple]:
    """Indices (ints and slices of the leading dimensions) that cover ``shape`` in row-major order,
    each selecting at most ``budget`` elements (or one innermost row, when a row alone is larger)."""
    if not shape:
        yield ()
        return
    inner = math.prod(shape[1:])
    if inner <= budget or len(shape) == 1:
        step = max(1, budget // max(inner, 1))
        for start in range(0, shape[0], step):
            yield (slice(start, min(start + step, shape[0])),)
        return
    for i in range(shape[0]):
        for rest in pieces(shape[1:], budget):
            yield (i, *rest)


def _chunks(*tensors: torch.Tensor, wide: bool = True) -> Iterator[tuple[int, list[torch.Tensor]]]:
    """(flat offset, the same chunk of each tensor on the last tensor's device: flattened in float64 when
    ``wide`` (complex as (n, 2) real and imaginary parts), else as it is)."""
    offset = 0
    device = tensors[-1].device
    for index in pieces(tuple(tensors[0].shape), CHUNK_ELEMENTS):
        parts = [t.detach()[index].to(device) for t in tensors]
        size = parts[0].numel()
        if wide:
            parts = [_wide(p) for p in parts]
        yield offset, parts
        offset += size


def _wide(part: torch.Tensor) -> torch.Tensor:
    """A chunk flattened in float64; a complex one as (n, 2): its real and imaginary parts."""
    if part.is_complex():
        return torch.view_as_real(part.reshape(-1).to(torch.complex128))
    return part.reshape(-1).to(torch.float64)


def _per_element(bad: torch.Tensor) -> torch.Tensor:
    """Bad elements of a wide chunk: a complex element is bad when either of its parts is."""
    return bad.any(-1) if bad.dim() == 2 else bad


def _surely_close(c: torch.Tensor, r: torch.Tensor, atol: float, rtol: float) -> float | None:
    """The largest ``|c - r|`` of a chunk when every element is clearly within ``atol + rtol*|r|`` (a
    margin covers the rounding of this cheaper float32 test); None when some element may not be, or is
    NaN/Inf: that chunk then gets the exact float64 comparison."""
    if c.is_complex() or c.dtype == torch.float64:
        return None if not _equal(c, r) else 0.0
    if _equal(c, r):
        return 0.0
    cw, rw = c.to(torch.float32), r.to(torch.float32)
    diff = torch.sub(cw, rw).abs_()
    bound = rw.abs().mul_(rtol * (1 - _MARGIN)).add_(atol * (1 - _MARGIN))
    if not bool((diff <= bound).all()):  # NaN compares False: an exact look
        return None
    return float(diff.max().item()) if diff.numel() else 0.0


@dataclass
class _Tally:
    """Mismatching elements of one kind: how many, and the flat index of the first."""

    count: int = 0
    first: int | None = None

    def add(self, offset: int, bad: torch.Tensor) -> None:
        found = int(bad.sum().item())
        if found and self.first is None:
            self.first = offset + int(bad.nonzero()[0].item())
        self.count += found


def compare_exact(path: str, c: torch.Tensor, r: torch.Tensor) -> str | None:
    """Why integer or boolean ``c`` differs from ``r`` (same shape and dtype), element by element."""
    bad = _Tally()
    for offset, (cc, rc) in _chunks(c, r, wide=False):
        if not _equal(cc, rc):
            bad.add(offset, (cc != rc).reshape(-1))
    return first_mismatch(path, c, r, bad.count, bad.first, VALUES_DIFFER) if bad.count else None  # type: ignore[arg-type]


def first_mismatch(path: str, c: torch.Tensor, r: torch.Tensor, count: int, flat: int, what: str) -> str:
    """The reason naming the first mismatching element (its index, both values)."""
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), tuple(c.shape))) if c.dim() else ()
    return (f"{path}: {what}; {count} of {c.numel()} elements mismatch, first at index {list(index)}: "
            f"candidate {c[index].item()!r}, reference {r[index].item()!r}")


def compare_floating(path: str, c: torch.Tensor, r: torch.Tensor, atol: float, rtol: float) -> str | None:
    """Why floating or complex ``c`` does not match ``r`` (same shape and dtype): the NaN pattern, then
    the Inf pattern (positions and signs), then ``isclose`` of the finite values."""
    nan, inf, far = _Tally(), _Tally(), _Tally()
    worst = 0.0
    for offset, (cc, rc) in _chunks(c, r, wide=False):
        quick = _surely_close(cc, rc, atol, rtol)
        if quick is not None:
            worst = max(worst, quick)
            continue
        c64, r64 = _wide(cc), _wide(rc)
        nan_c, nan_r = _isnan(c64), _isnan(r64)
        nan.add(offset, _per_element(nan_c != nan_r))
        inf_c, inf_r = _isinf(c64), _isinf(r64)
        inf.add(offset, _per_element((inf_c != inf_r) | (inf_r & (c64 != r64))))
        finite = ~(nan_r | inf_r | nan_c | inf_c)
        far.add(offset, _per_element(~_isclose(c64, r64, rtol=rtol, atol=atol) & finite))
        if bool(finite.any()):
            worst = max(worst, float((c64 - r64).abs()[finite].max().item()))
    if nan.count:
        return first_mismatch(path, c, r, nan.count, nan.first, "NaN pattern differs")  # type: ignore[arg-type]
    if inf.count:
        return first_mismatch(path, c, r, inf.count, inf.first, "Inf pattern differs")  # type: ignore[arg-type]
    if far.count:
        return first_mismatch(path, c, r, far.count, far.first,  # type: ignore[arg-type]
                              f"{VALUES_DIFFER} (max abs diff {worst:.3g}, atol={atol}, rtol={rtol})")
    return None


def within_error(path: str, c: torch.Tensor, r: torch.Tensor, t: torch.Tensor, atol: float, rtol: float) -> str | None:
    """Why ``c`` is less accurate than ``r`` against the float64 truth ``t``: some element lies beyond
    ``atol + rtol*|t| + 2*e`` of it, ``e`` the reference's own largest error (two passes over chunks)."""
    ref_error, any_finite = 0.0, False
    for _, (r64, t64) in _chunks(r, t):
        error = torch.sub(r64, t64).abs_()
        finite = torch.isfinite(error)  # both finite (a difference of finite doubles overflows only past 1e308)
        if bool(finite.any()):
            any_finite = True
            ref_error = max(ref_error, float(torch.where(finite, error, 0.0).max().item()))
    if not any_finite:
        return None
    bad, worst = _Tally(), 0.0
    for offset, (c64, r64, t64) in _chunks(c, r, t):
        finite = torch.isfinite(torch.sub(r64, t64))
        error = torch.sub(c64, t64).abs_()
        bad.add(offset, _per_element((error > t64.abs().mul_(rtol).add_(atol + 2.0 * ref_error)) & finite))
        worst = max(worst, float(torch.where(finite, error, 0.0).max().item()))
    if bad.count:
        return first_mismatch(path, c, r, bad.count, bad.first,  # type: ignore[arg-type]
                              f"{VALUES_DIFFER}, also against the float64 reference (candidate error up to "
                              f"{worst:.3g}, the reference's own {ref_error:.3g})")
    return None

