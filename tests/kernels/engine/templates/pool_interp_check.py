"""Run in a subprocess with TRITON_INTERPRET=1: poolings (max/avg, fixed and adaptive windows, 1-D to 3-D,
stride, padding, dilation, ceil mode, indices, channels-last and unbatched inputs) and the pointwise chain
before them (after a vendor convolution, a cast, a graph input; batch norm in training mode split from its
statistics), taken through the expert policy's main line
up to the ``templates`` stage, emitted as model_new.py and run against the problem's own Model in float64.
Values within 1e-4 (NaN where the reference has NaN), indices equal. Odd sizes: no output a multiple of the
kernel's block. Prints one JSON line per case: name, ok, ratio, the units' notes, kernels left in the plan and the
sizes of what they write."""

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from template_interp_check import run_cases, templated, worst  # noqa: E402

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
TIES, NAN, NEG_INF = "ties", "nan", "-inf"  # inputs: small integers (many equal maxima), some NaN, -inf blocks
CASES = {
    "max1d_dilation_ceil": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.MaxPool1d(3, 2, 1, dilation=2, ceil_mode=True)(x)
""", [(2, 3, 37)]),
    "max1d_indices_ties": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool1d(x, 4, 3, 2, return_indices=True)
""", [(TIES, 3, 5, 29)]),
    "max2d_indices_ties": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 3, 2, 1, return_indices=True)
""", [(TIES, 2, 3, 17, 19)]),
    "max2d_nan_wins": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, (3, 2), (2, 1), (1, 1), return_indices=True)
""", [(NAN, 2, 3, 13, 11)]),
    "max2d_all_neg_inf_windows": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 3, 2, 1, dilation=2, return_indices=True)
""", [(NEG_INF, 2, 2, 15, 13)]),
    "max2d_unbatched_big_window_loop": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 9, 2, 4, return_indices=True, ceil_mode=True)
""", [(TIES, 3, 21, 20)]),
    "max3d_dilation_ceil_indices": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool3d(x, (2, 3, 2), (2, 2, 1), (1, 1, 0), dilation=(1, 2, 1), ceil_mode=True,
                            return_indices=True)
""", [(TIES, 2, 3, 7, 9, 6)]),
    "max3d_channels_last_input": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool3d(x.permute(0, 4, 1, 2, 3), 2, return_indices=True)
""", [(2, 5, 7, 6, 4)]),
    "avg1d_exclude_pad_ceil": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AvgPool1d(4, 3, 2, ceil_mode=True, count_include_pad=False)(x)
""", [(2, 3, 31)]),
    "avg2d_big_window_loop": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 9, 1)
""", [(1, 2, 20, 21)]),
    "avg3d_ceil_padding": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool3d(x, 3, 2, 1, ceil_mode=True)
""", [(2, 3, 9, 8, 7)]),
    "avg3d_exclude_pad": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool3d(x, (2, 3, 2), (1, 2, 2), (1, 1, 0), ceil_mode=True, count_include_pad=False)
""", [(2, 3, 7, 9, 6)]),
    "avg3d_divisor_override": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool3d(x, 2, 2, 1, divisor_override=3)
""", [(1, 3, 7, 6, 5)]),
    "adaptive_avg1d": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveAvgPool1d(6)(x)
""", [(2, 3, 31)]),
    "adaptive_avg2d_to_7x7": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveAvgPool2d(7)(x)
""", [(2, 3, 19, 23)]),
    "adaptive_avg2d_upsampling_windows": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveAvgPool2d((5, 9))(x)
""", [(2, 3, 4, 13)]),
    "adaptive_avg2d_channels_last_input": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveAvgPool2d(5)(x.permute(0, 3, 1, 2))
""", [(2, 11, 13, 6)]),
    "adaptive_avg3d": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveAvgPool3d((2, 3, 4))(x)
""", [(2, 3, 7, 9, 11)]),
    "adaptive_max1d_indices": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveMaxPool1d(5, return_indices=True)(x)
""", [(TIES, 2, 3, 23)]),
    "adaptive_max2d_indices_ties": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveMaxPool2d((5, 4), return_indices=True)(x)
""", [(TIES, 2, 3, 13, 11)]),
    "adaptive_max3d_nan": ("""
class Model(nn.Module):
    def forward(self, x):
        return nn.AdaptiveMaxPool3d(3, return_indices=True)(x)
""", [(NAN, 2, 2, 7, 8, 9)]),
    "half_pool_after_cast": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d((x * 3.0).half(), 3, 2, return_indices=True)
