"""Run in a subprocess with TRITON_INTERPRET=1: the implicit-GEMM convolution source (1-3 spatial dims,
transposed or not) launched directly at odd sizes, small and default tiles, non-contiguous weights and
channels-last outputs, against ``F.conv{1,2,3}d`` / ``F.conv_transpose{1,2,3}d`` in float64. Prints one
JSON line per case: name, ok, the worst |err| / (1e-4 + 1e-4 |ref|)."""

import importlib.util
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from qimeng.kernels.engine.ir.expr import op
from qimeng.kernels.engine.templates.conv_plan import channels_last_order
from qimeng.kernels.engine.templates.conv_source import Conv, ConvBlocks, conv_source, default_blocks, grid
from qimeng.kernels.engine.templates.epilogue import ACC, Epilogue, Operand, operand_load

sys.path.insert(0, str(Path(__file__).parents[1]))
from case_runner import run_cases  # noqa: E402

SMALL_TILE = ConvBlocks(16, 16, 16)
# name -> (transposed, x shape, cout, kernel, stride, padding, dilation, groups, output_padding)
CASES = {
    "conv1d_stride3_pad_dilation": (False, (2, 5, 23), 7, (4,), (3,), (2,), (2,), 1, None),
    "conv2d_groups_asymmetric": (False, (2, 6, 9, 11), 9, (3, 2), (2, 1), (1, 0), (1, 3), 3, None),
    "conv3d_stride_pad_dilation_groups": (False, (2, 4, 5, 7, 6), 6, (3, 2, 3), (2, 1, 2), (1, 1, 0), (1, 2, 1), 2,
                                          None),
    "conv3d_pointwise": (False, (1, 19, 3, 4, 5), 17, (1, 1, 1), (1, 1, 1), (0, 0, 0), (1, 1, 1), 1, None),
    "conv_transpose1d_s1": (True, (2, 5, 13), 3, (3,), (1,), (1,), (1,), 1, (0,)),
    "conv_transpose1d_s2_d3_pad_outpad": (True, (2, 3, 9), 5, (4,), (2,), (3,), (3,), 1, (1,)),
    "conv_transpose2d_k4_s2": (True, (2, 6, 7, 5), 10, (4, 4), (2, 2), (1, 1), (1, 1), 1, (0, 0)),
    "conv_transpose2d_k3_s2_groups_outpad": (True, (1, 8, 5, 6), 12, (3, 3), (2, 2), (1, 0), (1, 1), 4, (1, 1)),
    "conv_transpose2d_s4_d2_no_tap_phases": (True, (1, 3, 4, 5), 4, (3, 2), (4, 2), (0, 1), (2, 2), 1, (1, 0)),
    "conv_transpose2d_stride_above_kernel": (True, (2, 3, 4, 3), 2, (2, 2), (3, 3), (0, 0), (1, 1), 1, (2, 1)),
    "conv_transpose3d_k4_s2": (True, (1, 4, 3, 4, 3), 5, (4, 4, 4), (2, 2, 2), (1, 1, 1), (1, 1, 1), 1, (0, 0, 0)),
    "conv_transpose3d_mixed_groups": (True, (2, 6, 2, 3, 4), 4, (3, 2, 3), (1, 2, 3), (1, 0, 2), (2, 1, 2), 2,
                                      (0, 1, 1)),
}
FUNCTIONS = {(1, False): F.conv1d, (2, False): F.conv2d, (3, False): F.conv3d,
             (1, True): F.conv_transpose1d, (2, True): F.conv_transpose2d, (3, True): F.conv_transpose3d}


def kernel(source: str, folder: Path, name: str):
    path = folder / f"{name}.py"
    path.write_text(f"import triton\nimport triton.language as tl\n\n{source}")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


def run(name: str, folder: Path) -> dict:
    transposed, x_shape, cout, window, stride, padding, dilation, groups, output_padding = CASES[name]
    nd, cin = len(window), x_shape[1]
    torch.manual_seed(0)
    x = torch.randn(*x_shape)
    w_shape = (cin, cout // groups, *window) if transposed else (cout, cin // groups, *window)
    w = torch.randn(*reversed(w_shape)).permute(*reversed(range(nd + 2)))  # every stride reversed: not contiguous
    bias = torch.randn(cout)
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if transposed:
        args["output_padding"] = output_padding
    ref = FUNCTIONS[nd, transposed](x.double(), w.double(), bias.double(), **args)
    conv = Conv(x_shape[0], cin, x_shape[2:], cout, window, tuple(ref.shape[2:]), stride, padding, dilation, groups,
                transposed)
    order = channels_last_order(nd)
    epilogue = Epilogue(op("add", ACC, operand_load("bias", "float32", 0, 1, 0)), (Operand("bias", "float32"),))
    ratio = 0.0
    for tag, blocks, channels_last in (("small", SMALL_TILE, False), ("default", default_blocks(conv), True)):
        # the default tile stores at channels-last strides (the kernel stores at the strides it is given)
        out = torch.empty(ref.shape)
        if channels_last:
            out = torch.empty([ref.shape[i] for i in order]).permute(*sorted(range(nd + 2), key=order.__getitem__))
        fname = f"k_{name}_{tag}"
        fn = kernel(conv_source(fname, conv, tuple(w.stride()), tuple(out.stride()), "ieee", epilogue, "float32",
                                True), folder, fname)
        fn[grid(conv, blocks)](x.permute(*order).contiguous(), w, out, bias, BLOCK_M=blocks.block_m,
                               BLOCK_N=blocks.block_n, BLOCK_K=blocks.block_k)
        if out.shape != ref.shape:
            return {"name": name, "ok": False, "error": f"shape {tuple(out.shape)}"}
        ratio = max(ratio, float(((out.double() - ref).abs() / (1e-4 + 1e-4 * ref.abs())).max()))
    return {"name": name, "ok": ratio <= 1.0, "ratio": ratio}


if __name__ == "__main__":
    run_cases(run)
