"""The implicit-GEMM convolution in a plan: ``aten.convolution`` (1-D, 2-D or 3-D, transposed or not; any
stride, padding, dilation, output padding and groups) and the epilogue kernel after it, as one template unit.

The forward makes the input channels-last (NWC/NHWC/NDHWC: a copy unless it already is) and launches
``conv_source``'s kernel; the bias and a folded epilogue kernel become the epilogue. Under the strict
policy the generated forward follows PyTorch's cuDNN TF32 flag at run time
(``torch.backends.cudnn.allow_tf32``, on by default: PyTorch's own fp32 convolutions then run in TF32,
and so does the template); with the flag off it runs the strict variant (3xTF32 or ieee).
"""

from __future__ import annotations

from qimeng.kernels.engine.capture import Graph, Node, Ref
from qimeng.kernels.engine.ir.expr import Expr, op
from qimeng.kernels.engine.ir.index import contiguous_strides
from qimeng.kernels.engine.lowering_plan import KernelUnit
from qimeng.kernels.engine.codegen.ahead import ahead_line
from qimeng.kernels.engine.templates.conv_source import CONV_PRECISIONS, Conv, conv_source, default_blocks, grid_code
from qimeng.kernels.engine.templates.epilogue import ACC, RESERVED, Operand, operand_load
from qimeng.kernels.engine.templates.fold import fold
from qimeng.kernels.engine.templates.gemm import Problem
from qimeng.kernels.engine.templates.gemm_source import source_hash
from qimeng.kernels.engine.templates.unit import TemplateUnit, by_flag, written_by_kernels

CONV_TARGET = "aten.convolution.default"
FLAG = "torch.backends.cudnn.allow_tf32"
FLAG_VARIANT = "tf32"


def conv_of(graph: Graph, node: Node) -> Conv | str:
    """The convolution ``node`` computes when the template can, else why not."""
    if node.target != CONV_TARGET:
        return f"{node.target} is not a convolution"
    if node.kwargs or len(node.args) != 9 or not all(isinstance(r, Ref) for r in node.args[:2]):
        return "unexpected arguments"
    x_ref, w_ref, bias, stride, padding, dilation, transposed, _, groups = node.args
    x, w = graph.meta(x_ref.name), graph.meta(w_ref.name)
    if len(x.shape) not in (3, 4, 5) or len(stride) != len(x.shape) - 2:
        return f"a {len(x.shape) - 2}-D convolution (1-D to 3-D only)"
    if x.dtype != "float32" or w.dtype != "float32" or (bias is not None and graph.meta(bias.name).dtype != "float32"):
        return "not float32"
    out = node.meta.shape
    conv = Conv(x.shape[0], x.shape[1], tuple(x.shape[2:]), out[1], tuple(w.shape[2:]), tuple(out[2:]),
                tuple(stride), tuple(padding), tuple(dilation), int(groups), bool(transposed))
    if conv.rows * conv.cout == 0 or conv.k == 0:
        return "an empty convolution"
    return conv


def channels_last_order(spatial_dims: int) -> tuple[int, ...]:
    """The permutation of ``[N, C, *spatial]`` that puts the channel last (NWC, NHWC, NDHWC)."""
    return (0, *range(2, spatial_dims + 2), 1)


def conv_problem(conv: Conv) -> Problem:
    """The convolution as the GEMM the precision policy judges: ``groups`` products of rows x Cout/groups."""
    return Problem(conv.rows, conv.cout // conv.groups, conv.k, conv.groups)


def conv_unit(graph: Graph, node: Node, variant: str, policy: str, units: list, device_type: str
              ) -> tuple[TemplateUnit, KernelUnit | None] | str:
    """The convolution template's unit for ``node`` in ``variant`` (and the kernel it folds in)."""
    conv = conv_of(graph, node)
    if isinstance(conv, str):
        return conv
    if variant not in CONV_PRECISIONS:
        return f"no {variant} convolution"
    x_ref, w_ref, bias = node.args[:3]
    contiguous = written_by_kernels(units)
    w_meta = graph.meta(w_ref.name)
    w_stride = contiguous_strides(w_meta.shape) if w_ref.name in contiguous else tuple(w_meta.stride)
    value: Expr = ACC
    operands: tuple[Operand, ...] = ()
    if bias is not None:
        b_meta = graph.meta(bias.name)
        b_stride = 1 if bias.name in contiguous else b_meta.stride[0]
        value = op("add", ACC, operand_load(bias.name, "float32", 0, b_stride, 0))
        operands = (Operand(bias.name, "float32"),)
    if {o.name for o in operands} & RESERVED or w_ref.name in RESERVED:
        return "a tensor is named as the template's own pointers"
    folded = fold(graph, units, node, conv.n, conv.cout, conv.pixels, value, operands)
    extra = [o.name for o in folded.epilogue.operands]
    # a folded kernel's output is contiguous; the convolution's own keeps the strides PyTorch gives it
    alloc_stride = contiguous_strides(folded.shape) if folded.folded is not None else tuple(node.meta.stride)
    out_stride = contiguous_strides(node.meta.shape) if folded.folded is not None else alloc_stride
    blocks = default_blocks(conv)
    run = [variant] + ([FLAG_VARIANT] if policy == "strict" and variant != FLAG_VARIANT else [])
    sources, calls = [], []
    for v in run:
        body = conv_source("KERNEL", conv, w_stride, out_stride, v, folded.epilogue, folded.out_dtype,
                           device_type == "cpu")
        name = f"_qm_conv_{source_hash(body)[:12]}"
        pointers = [graph.meta(x_ref.name).dtype, w_meta.dtype, folded.out_dtype,
                    *(o.dtype for o in folded.epilogue.operands)]
        consts = {"BLOCK_M": blocks.block_m, "BLOCK_N": blocks.block_n, "BLOCK_K": blocks.block_k}
        sources.append(body.replace("def KERNEL(", f"def {name}(", 1) + "\n\n"
                       + ahead_line(name, pointers, consts, blocks.num_warps, blocks.num_stages) + "\n")
        indent = "            " if len(run) > 1 else "        "
        calls.append([f"{indent}{name}[{grid_code(conv, blocks)}](_qm_cx, {w_ref.name}, {folded.output}, "
                      f"{''.join(e + ', ' for e in extra)}BLOCK_M={blocks.block_m}, BLOCK_N={blocks.block_n}, "
                      f"BLOCK_K={blocks.block_k}, num_warps={blocks.num_warps}, num_stages={blocks.num_stages})"])
    lines = [f"        {folded.output} = torch.empty_strided({tuple(folded.shape)!r}, {alloc_stride!r}, "
             f"dtype=torch.{folded.out_dtype}, device=_qm_dev)",
             f"        _qm_cx = {x_ref.name}.permute{channels_last_order(len(conv.size))!r}.contiguous()",
             *by_flag(FLAG, calls)]
    group = (node.name,) + (folded.folded.group if folded.folded is not None else ())
    note = (f"{variant}; implicit GEMM {'x'.join(map(str, conv.kernel))}{' transposed' if conv.transposed else ''}, "
            f"stride {conv.stride}, padding {conv.padding}, dilation {conv.dilation}, groups {conv.groups}; "
            f"{folded.note}")
    return TemplateUnit(node, group, folded.output, "", "\n\n".join(sources), lines, (w_ref.name, *extra), note,
                        tuple(run)), folded.folded