""", [(2, 3, 17, 19)]),
    "fused_pointwise_of_input_then_avg": ("""
class Model(nn.Module):
    def forward(self, x, y):
        return F.avg_pool2d(torch.sigmoid(x) * y + 1.0, 3, 2, 1)
""", [(2, 3, 17, 19), (3, 1, 1)]),
    "fused_conv3d_bn_relu_avgpool": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 5, 3, padding=1)
        self.bn = nn.BatchNorm3d(5).eval()
    def forward(self, x):
        return F.avg_pool3d(torch.relu(self.bn(self.conv(x))), 2, ceil_mode=True)
""", [(2, 3, 7, 6, 5)]),
    "fused_conv_transpose_bias_relu_maxpool": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(3, 4, 2, stride=2)
    def forward(self, x):
        return F.max_pool2d(torch.relu(self.up(x) + 0.5), 3, 2, 1, return_indices=True)
""", [(2, 3, 7, 9)]),
    "conv2d_bn_relu_maxpool_template": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8).eval()
    def forward(self, x):
        return F.max_pool2d(torch.relu(self.bn(self.conv(x))), 3, 2, 1)
""", [(2, 3, 17, 19)]),
    "fused_train_conv_bn_relu_maxpool": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
    def forward(self, x):
        return F.max_pool2d(torch.relu(self.bn(self.conv(x))), 3, 2, 1)
""", [(2, 3, 17, 19)]),
    "fused_train_conv3d_bn_relu_avgpool": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)
    def forward(self, x):
        return F.avg_pool3d(torch.relu(self.bn(self.conv(x))), 2, ceil_mode=True), self.bn.running_mean + 0.0
""", [(2, 3, 5, 7, 6)]),
    "reduction_reading_its_full_size_part_kept_whole": ("""
class Model(nn.Module):
    def forward(self, x):
        y = x * 2.0
        return F.avg_pool2d(y - y.mean(dim=(2, 3), keepdim=True), 2)
""", [(2, 3, 9, 11)]),
    "not_fused_activation_also_returned": ("""
class Model(nn.Module):
    def forward(self, x):
        y = torch.relu(x) * 2.0
        return F.max_pool2d(y, 2), y
""", [(2, 3, 9, 11)]),
}
STRICT = 1e-4


def make(shape) -> torch.Tensor:
    if shape[0] == TIES:
        return torch.randint(-2, 3, shape[1:]).float()
    x = torch.randn(*shape[1:]) if isinstance(shape[0], str) else torch.randn(*shape)
    if shape[0] == NAN:
        x[torch.rand(x.shape) < 0.05] = float("nan")
    if shape[0] == NEG_INF:
        x[..., :6, :] = float("-inf")
    return x


def ratio(outs, refs) -> float:
    """``worst`` where both sides are finite or equal; NaN (and +-inf) must sit where the reference has them."""
    outs = outs if isinstance(outs, tuple) else (outs,)
    refs = refs if isinstance(refs, tuple) else (refs,)
    cleaned_outs, cleaned_refs = [], []
    for out, ref in zip(outs, refs):
        if ref.is_floating_point() and out.shape == ref.shape:
            special = ~torch.isfinite(ref)
            if not torch.equal(out.double()[special].nan_to_num(0.5), ref[special].nan_to_num(0.5)):
                return float("inf")
            out, ref = out.double().masked_fill(special, 0.0), ref.masked_fill(special, 0.0)
        cleaned_outs.append(out)
        cleaned_refs.append(ref)
    return worst(tuple(cleaned_outs), tuple(cleaned_refs), "strict")


def run(name: str, folder: Path) -> dict:
    body, shapes = CASES[name]
    inputs, mod, plan, units = templated(name, HEADER + body, lambda: [make(s) for s in shapes], "strict", folder)
    torch.manual_seed(1)
    model = mod.ModelNew()
    ref_model = mod.Model()
    ref_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        refs = ref_model.double()(*[x.double() for x in inputs])
        mod.Model.forward = None  # the generated path must run: no fallback to the PyTorch forward
        value = ratio(model(*inputs), refs)
    return {"name": name, "ok": value <= 1.0 and len(units) > 0, "ratio": value,
            "notes": [u.note for u in units], "kernels": len(plan.kernels), "fallbacks": plan.fallbacks,
            "kernel_output_sizes": sorted(math.prod(b.shape) for u in plan.kernels for b in u.kernel.outputs)}


if __name__ == "__main__":
    run_cases(run)
