"""Source text of the implicit-GEMM convolution over 1, 2 or 3 spatial dims, transposed or not:
``out = epilogue(conv(x, w))`` as one ``@triton.jit``.

The GEMM is ``[rows, K] @ [K, Cout/groups]`` per group (grid axis 2), K walked with the input channel
fastest: the input is read channels-last (NWC/NHWC/NDHWC: the launch makes it so, so one tap's channels
are contiguous), and the A tile is gathered from it on the fly (no im2col buffer), out-of-bounds taps
masked to zero. The weight is read at its own strides.

- A convolution: a row is an output pixel ``o``; tap ``t`` reads input ``o * stride - pad + t * dil``
  (``K = prod(kernel) * Cin/g``).
- A transposed convolution, as an implicit GEMM over its output: output ``o`` gathers the input
  ``i = (o + pad - t * dil) / stride`` of every tap where that divides exactly. The rows are ordered by
  phase (``o % stride`` per dim, grid axis 0 holds ``prod(stride)`` phases of row blocks): in one phase
  the valid taps of each dim are ``first + j * m`` (``m = stride / gcd(stride, dil)``, ``first`` solved
  per program), so K walks only ``ceil(kernel / m)`` taps a dim and reads
  ``i = u + (r + pad - first * dil) / stride - j * (m * dil / stride)`` (``r`` the phase, ``u`` the row's
  index within it; both divisions exact): no work on taps that never divide, a phase with no valid tap
  masked whole.

The product runs the GEMM template's precisions (``gemm_source.DOT_LINES``); the epilogue is the GEMM
template's, over the output viewed as ``[N, Cout, prod(out)]`` (``B_VAR`` the image, ``M_VAR`` the
output channel, ``N_VAR`` the flat output pixel), and the result is stored at the output's strides
(contiguous, or channels-last where PyTorch's own convolution returns that). Every size and stride is
compiled in (the module's guard pins them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qimeng.kernels.engine.codegen.triton import cast_code, render_expression
from qimeng.kernels.engine.templates.epilogue import B_VAR, M_VAR, N_VAR, Epilogue
from qimeng.kernels.engine.templates.gemm_source import DOT_LINES, DOT_LINES_INTERPRETED

CONV_PRECISIONS = ("tf32x3", "tf32x3_split", "ieee", "tf32", "bf16")


@dataclass(frozen=True)
class Conv:
    """One convolution's sizes: input ``[n, cin, *size]``, output ``[n, cout, *out]``, weight
    ``[cout, cin/groups, *kernel]`` (transposed: ``[cin, cout/groups, *kernel]``); 1 to 3 spatial dims."""

    n: int
    cin: int
    size: tuple[int, ...]
    cout: int
    kernel: tuple[int, ...]
    out: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    transposed: bool = False

    @property
    def pixels(self) -> int:
        return math.prod(self.out)

    @property
    def rows(self) -> int:
        return self.n * self.pixels

    @property
    def taps(self) -> tuple[int, ...]:
        """Taps a dim that K walks: the window, or (transposed) the most that one phase can use."""
        if not self.transposed:
            return self.kernel
        return tuple(-(-k // (s // math.gcd(s, d))) for k, s, d in zip(self.kernel, self.stride, self.dilation))

    @property
    def k(self) -> int:
        return math.prod(self.taps) * (self.cin // self.groups)

    @property
    def phases(self) -> int:
        return math.prod(self.stride) if self.transposed else 1

    @property
    def phase_out(self) -> tuple[int, ...]:
        """Output pixels a dim within one phase (at most; the last phases may hold one fewer)."""
        return tuple(-(-o // s) for o, s in zip(self.out, self.stride)) if self.transposed else self.out

    @property
    def phase_rows(self) -> int:
        return self.n * math.prod(self.phase_out)


@dataclass(frozen=True)
class ConvBlocks:
    block_m: int
    block_n: int
    block_k: int
    num_warps: int = 4
    num_stages: int = 2


def default_blocks(conv: Conv) -> ConvBlocks:
    """Tiles no wider than the group's output channels (16 at least, as ``tl.dot`` needs)."""
    cout_g = conv.cout // conv.groups
    bn = 16 if cout_g <= 16 else 32 if cout_g <= 32 else 64
    return ConvBlocks(64, bn, 16 if conv.k <= 16 else 32)


