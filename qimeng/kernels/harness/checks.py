"""Correctness checks: compare a candidate's outputs with the reference's, find aliasing and mutation.

Every function returns a human reason (``None`` when the check passes). Comparison uses the torch
functions bound in ``guard.TRUSTED`` before candidate code was imported; values are compared chunk
by chunk (``values.py``), so a check needs a few chunks of memory, not copies of the output.
"""

from __future__ import annotations

from typing import Any

import torch

from qimeng.kernels.harness import values
from qimeng.kernels.harness.guard import TRUSTED
from qimeng.kernels.result import DEFAULT_TOLERANCES

_isnan = TRUSTED["torch.isnan"]
_equal = TRUSTED["torch.equal"]

VALUES_DIFFER = values.VALUES_DIFFER  # in the reason of outputs that match in all but their finite values


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
    if not (r.is_floating_point() or r.is_complex()):
        return values.compare_exact(path, c, r)
    return values.compare_floating(path, c, r, atol, rtol)


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
        reason = values.within_error(path, c, r, t, atol, rtol)
        if reason:
            return reason
    return None


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


def buffers_differ(candidate: dict[str, Any], reference: dict[str, torch.Tensor],
                   truth: dict[str, torch.Tensor] | None = None) -> str | None:
    """Why the candidate's buffers after a call (batch norm's running statistics, ...) differ from the
    reference's, for every buffer name the candidate's model shares with the reference's, if they do.
    With ``truth`` (the buffers of the reference's float64 twin after the same call) a buffer whose values
    miss the tolerances gets the outputs' second look (``within_reference_error``)."""
    for name, value in candidate.items():
        if name in reference:
            ref = reference[name]
            atol, rtol = tolerances(ref, None, None)
            reason = compare(value, ref, atol, rtol)
            if reason and VALUES_DIFFER in reason and truth is not None and name in truth:
                reason = within_reference_error(value, ref, truth[name], atol, rtol)
            if reason:
                return f"buffer `{name}` after the call: " + reason.removeprefix("output: ")
    return None


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
    for start in range(0, flat.numel(), values.CHUNK_ELEMENTS):
        chunk = flat[start:start + values.CHUNK_ELEMENTS].to(torch.float64)
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
