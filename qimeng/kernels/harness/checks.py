"""Correctness checks: compare a candidate's outputs with the reference's, find aliasing and mutation.

Every function returns a human reason (``None`` when the check passes). Comparison uses the torch
functions bound in ``guard.TRUSTED`` before candidate code was imported.
"""

from __future__ import annotations

from typing import Any

import torch

from qimeng.kernels.harness.guard import TRUSTED
from qimeng.kernels.result import DEFAULT_TOLERANCES

_isclose = TRUSTED["torch.isclose"]
_isnan = TRUSTED["torch.isnan"]
_isinf = TRUSTED["torch.isinf"]
_equal = TRUSTED["torch.equal"]

VALUES_DIFFER = "values differ"  # in the reason of outputs that match in all but their finite values


def leaves(value: Any, path: str = "output") -> list[tuple[str, Any]]:
    """Flatten nested tuples/lists into (path, leaf) pairs."""
    if isinstance(value, (tuple, list)):
        return [leaf for i, item in enumerate(value) for leaf in leaves(item, f"{path}[{i}]")]
    return [(path, value)]


def tolerances(reference: Any, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """(atol, rtol): the given ones, else by the dtype of the reference's first floating or complex output
    (integer and boolean outputs are compared exactly whatever the tolerances)."""
    dtype = next((str(v.dtype).removeprefix("torch.") for _, v in leaves(reference)
                  if isinstance(v, torch.Tensor) and (v.is_floating_point() or v.is_complex())), "float32")
    default_atol, default_rtol = DEFAULT_TOLERANCES.get(dtype, DEFAULT_TOLERANCES["float32"])
    return (default_atol if atol is None else atol, default_rtol if rtol is None else rtol)


def compare(candidate: Any, reference: Any, atol: float, rtol: float) -> str | None:
    """Why ``candidate`` does not match ``reference`` (structure, shape, dtype, NaN/Inf, values).

    Each dtype by its kind: integers and booleans exactly; floating types (fp8 to fp64) by ``isclose``
    in float64; complex numbers by their real and imaginary parts, each with the same tolerances. The
    candidate's tensors may live elsewhere than the reference's (a host mapping of a device output):
    they are compared chunk by chunk on the reference's device."""
    cand, ref = leaves(candidate), leaves(reference)
    if len(cand) != len(ref):
        return f"the candidate returned {len(cand)} outputs, the reference {len(ref)}"
    for (path, c), (_, r) in zip(cand, ref):
        reason = _compare_leaf(path, c, r, atol, rtol)
        if reason:
            return reason
    return None


CHUNK_ELEMENTS = 1 << 24  # elements compared at a time: bounded extra memory for any output size


def _compare_leaf(path: str, c: Any, r: Any, atol: float, rtol: float) -> str | None:
    if not isinstance(r, torch.Tensor):
        same = c.matches(r) if hasattr(c, "matches") else (type(c) is type(r) and c == r)
        return None if same else f"{path}: candidate {c!r}, reference {r!r}"
    if not isinstance(c, torch.Tensor):
        return f"{path}: candidate returned a {getattr(c, 'type_name', type(c).__name__)}, not a tensor"
    if tuple(c.shape) != tuple(r.shape):
        return f"{path}: shape {tuple(c.shape)}, reference {tuple(r.shape)}"
    if c.dtype != r.dtype:
        return f"{path}: dtype {c.dtype}, reference {r.dtype}"
    c_flat, r_flat = c.detach().reshape(-1), r.detach().reshape(-1)
    found = _Mismatches()
    for start in range(0, r_flat.numel(), CHUNK_ELEMENTS):
        cc = c_flat[start:start + CHUNK_ELEMENTS].to(r.device)
        rr = r_flat[start:start + CHUNK_ELEMENTS]
        if not (r.is_floating_point() or r.is_complex()):
            found.add("values", start, cc != rr)
            continue
        if r.is_complex():  # real and imaginary parts side by side; an element is bad if either part is
            cc, rr = torch.view_as_real(cc), torch.view_as_real(rr)
        c64, r64 = cc.to(torch.float64), rr.to(torch.float64)
        nan_c, nan_r, inf_c, inf_r = _isnan(c64), _isnan(r64), _isinf(c64), _isinf(r64)
        close = _isclose(c64, r64, rtol=rtol, atol=atol) | nan_r | inf_r
        parts = (nan_c != nan_r, (inf_c != inf_r) | (inf_r & (c64 != r64)), ~close & ~nan_c & ~inf_c)
        if r.is_complex():
            parts = tuple(p.any(-1) for p in parts)
        found.add("nan", start, parts[0])
        found.add("inf", start, parts[1])
        finite = ~(nan_r | inf_r | nan_c | inf_c)
        found.add("values", start, parts[2], (c64 - r64).abs()[finite].max().item() if bool(finite.any()) else 0.0)
    if found.count["values"] and not (r.is_floating_point() or r.is_complex()):
        return found.reason(path, c_flat, r_flat, "values", "values differ", tuple(c.shape))
    for kind, what in (("nan", "NaN pattern differs"), ("inf", "Inf pattern differs")):
        if found.count[kind]:
            return found.reason(path, c_flat, r_flat, kind, what, tuple(c.shape))
    if found.count["values"]:
        what = f"{VALUES_DIFFER} (max abs diff {found.max_diff:.3g}, atol={atol}, rtol={rtol})"
        return found.reason(path, c_flat, r_flat, "values", what, tuple(c.shape))
    return None


class _Mismatches:
    """Counts and first flat index of each kind of mismatch, over the chunks of one output."""

    def __init__(self) -> None:
        self.count = {"nan": 0, "inf": 0, "values": 0}
        self.first: dict[str, int] = {}
        self.max_diff = 0.0

    def add(self, kind: str, start: int, bad: torch.Tensor, max_diff: float = 0.0) -> None:
        self.max_diff = max(self.max_diff, max_diff)
        n = int(bad.sum().item())
        if n:
            self.count[kind] += n
            self.first.setdefault(kind, start + int(bad.nonzero()[0].item()))

    def reason(self, path: str, c: torch.Tensor, r: torch.Tensor, kind: str, what: str, shape: tuple) -> str:
        flat = self.first[kind]
        index = [int(i) for i in torch.unravel_index(torch.tensor(flat), shape)] if shape else []
        return (f"{path}: {what}; {self.count[kind]} of {r.numel()} elements mismatch, first at index {index}: "
                f"candidate {c[flat].item()!r}, reference {r[flat].item()!r}")


def within_reference_error(candidate: Any, reference: Any, truth: Any, atol: float, rtol: float) -> str | None:
    """Why ``candidate`` is less accurate than ``reference``, both measured against ``truth`` (the
    reference computed in float64), if it is.

    For outputs that differ from the reference beyond the tolerances only because the two sum in a
    different order (long scans and reductions, where the fp32 reference carries rounding error of
    its own): every element must lie within ``atol + rtol*|truth| + 2*e`` of the truth, where ``e`` is
    the reference's own largest error. Structure, shapes, dtypes and NaN/Inf patterns must still
    match the reference exactly."""
    reason = compare(candidate, reference, float("inf"), 0.0)  # everything but the finite values
    if reason:
        return reason
    for (path, c), (_, r), (_, t) in zip(leaves(candidate), leaves(reference), leaves(truth)):
        if not (isinstance(r, torch.Tensor) and (r.is_floating_point() or r.is_complex())):
            continue
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != tuple(r.shape):
            return f"{path}: the float64 reference has another structure"
        if r.is_complex():
            c, r, t = (torch.view_as_real(v.detach().to(r.device).to(torch.complex128)) for v in (c, r, t))
        c64, r64, t64 = (v.detach().to(r.device).to(torch.float64) for v in (c, r, t))
        finite = ~(_isnan(r64) | _isinf(r64) | _isnan(t64) | _isinf(t64))
        if not bool(finite.any()):
            continue
        ref_error = (r64 - t64).abs()[finite].max().item()
        allowed = atol + rtol * t64.abs() + 2.0 * ref_error
        bad = ((c64 - t64).abs() > allowed) & finite
        if bool(bad.any()):
            worst = (c64 - t64).abs()[finite].max().item()
            return _first_mismatch(path, c, r, bad, f"{VALUES_DIFFER}, also against the float64 reference (candidate "
                                   f"error up to {worst:.3g}, the reference's own {ref_error:.3g})")
    return None


def _first_mismatch(path: str, c: torch.Tensor, r: torch.Tensor, bad: torch.Tensor, what: str) -> str:
    count = int(bad.sum().item())
    flat = int(bad.flatten().nonzero()[0].item())
    index = tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), tuple(c.shape))) if c.dim() else ()
    return (f"{path}: {what}; {count} of {c.numel()} elements mismatch, first at index {list(index)}: "
            f"candidate {c.flatten()[flat].item()!r}, reference {r.flatten()[flat].item()!r}")


