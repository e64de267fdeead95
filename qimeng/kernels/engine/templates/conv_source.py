"""Source text of the implicit-GEMM 2-D convolution: ``out = epilogue(conv2d(x, w))`` as one ``@triton.jit``.

The GEMM is ``[N*OH*OW, K] @ [K, Cout/groups]`` per group (grid axis 2), ``K = KH*KW*Cin/groups``
walked with the input channel fastest: the input is read NHWC (the launch makes it channels-last, so
one tap's channels are contiguous), and the A tile is gathered from it on the fly (no im2col buffer),
out-of-bounds taps (padding) masked to zero. The weight is read at its own strides. The product runs
the GEMM template's precisions (``gemm_source.DOT_LINES``); the epilogue is the GEMM template's, over
the output viewed as ``[N, Cout, OH*OW]`` (``B_VAR`` the image, ``M_VAR`` the output channel,
``N_VAR`` the pixel), and the result is stored at the output's strides (contiguous NCHW, or channels-last where PyTorch's own
convolution returns that). Every size and stride is compiled in
(the module's guard pins them).
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.codegen.triton import cast_code, render_expression
from qimeng.kernels.engine.templates.epilogue import B_VAR, M_VAR, N_VAR, Epilogue
from qimeng.kernels.engine.templates.gemm_source import DOT_LINES, DOT_LINES_INTERPRETED

CONV_PRECISIONS = ("tf32x3", "tf32x3_split", "ieee", "tf32", "bf16")


@dataclass(frozen=True)
class Conv:
    """One 2-D convolution's sizes (NCHW input ``[n, cin, h, w]``, weight ``[cout, cin/groups, kh, kw]``)."""

    n: int
    cin: int
    h: int
    w: int
    cout: int
    kh: int
    kw: int
    oh: int
    ow: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def k(self) -> int:
        return self.kh * self.kw * (self.cin // self.groups)

    @property
    def rows(self) -> int:
        return self.n * self.oh * self.ow


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


def conv_source(name: str, conv: Conv, w_stride: tuple[int, ...], out_stride: tuple[int, ...], precision: str,
                epilogue: Epilogue, out_dtype: str, interpreted: bool) -> str:
    """The kernel ``name(x_ptr, w_ptr, c_ptr, <epilogue tensors>, BLOCK_M, BLOCK_N, BLOCK_K)``, storing the
    ``[N, Cout, OH, OW]`` output at ``out_stride``."""
    if precision not in CONV_PRECISIONS:
        raise ValueError(f"unknown convolution precision {precision!r}; known: {', '.join(CONV_PRECISIONS)}")
    c = conv
    cin_g, cout_g, ohw = c.cin // c.groups, c.cout // c.groups, c.oh * c.ow
    sxn, sxc, sxh, sxw = c.h * c.w * c.cin, 1, c.w * c.cin, c.cin  # channels-last
    swo, swi, swh, sww = w_stride
    big = c.n * c.cin * c.h * c.w >= 2**31 or c.n * c.cout * ohw >= 2**31
    dot = DOT_LINES_INTERPRETED.get(precision, DOT_LINES[precision]) if interpreted else DOT_LINES[precision]
    body, value = render_expression(epilogue.value, {M_VAR: "co2", N_VAR: "pix2", B_VAR: "img2"}, "cmask", "    ",
                                    [({B_VAR, N_VAR}, "rows2", "mask_m"), ({M_VAR}, "co2", "mask_n")],
                                    {"acc": "acc"})
    extra = "".join(f"{o.name}_ptr, " for o in epilogue.operands)
    rows = "(pid_m * BLOCK_M + tl.arange(0, BLOCK_M))" + (".to(tl.int64)" if big else "")
    lines = [
        "@triton.jit",
        f"def {name}(x_ptr, w_ptr, c_ptr, {extra}BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, "
        "BLOCK_K: tl.constexpr):",
        "    pid_m = tl.program_id(0)",
        "    pid_n = tl.program_id(1)",
        "    g = tl.program_id(2)",
        f"    rows = {rows}",
        "    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)",
        f"    row_ok = rows < {c.rows}",
        f"    col_ok = cols < {cout_g}",
        f"    img = rows // {ohw}",
        f"    pix = rows % {ohw}",
        f"    ih0 = (pix // {c.ow}) * {c.stride[0]} - {c.padding[0]}",
        f"    iw0 = (pix % {c.ow}) * {c.stride[1]} - {c.padding[1]}",
        f"    x_base = img * {sxn} + g * {cin_g * sxc}",
        f"    co = g * {cout_g} + cols",
        "    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)",
        f"    for k0 in range(0, {c.k}, BLOCK_K):",
        "        ks = k0 + tl.arange(0, BLOCK_K)",
        f"        k_ok = ks < {c.k}",
        f"        ci = ks % {cin_g}",
        f"        kw = (ks // {cin_g}) % {c.kw}",
        f"        kh = ks // {cin_g * c.kw}",
        f"        ih = ih0[:, None] + kh[None, :] * {c.dilation[0]}",
        f"        iw = iw0[:, None] + kw[None, :] * {c.dilation[1]}",
        f"        a_ok = row_ok[:, None] & k_ok[None, :] & (ih >= 0) & (ih < {c.h}) & (iw >= 0) & (iw < {c.w})",
        f"        a_tile = tl.load(x_ptr + x_base[:, None] + ci[None, :] * {sxc} + ih * {sxh} + iw * {sxw}, "
        "mask=a_ok, other=0.0)",
        f"        b_tile = tl.load(w_ptr + co[None, :] * {swo} + ci[:, None] * {swi} + kh[:, None] * {swh} + "
        f"kw[:, None] * {sww}, mask=k_ok[:, None] & col_ok[None, :], other=0.0)",
        *(f"        {line}" for line in dot),
        "    rows2 = rows[:, None]",
        "    img2 = img[:, None]",
        "    pix2 = pix[:, None]",
        "    co2 = co[None, :]",
        "    mask_m = row_ok[:, None]",
        "    mask_n = col_ok[None, :]",
        "    cmask = mask_m & mask_n",
        *body,
        f"    tl.store(c_ptr + img2 * {out_stride[0]} + co2 * {out_stride[1]} + (pix2 // {c.ow}) * {out_stride[2]} + "
        f"(pix2 % {c.ow}) * {out_stride[3]}, {cast_code(value, out_dtype)}, mask=cmask)",
    ]
    return "\n".join(lines) + "\n"
