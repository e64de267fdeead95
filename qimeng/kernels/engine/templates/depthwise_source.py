"""Source text of the direct depthwise 2-D convolution: ``out = epilogue(conv2d(x, w, groups=Cin))`` as one
``@triton.jit``, fp32 FMA (no tensor cores, so no TF32 whatever PyTorch's flags say).

Output channel ``co`` reads input channel ``co // multiplier``. One program computes a tile of
``BLOCK_P`` output pixels (of one image, grid axis 2) by ``BLOCK_C`` output channels; the tap loop is
unrolled (window, stride, padding, dilation and every size compiled in) and each tap is one masked
load of the input at its own strides, padding taps masked to zero. The tile's fast (last) axis is the
input's contiguous one, so a warp's loads are coalesced: channels for a channels-last input, pixels
for NCHW. The epilogue is the GEMM template's, over the output viewed as ``[N, Cout, OH*OW]``
(``B_VAR`` the image, ``M_VAR`` the output channel, ``N_VAR`` the pixel); the result is stored at the
output's strides.
"""

from __future__ import annotations

from dataclasses import dataclass

from qimeng.kernels.engine.codegen.triton import cast_code, render_expression
from qimeng.kernels.engine.templates.conv_source import Conv
from qimeng.kernels.engine.templates.epilogue import B_VAR, M_VAR, N_VAR, Epilogue


@dataclass(frozen=True)
class DepthwiseBlocks:
    block_p: int  # output pixels per program
    block_c: int  # output channels per program
    channels_fast: bool  # channels on the tile's last axis (a channels-last input)
    num_warps: int = 4


def _pow2_at_least(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


def is_depthwise(conv: Conv) -> bool:
    """One group per input channel (output channels a multiple of it: the channel multiplier)."""
    return conv.groups == conv.cin and conv.cin > 1


def default_blocks(conv: Conv, x_stride: tuple[int, ...]) -> DepthwiseBlocks:
    """2048-element tiles along the input's contiguous axis: 64 channels x 32 pixels channels-last,
    4 channels x 512 pixels NCHW (narrower where the sizes are smaller)."""
    channels_fast = x_stride[1] == 1 and conv.cin > 1
    if channels_fast:
        bc = min(_pow2_at_least(conv.cout), 64)
        return DepthwiseBlocks(min(_pow2_at_least(conv.pixels), max(16, 2048 // bc)), bc, True)
    bp = min(_pow2_at_least(conv.pixels), 512)
    return DepthwiseBlocks(bp, min(_pow2_at_least(conv.cout), max(1, 2048 // bp)), False)


def grid(conv: Conv, blocks: DepthwiseBlocks) -> tuple[int, int, int]:
    """(pixel blocks, channel blocks, images)."""
    return (-(-(conv.pixels) // blocks.block_p), -(-conv.cout // blocks.block_c), conv.n)


def depthwise_source(name: str, conv: Conv, x_stride: tuple[int, ...], w_stride: tuple[int, ...],
                     out_stride: tuple[int, ...], blocks: DepthwiseBlocks, epilogue: Epilogue, out_dtype: str) -> str:
    """The kernel ``name(a_ptr, b_ptr, c_ptr, <epilogue tensors>, BLOCK_P, BLOCK_C)`` (input, weight, output:
    the GEMM's reserved names; strides in elements, NCHW order; the weight ``[Cout, 1, KH, KW]``)."""
    if not is_depthwise(conv):
        raise ValueError(f"not a depthwise convolution: {conv.groups} groups over {conv.cin} input channels")
    c = conv
    mult, ohw = c.cout // c.cin, c.pixels
    (h, w), (kh, kw), ow = c.size, c.kernel, c.out[1]
    sxn, sxc, sxh, sxw = x_stride
    swo, _, swh, sww = w_stride
    span = sum((s - 1) * abs(st) for s, st in zip((c.n, c.cin, h, w), x_stride)) + 1
    big = max(span, c.n * c.cout * ohw) >= 2**31
    # the tile's 2-D views: pixels on axis 0 and channels on axis 1 (channels fast), or the other way
    p2, c2 = ("[:, None]", "[None, :]") if blocks.channels_fast else ("[None, :]", "[:, None]")
    body, value = render_expression(epilogue.value, {M_VAR: "co2", N_VAR: "pix2", B_VAR: "img"}, "omask", "    ",
                                    [({B_VAR, N_VAR}, "pix2", "pmask2"), ({M_VAR}, "co2", "cmask2")],
                                    {"acc": "acc"})
    extra = "".join(f"{o.name}_ptr, " for o in epilogue.operands)
    img = "tl.program_id(2).to(tl.int64)" if big else "tl.program_id(2)"
    lines = [
        "@triton.jit",
        f"def {name}(a_ptr, b_ptr, c_ptr, {extra}BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):",
        f"    img = {img}",
        "    pix = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)",
        "    co = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)",
        f"    pmask = pix < {ohw}",
        f"    cmask = co < {c.cout}",
        f"    ci = co // {mult}",
        f"    ih0 = (pix // {ow}) * {c.stride[0]} - {c.padding[0]}",
        f"    iw0 = (pix % {ow}) * {c.stride[1]} - {c.padding[1]}",
        f"    x_base = a_ptr + img * {sxn} + ci{c2} * {sxc}",
        f"    acc = tl.zeros({'(BLOCK_P, BLOCK_C)' if blocks.channels_fast else '(BLOCK_C, BLOCK_P)'}, "
        "dtype=tl.float32)",
    ]
    for i in range(kh):
        for j in range(kw):
            lines += [
                f"    ih = ih0 + {i * c.dilation[0]}",
                f"    iw = iw0 + {j * c.dilation[1]}",
                f"    ok = pmask & (ih >= 0) & (ih < {h}) & (iw >= 0) & (iw < {w})",
                f"    xv = tl.load(x_base + (ih * {sxh} + iw * {sxw}){p2}, mask=ok{p2} & cmask{c2}, other=0.0)",
                f"    wv = tl.load(b_ptr + co * {swo} + {i * swh + j * sww}, mask=cmask, other=0.0)",
                f"    acc += xv * wv{c2}",
            ]
    lines += [
        f"    pix2 = pix{p2}",
        f"    co2 = co{c2}",
        f"    pmask2 = pmask{p2}",
        f"    cmask2 = cmask{c2}",
        "    omask = pmask2 & cmask2",
        *body,
        f"    tl.store(c_ptr + img * {out_stride[0]} + co2 * {out_stride[1]} + {_pixel_offset(ow, out_stride)}, "
        f"{cast_code(value, out_dtype)}, mask=omask)",
    ]
    return "\n".join(lines) + "\n"


def _pixel_offset(ow: int, out_stride: tuple[int, ...]) -> str:
    """The output offset of pixel ``pix2``: ``pix2 * stride`` where rows are dense (provably contiguous)."""
    if out_stride[2] == ow * out_stride[3]:
        return f"pix2 * {out_stride[3]}"
    return f"(pix2 // {ow}) * {out_stride[2]} + (pix2 % {ow}) * {out_stride[3]}"
