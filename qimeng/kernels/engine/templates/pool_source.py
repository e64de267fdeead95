"""The Triton text of an N-D pooling (max or average; fixed or adaptive windows), one generator for 1-3 spatial dims.

One program computes ``BLOCK`` elements of the output ``[*lead, *spatial_out]`` (lead: batch and channel,
or channel alone), walked in the order of the strides of what it reads (fastest first: a channels-last
input, or the NHWC convolution output a prologue reads, is read contiguously), stored at the output's
strides (the captured ones). Each element walks
its window in nested loops, compiled-in bounds (unrolled up to ``UNROLL`` taps), out-of-bounds taps
masked:

- fixed windows: start ``o * stride - padding``, taps ``start + k * dilation``;
- adaptive windows: ``start = floor(o * In / Out)``, ``end = ceil((o + 1) * In / Out)``, up to the widest.

Max pooling keeps the first maximum, lets a NaN win (PyTorch's ``val > max || isnan(val)``) and writes the
flat index of its tap within the spatial plane/volume (``(id * H + ih) * W + iw``), starting from the first
in-bounds tap as PyTorch does. Average pooling divides by the divisor override, else by the window
clipped to the padded input (``count_include_pad``) or to the input; an adaptive one by its window.

A ``Prologue`` (``pool_prologue``) replaces the load of the input: the pointwise kernel that would have
written it is evaluated at each tap instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qimeng.kernels.engine.capture import TensorMeta
from qimeng.kernels.engine.codegen.triton import TL_DTYPES, cast_code, render_expression
from qimeng.kernels.engine.templates.pool_prologue import Prologue

BLOCK = 256
UNROLL = 64  # windows of at most this many taps are unrolled (tl.static_range), larger ones loop


@dataclass(frozen=True)
class Pool:
    """One pooling over the last ``len(kernel)`` (fixed) or ``len(output_size)`` (adaptive) dims."""

    kind: str  # "max" or "avg"
    kernel: tuple[int, ...]  # the window (fixed windows; () when adaptive)
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...] = (1, 1)
    count_include_pad: bool = True
    divisor: int | None = None
    output_size: tuple[int, ...] = ()  # adaptive pooling's output sizes; () for fixed windows

    @property
    def dims(self) -> int:
        return len(self.output_size or self.kernel)


def adaptive_width(size_in: int, size_out: int) -> int:
    """The widest adaptive window over ``size_in`` for ``size_out`` outputs."""
    return max(-(-((o + 1) * size_in) // size_out) - (o * size_in) // size_out for o in range(size_out))


def _order(strides: tuple[int, ...]) -> list[int]:
    """Dims fastest first (by stride; ties, as size-1 dims give, in row-major order)."""
    return sorted(range(len(strides)), key=lambda j: (strides[j], -j))


def kernel_source(name: str, pool: Pool, x: TensorMeta, out: TensorMeta, prologue: Prologue | None = None) -> str:
    """The ``@triton.jit`` kernel ``name(out_ptr, idx_ptr, x_ptr | the prologue's operands, BLOCK)`` of ``pool``."""
    d, r = pool.dims, len(out.shape)
    lead = r - d
    size_in, size_out = x.shape[lead:], out.shape[lead:]
    span = sum((s - 1) * abs(st) for s, st in zip(x.shape, x.stride)) + 1
    big = max(out.numel, span) >= 2**31
    pid = "tl.program_id(0).to(tl.int64)" if big else "tl.program_id(0)"
    inputs = "".join(f"{o}_ptr, " for o in (prologue.operands if prologue else ("x",)))
    lines = ["@triton.jit", f"def {name}(out_ptr, idx_ptr, {inputs}BLOCK: tl.constexpr):",
             f"    offs = {pid} * BLOCK + tl.arange(0, BLOCK)", f"    mask = offs < {out.numel}"]
    step = 1
    for j in _order(prologue.layout if prologue else x.stride):  # neighbouring lanes read neighbouring taps
        lines.append(f"    o{j} = (offs // {step}) % {out.shape[j]}")
        step *= out.shape[j]
    if prologue is None:
        lines.append("    base = " + " + ".join([f"o{j} * {x.stride[j]}" for j in range(lead)] + ["0"]))
    lines.append("    dst = " + " + ".join(f"o{j} * {out.stride[j]}" for j in range(r)))
    widths = []
    for s in range(d):
        o = f"o{lead + s}"
        if pool.output_size:
            lines += [f"    st{s} = ({o} * {size_in[s]}) // {size_out[s]}",
                      f"    en{s} = (({o} + 1) * {size_in[s]} + {size_out[s] - 1}) // {size_out[s]}"]
            widths.append(adaptive_width(size_in[s], size_out[s]))
        else:
            lines.append(f"    st{s} = {o} * {pool.stride[s]} - {pool.padding[s]}")
            widths.append(pool.kernel[s])
    flat = _flat([f"p{s}" for s in range(d)], size_in)
    if pool.kind == "max":
        lines += ["    best = tl.full((BLOCK,), float(\"-inf\"), tl.float32)"]
        if pool.output_size:
            firsts = [f"st{s}" for s in range(d)]
        else:  # PyTorch starts from the first in-bounds tap: start advanced by whole dilations
            firsts = [f"f{s}" for s in range(d)]
            lines += [f"    f{s} = tl.maximum(st{s}, 0)" if pool.dilation[s] == 1 else
                      f"    f{s} = tl.where(st{s} < 0, st{s} + ((-st{s} + {pool.dilation[s] - 1}) // "
                      f"{pool.dilation[s]}) * {pool.dilation[s]}, st{s})" for s in range(d)]
        lines.append(f"    arg = ({_flat(firsts, size_in)}).to(tl.int64) + tl.zeros((BLOCK,), tl.int64)")
    else:
        lines.append("    acc = tl.zeros((BLOCK,), tl.float32)")
    loop = "tl.static_range" if math.prod(widths) <= UNROLL else "range"
    indent = "    "
    for s in range(d):
        tap = f"st{s} + k{s}" if pool.output_size else f"st{s} + k{s} * {pool.dilation[s]}"
        lines += [f"{indent}for k{s} in {loop}({widths[s]}):", f"{indent}    p{s} = {tap}"]
        indent += "    "
    if pool.output_size:
        bounds = [f"(p{s} < en{s})" for s in range(d)]
    else:
        bounds = [f"(p{s} >= 0) & (p{s} < {size_in[s]})" for s in range(d)]
    lines.append(f"{indent}ok = mask & " + " & ".join(bounds))
    lines += _tap_value(prologue, x, lead, indent)
    if pool.kind == "max":
        lines += [f"{indent}take = ok & ((v > best) | (v != v))", f"{indent}best = tl.where(take, v, best)",
                  f"{indent}arg = tl.where(take, {flat}, arg)"]
    else:
        lines.append(f"{indent}acc += tl.where(ok, v, 0.0)")
    out_t = TL_DTYPES[out.dtype]
    if pool.kind == "max":
        lines += [f"    tl.store(out_ptr + dst, best.to({out_t}), mask=mask)", "    tl.store(idx_ptr + dst, arg, mask=mask)"]
        return "\n".join(lines) + "\n"
    lines += _divisor(pool, size_in, d)
    lines.append(f"    tl.store(out_ptr + dst, (acc / div).to({out_t}), mask=mask)")
    return "\n".join(lines) + "\n"


def _flat(coords: list[str], sizes: tuple[int, ...]) -> str:
    """The row-major flat index of ``coords`` over ``sizes`` (Horner form)."""
    code = coords[0]
    for c, size in zip(coords[1:], sizes[1:]):
        code = f"({code}) * {size} + {c}"
    return code


def _tap_value(prologue: Prologue | None, x: TensorMeta, lead: int, indent: str) -> list[str]:
    """Lines defining ``v``, the tap's input value in fp32: loaded, or the prologue's value at the tap."""
    if prologue is None:
        address = " + ".join(["base"] + [f"p{s} * {st}" for s, st in enumerate(x.stride[lead:])])
        return [f"{indent}v = tl.load(x_ptr + {address}, mask=ok, other=0.0).to(tl.float32)"]
    codes = {v: (f"o{j}" if j < lead else f"p{j - lead}") for j, v in enumerate(prologue.variables)}
    body, value = render_expression(prologue.value, codes, "ok", indent, [(set(prologue.variables), "offs", "ok")], {})
    rounded = cast_code(value, x.dtype)  # the value the kernel would have stored, in fp32
    return body + [f"{indent}v = {rounded if x.dtype == 'float32' else rounded + '.to(tl.float32)'}"]


def _divisor(pool: Pool, size_in: tuple[int, ...], d: int) -> list[str]:
    """Lines defining ``div``, the average's divisor per output element."""
    if pool.output_size:
        return ["    div = (" + " * ".join(f"(en{s} - st{s})" for s in range(d)) + ").to(tl.float32)"]
    if pool.divisor is not None:
        return [f"    div = {float(pool.divisor)}"]
    lines = [f"    en{s} = tl.minimum(st{s} + {pool.kernel[s]}, {size_in[s] + pool.padding[s]})" for s in range(d)]
    if not pool.count_include_pad:  # the window clipped to the input itself
        for s in range(d):
            lines += [f"    st{s} = tl.maximum(st{s}, 0)", f"    en{s} = tl.minimum(en{s}, {size_in[s]})"]
    return lines + ["    div = (" + " * ".join(f"(en{s} - st{s})" for s in range(d)) + ").to(tl.float32)"]