def grid(conv: Conv, blocks: ConvBlocks) -> tuple[int, int, int]:
    """(phases x row blocks of a phase, output-channel blocks of a group, groups)."""
    return (conv.phases * -(-conv.phase_rows // blocks.block_m), -(-(conv.cout // conv.groups) // blocks.block_n),
            conv.groups)


def grid_code(conv: Conv, blocks: ConvBlocks) -> str:
    """``grid``'s tuple as code of the row count (not its rounded block count), so that a shape-generic file
    (``generalize``) sees a polynomial of the batch."""
    return (f"({conv.phases} * -(-{conv.phase_rows} // {blocks.block_m}), "
            f"{-(-(conv.cout // conv.groups) // blocks.block_n)}, {conv.groups})")


def _suffix_products(values: tuple[int, ...]) -> list[int]:
    """``prod(values[d + 1:])`` for each d: the flat-index stride of each dim."""
    return [math.prod(values[d + 1:]) for d in range(len(values))]


def _digits(flat: str, name: str, sizes: tuple[int, ...], scale: int = 1) -> list[str]:
    """Lines naming ``{name}{d}`` the digits of ``flat // scale`` over ``sizes`` (the last fastest)."""
    lines = []
    for d, (size, step) in enumerate(zip(sizes, _suffix_products(sizes))):
        q = flat if step * scale == 1 else f"({flat} // {step * scale})"
        lines.append(f"{name}{d} = {q}" if d == 0 and scale == 1 else f"{name}{d} = {q} % {size}")
    return lines


def _rows_lines(c: Conv, big: bool) -> list[str]:
    """Each row's image ``img``, output coordinates ``o{d}``, flat pixel ``pix``, ``row_ok`` and the input
    coordinate ``base{d}`` its first tap reads; for a transposed convolution also the program's first tap
    ``first{d}`` and ``ph_ok`` (the row's phase has taps; per row, since a scalar ``int1`` splatted into a
    block mask comes out ``int32`` under Triton 3.9's interpreter)."""
    nd = len(c.size)
    arange = "tl.arange(0, BLOCK_M)" + (".to(tl.int64)" if big else "")
    if not c.transposed:
        return [f"rows = pid_m * BLOCK_M + {arange}", f"row_ok = rows < {c.rows}", f"img = rows // {c.pixels}",
                f"pix = rows % {c.pixels}", *_digits("pix", "o", c.out),
                *(f"base{d} = o{d} * {c.stride[d]} - {c.padding[d]}" for d in range(nd))]
    blocks = f"(({c.phase_rows} + BLOCK_M - 1) // BLOCK_M)"  # row blocks of one phase
    lines = [f"phase = pid_m // {blocks}", f"rows = (pid_m % {blocks}) * BLOCK_M + {arange}",
             f"img = rows // {math.prod(c.phase_out)}", f"sub = rows % {math.prod(c.phase_out)}",
             *_digits("sub", "u", c.phase_out), *_digits("phase", "r", c.stride)]
    oks = [f"(rows < {c.phase_rows})"]
    ph_oks = []
    for d in range(nd):
        s, p, dil = c.stride[d], c.padding[d], c.dilation[d]
        g = math.gcd(s, dil)
        m = s // g
        lines.append(f"o{d} = u{d} * {s} + r{d}")
        oks.append(f"(o{d} < {c.out[d]})")
        # the taps t with t * dil == r + p (mod s): first + j * m, first = ((r + p) / g) * inv(dil / g) mod m
        lines.append(f"first{d} = (((r{d} + {p}) // {g}) * {pow(dil // g, -1, m) if m > 1 else 0}) % {m}")
        if g > 1:  # g divides s, so (o + p) % g is the phase's (r + p) % g: a row test, not a scalar one
            ph_oks.append(f"((o{d} + {p}) % {g} == 0)")
        b = -(-(m - 1) * dil // s)  # keeps the exact division's numerator non-negative
        lines.append(f"base{d} = u{d} + (r{d} + {p + s * b} - first{d} * {dil}) // {s} - {b}")
    pix = " + ".join(f"o{d} * {step}" if step != 1 else f"o{d}" for d, step in enumerate(_suffix_products(c.out)))
    lines += [f"row_ok = {' & '.join(oks)}", f"pix = {pix}"]
    return lines + ([f"ph_ok = {' & '.join(ph_oks)}"] if ph_oks else [])


def _tap_lines(c: Conv, w_stride: tuple[int, ...]) -> tuple[list[str], str, str]:
    """The K loop's lines decoding ``ks`` into input channel ``ci`` and taps ``tap{d}``, the A tile's
    input offset and mask terms, and the B tile's weight offset and mask."""
    cin_g, nd = c.cin // c.groups, len(c.size)
    x_strides = _suffix_products((*c.size, c.cin))[:nd]  # channels-last: the channel is the last dim
    lines = [f"ci = ks % {cin_g}", *_digits("ks", "j", c.taps, cin_g)]
    a_ok, a_offs, b_ok, w_offs = [], ["ci[None, :]"], ["k_ok[:, None]", "col_ok[None, :]"], []
    for d in range(nd):
        s, p, dil, size, k = c.stride[d], c.padding[d], c.dilation[d], c.size[d], c.kernel[d]
        if c.transposed:
            m = s // math.gcd(s, dil)
            lines += [f"tap{d} = first{d} + j{d} * {m}",
                      f"i{d} = base{d}[:, None] - j{d}[None, :] * {m * dil // s}"]
            a_ok += [f"(i{d} >= 0)", f"(i{d} < {size})"]
            if k % m:  # some phase's last tap lies past the window
                a_ok.append(f"(tap{d} < {k})[None, :]")
                b_ok.append(f"(tap{d} < {k})[:, None]")
        else:
            lines += [f"tap{d} = j{d}", f"i{d} = base{d}[:, None] + tap{d}[None, :] * {dil}"]
            a_ok += [f"(i{d} >= 0)"] if p > 0 else []
            a_ok += [f"(i{d} < {size})"] if (c.out[d] - 1) * s - p + (k - 1) * dil >= size else []
        a_offs.append(f"i{d} * {x_strides[d]}")
        w_offs.append(f"tap{d}[:, None] * {w_stride[d + 2]}")
    if c.transposed:
        a_ok += ["ph_ok[:, None]"] if any(math.gcd(s, d) > 1 for s, d in zip(c.stride, c.dilation)) else []
        w_offs = [f"(g * {cin_g} + ci)[:, None] * {w_stride[0]}", f"cols[None, :] * {w_stride[1]}", *w_offs]
    else:
        w_offs = [f"co[None, :] * {w_stride[0]}", f"ci[:, None] * {w_stride[1]}", *w_offs]
    a_mask = " & ".join(["row_ok[:, None] & k_ok[None, :]", *a_ok])
    return lines, f"a_ptr + x_base[:, None] + {' + '.join(a_offs)}, mask={a_mask}", \
        f"b_ptr + {' + '.join(w_offs)}, mask={' & '.join(b_ok)}"


def conv_source(name: str, conv: Conv, w_stride: tuple[int, ...], out_stride: tuple[int, ...], precision: str,
                epilogue: Epilogue, out_dtype: str, interpreted: bool) -> str:
    """The kernel ``name(a_ptr, b_ptr, c_ptr, <epilogue tensors>, BLOCK_M, BLOCK_N, BLOCK_K)`` (the input
    channels-last at ``a_ptr``, the weight at ``b_ptr``: the GEMM's reserved names), storing the
    ``[N, Cout, *out]`` output at ``out_stride``."""
    if precision not in CONV_PRECISIONS:
        raise ValueError(f"unknown convolution precision {precision!r}; known: {', '.join(CONV_PRECISIONS)}")
    c = conv
    cin_g, cout_g, nd = c.cin // c.groups, c.cout // c.groups, len(c.size)
    big = c.n * c.cin * math.prod(c.size) >= 2**31 or c.n * c.cout * c.pixels >= 2**31
    dot = DOT_LINES_INTERPRETED.get(precision, DOT_LINES[precision]) if interpreted else DOT_LINES[precision]
    body, value = render_expression(epilogue.value, {M_VAR: "co2", N_VAR: "pix2", B_VAR: "img2"}, "cmask", "    ",
                                    [({B_VAR, N_VAR}, "rows2", "mask_m"), ({M_VAR}, "co2", "mask_n")],
                                    {"acc": "acc"})
    extra = "".join(f"{o.name}_ptr, " for o in epilogue.operands)
    taps, a_load, b_load = _tap_lines(c, w_stride)
    store = " + ".join([f"img2 * {out_stride[0]}", f"co2 * {out_stride[1]}",
                        *(f"o{d}[:, None] * {out_stride[d + 2]}" for d in range(nd))])
    lines = [
        "@triton.jit",
        f"def {name}(a_ptr, b_ptr, c_ptr, {extra}BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, "
        "BLOCK_K: tl.constexpr):",
        "    pid_m = tl.program_id(0)",
        "    pid_n = tl.program_id(1)",
        "    g = tl.program_id(2)",
        *(f"    {line}" for line in _rows_lines(c, big)),
        "    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
        f"    col_ok = cols < {cout_g}",
        f"    x_base = img * {math.prod(c.size) * c.cin} + g * {cin_g}",
        f"    co = g * {cout_g} + cols",
        "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
        f"    for k0 in range(0, {c.k}, BLOCK_K):",
        "        ks = k0 + tl.arange(0, BLOCK_K)",
        f"        k_ok = ks < {c.k}",
        *(f"        {line}" for line in taps),
        f"        a_tile = tl.load({a_load}, other=0.0)",
        f"        b_tile = tl.load({b_load}, other=0.0)",
        *(f"        {line}" for line in dot),
        "    rows2 = rows[:, None]",
        "    img2 = img[:, None]",
        "    pix2 = pix[:, None]",
        "    co2 = co[None, :]",
        "    mask_m = row_ok[:, None]",
        "    mask_n = col_ok[None, :]",
        "    cmask = mask_m & mask_n",
        *body,
        f"    tl.store(c_ptr + {store}, {cast_code(value, out_dtype)}, mask=cmask)",
    ]
    return "\n".join(lines) + "\n"
