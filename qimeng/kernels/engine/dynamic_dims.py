"""Dynamic dimensions of a problem's forward: which input sizes may vary at run time, and over what range.

A dynamic dimension is one size shared by some (argument, axis) pairs: ``batch`` is axis 0 of every
tensor argument of the captured batch size, ``seq`` axis 1 of every tensor argument of rank 3 (or of
rank 2 and an integer dtype: token ids) of the captured sequence length. Both are proposed by default;
``generalize`` keeps those the graph allows (the kernels must come out the same at every sampled
size). ``--dynamic NAME=MIN:MAX`` sets a range, or names another one (``NAME`` = ``ARG.AXIS``, an
argument position and an axis: ``1.2``); ``--static`` proposes none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.capture import TensorMeta

DEFAULT_MAX_FACTOR = 4  # default range: [1, max(4 x captured, 64)]
DEFAULT_MAX_FLOOR = 64
_INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8")


@dataclass(frozen=True)
class DynamicDim:
    """One runtime size (``symbol`` in the generated code), the (argument, axis) pairs that carry it,
    its captured value and the range the kernels are generated for."""

    name: str
    sites: tuple[tuple[int, int], ...]
    captured: int
    low: int
    high: int

    @property
    def symbol(self) -> str:
        return "qm_" + re.sub(r"\W", "_", self.name)

    def describe(self) -> str:
        sites = ", ".join(f"argument {a} axis {d}" for a, d in self.sites)
        return f"{self.name} in [{self.low}, {self.high}] (captured {self.captured}; {sites})"


def parse_spec(spec: str) -> tuple[str, int, int]:
    """``NAME=MIN:MAX`` as (name, min, max); BadInput naming the problem with it."""
    m = re.fullmatch(r"\s*([A-Za-z_]\w*|\d+\.\d+)\s*=\s*(\d+)\s*:\s*(\d+)\s*", spec)
    if not m:
        raise BadInput(f"--dynamic {spec!r}: expected NAME=MIN:MAX (NAME: batch, seq or ARG.AXIS, e.g. 0.1)")
    name, low, high = m.group(1), int(m.group(2)), int(m.group(3))
    if not 1 <= low <= high:
        raise BadInput(f"--dynamic {spec!r}: need 1 <= MIN <= MAX")
    return name, low, high


def _tensors(user_args: list[Any]) -> list[tuple[int, TensorMeta]]:
    return [(i, a) for i, a in enumerate(user_args) if isinstance(a, TensorMeta)]


def _default_range(captured: int) -> tuple[int, int]:
    return 1, max(captured * DEFAULT_MAX_FACTOR, DEFAULT_MAX_FLOOR)


def _batch(user_args: list[Any]) -> DynamicDim | None:
    tensors = [(i, a) for i, a in _tensors(user_args) if a.shape]
    if not tensors:
        return None
    size = tensors[0][1].shape[0]
    sites = tuple((i, 0) for i, a in tensors if a.shape[0] == size)
    return DynamicDim("batch", sites, size, *_default_range(size))


def _seq(user_args: list[Any]) -> DynamicDim | None:
    tensors = [(i, a) for i, a in _tensors(user_args)
               if len(a.shape) == 3 or (len(a.shape) == 2 and a.dtype in _INT_DTYPES)]
    if not tensors:
        return None
    size = tensors[0][1].shape[1]
    sites = tuple((i, 1) for i, a in tensors if a.shape[1] == size)
    return DynamicDim("seq", sites, size, *_default_range(size))


def _named(user_args: list[Any], name: str) -> DynamicDim:
    arg, axis = (int(p) for p in name.split("."))
    meta = user_args[arg] if arg < len(user_args) else None
    if not isinstance(meta, TensorMeta) or axis >= len(meta.shape):
        raise BadInput(f"--dynamic {name}: argument {arg} has no axis {axis}")
    return DynamicDim(name, ((arg, axis),), meta.shape[axis], *_default_range(meta.shape[axis]))


def propose(user_args: list[Any], specs: tuple[str, ...] = (), static: bool = False) -> list[DynamicDim]:
    """The dynamic dimensions to try: batch and seq by default (unless ``static``), with the ranges and
    extra dimensions of ``specs``. A site belongs to one dimension (the first that names it)."""
    dims: dict[str, DynamicDim] = {}
    if not static:
        for dim in (_batch(user_args), _seq(user_args)):
            if dim is not None:
                dims[dim.name] = dim
    for spec in specs:
        name, low, high = parse_spec(spec)
        base = dims.get(name) or {"batch": _batch, "seq": _seq}.get(name, lambda args: _named(args, name))(user_args)
        if base is None:
            raise BadInput(f"--dynamic {name}: the forward has no such dimension")
        if not low <= base.captured <= high:
            raise BadInput(f"--dynamic {spec}: the range must hold the captured size {base.captured}")
        dims[name] = replace(base, low=low, high=high)
    taken: set[tuple[int, int]] = set()
    out = []
    for dim in dims.values():
        sites = tuple(s for s in dim.sites if s not in taken)
        taken.update(sites)
        if sites:
            out.append(replace(dim, sites=sites))
    return out


def resized(inputs: list[Any], dims: list[DynamicDim], sizes: dict[str, int]) -> list[Any]:
    """``inputs`` with each dynamic axis at ``sizes[name]`` (entries repeated cyclically, so that
    index-valued inputs stay in range; works on meta tensors too)."""
    import torch

    out = list(inputs)
    for dim in dims:
        n = sizes.get(dim.name, dim.captured)
        for arg, axis in dim.sites:
            t = out[arg]
            index = torch.arange(n, device=t.device) % t.shape[axis]
            out[arg] = t.index_select(axis, index).contiguous() if t.is_contiguous() else t.index_select(axis, index)
    return out