def inputs_changed(before: list, after: list) -> str | None:
    """Why the candidate's inputs after its call differ from what they should be (``before``)."""
    for i, (b, a) in enumerate(zip(before, after)):
        if isinstance(b, torch.Tensor) and not (_equal(a, b) or _same_with_nan(a, b)):
            return f"the candidate modified its input {i} in place"
    return None


def _same_with_nan(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not b.is_floating_point():
        return False
    return bool(((a == b) | (_isnan(a) & _isnan(b))).all())


def aliases_input(output: Any, inputs: list) -> bool:
    """True when an output tensor shares storage with an input tensor."""
    storages = {t.untyped_storage().data_ptr() for t in inputs if isinstance(t, torch.Tensor) and t.numel()}
    return any(isinstance(v, torch.Tensor) and v.numel() and v.untyped_storage().data_ptr() in storages
               for _, v in leaves(output))


def fingerprint(output: Any) -> tuple | None:
    """A summary of the first output (float64 sum, sum of squares, whether constant), computed in chunks:
    enough to see that a reference returns the same thing for every seed without keeping its outputs."""
    first = leaves(output)[0][1]
    if not isinstance(first, torch.Tensor) or not first.numel():
        return None
    flat = first.detach().reshape(-1)
    if flat.is_complex():
        flat = torch.view_as_real(flat).reshape(-1)
    total = squares = 0.0
    constant = True
    head = flat[:1].to(torch.float64)
    for start in range(0, flat.numel(), CHUNK_ELEMENTS):
        chunk = flat[start:start + CHUNK_ELEMENTS].to(torch.float64)
        total += chunk.sum().item()
        squares += (chunk * chunk).sum().item()
        constant = constant and bool(_equal(chunk, head.expand_as(chunk)))
    return (total, squares, constant and first.numel() > 1)


def degenerate_fingerprints(prints: list[tuple | None]) -> str | None:
    """Why the reference's outputs over several seeds look independent of its inputs, if they do."""
    if len(prints) < 2 or any(p is None for p in prints):
        return None
    if all(p[:2] == prints[0][:2] for p in prints[1:]):
        return "the reference returns the same output for every input seed"
    if all(p[2] for p in prints):
        return "the reference returns a constant tensor"
    return None
