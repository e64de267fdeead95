"""Run in a subprocess with TRITON_INTERPRET=1: problems with GEMMs, convolutions and poolings taken
through the expert policy's main line (up to the ``templates`` stage), emitted as model_new.py, and run
against a float64 oracle (the problem's own Model in float64; indices must be equal). Prints one JSON line
per case: name, ok, the worst |err| / (atol + rtol |ref|), the template units' notes."""

import importlib.util
import math
import sys
from pathlib import Path

import torch

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import Precision, Schedule
from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates

sys.path.insert(0, str(Path(__file__).parents[1]))
from case_runner import run_cases  # noqa: E402

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
CASES = {
    "linear_relu_folded": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(37, 23)
    def forward(self, x):
        return torch.relu(self.fc(x)) * 2.0
""", [(19, 37)], "strict"),
    "linear_decode_small_m": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(301, 23)
    def forward(self, x):
        return torch.tanh(self.fc(x))
""", [(3, 301)], "strict"),
    "linear_decode_stream_tuned": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(301, 23)
    def forward(self, x):
        return torch.tanh(self.fc(x))
""", [(3, 301)], "strict"),
    "mm_decode_gemv_tuned": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.mm(x, w) + 1.0
""", [(1, 203), (203, 45)], "strict"),
    "mm_transposed_a": ("""
class Model(nn.Module):
    def forward(self, x, y):
        return torch.mm(x.t(), y)
""", [(37, 19), (37, 23)], "strict"),
    "bmm_gelu": ("""
class Model(nn.Module):
    def forward(self, a, b):
        return F.gelu(torch.bmm(a, b))
""", [(3, 17, 29), (3, 29, 21)], "strict"),
    "addmm_alpha_beta": ("""
class Model(nn.Module):
    def forward(self, bias, x, w):
        return torch.addmm(bias, x, w, beta=0.5, alpha=2.0)
""", [(21,), (19, 45), (45, 21)], "strict"),
    "addmm_beta_zero_ignores_nan_bias": ("""
class Model(nn.Module):
    def forward(self, bias, x, w):
        return torch.addmm(bias.log(), x, w, beta=0.0)
""", [(21,), (19, 45), (45, 21)], "strict"),
    "product_read_twice": ("""
class Model(nn.Module):
    def forward(self, x, w):
        y = x @ w
        return y, torch.sigmoid(y) + y
""", [(19, 29), (29, 23)], "strict"),
    "narrow_n_ieee": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.tanh(x @ w)
""", [(33, 40), (40, 7)], "strict"),
    "linear_3d_residual": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(37, 37)
    def forward(self, x):
        return self.fc(x) + x
""", [(2, 9, 37)], "strict"),
    "linear_bf16": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(37, 23)
    def forward(self, x):
        return torch.sigmoid(self.fc(x))
""", [(19, 37)], "bf16"),
    "conv_bias_relu_folded": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 20, 3, stride=2, padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x)) * 0.5
""", [(2, 3, 17, 19)], "strict"),
    "conv_groups_dilation_no_bias": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 9, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=3, bias=False)
    def forward(self, x):
        return self.conv(x)
""", [(2, 6, 11, 13)], "strict"),
    "conv_depthwise_then_pool": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(5, 5, 3, padding=1, groups=5)
    def forward(self, x):
        return F.max_pool2d(torch.sigmoid(self.conv(x)), 2, ceil_mode=True)
""", [(3, 5, 9, 7)], "strict"),
    "conv_channels_last_input_bf16": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 24, 1)
    def forward(self, x):
        return self.conv(x.permute(0, 3, 1, 2)) + 1.0
""", [(2, 7, 5, 4)], "bf16"),
    "conv1d_stride_dilation_gelu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 18, 5, stride=2, padding=3, dilation=2, groups=2)
    def forward(self, x):
        return F.gelu(self.conv(x))
""", [(3, 6, 29)], "strict"),
    "conv3d_bias_relu_folded": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 20, 3, stride=(1, 2, 2), padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x)) * 0.5
""", [(2, 3, 5, 9, 7)], "strict"),
    "conv3d_groups_dilation_no_bias": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(4, 6, (2, 3, 2), stride=(2, 1, 1), padding=(0, 2, 1), dilation=(1, 2, 1), groups=2,
                              bias=False)
    def forward(self, x):
        return self.conv(x)
""", [(1, 4, 6, 7, 5)], "strict"),
    "conv3d_channels_last_input_tf32": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(5, 17, (1, 3, 3), padding=(0, 1, 1))
    def forward(self, x):
        return self.conv(x.permute(0, 4, 1, 2, 3))
""", [(1, 3, 6, 5, 5)], "tf32"),
    "conv_transpose2d_stride2_bias_tanh": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(5, 20, 4, stride=2, padding=1)
    def forward(self, x):
        return torch.tanh(self.up(x))
""", [(2, 5, 7, 6)], "strict"),
    "conv_transpose2d_groups_dilation_output_padding": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(6, 9, 3, stride=(2, 3), padding=(1, 2), output_padding=(1, 2), dilation=(2, 1),
                                     groups=3, bias=False)
    def forward(self, x):
        return self.up(x)
""", [(2, 6, 5, 4)], "strict"),
    "conv_transpose1d_stride3_dilation_gelu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(4, 6, 5, stride=3, padding=2, output_padding=1, dilation=2)
    def forward(self, x):
        return F.gelu(self.up(x))
""", [(3, 4, 11)], "strict"),
    "conv_transpose3d_output_padding_bf16": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose3d(3, 4, 3, stride=2, padding=1, output_padding=(1, 0, 1))
    def forward(self, x):
        return self.up(x) + 1.0
""", [(1, 3, 3, 4, 5)], "bf16"),
    "conv3d_residual_reads_the_input": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(6, 6, 3, padding=1)
    def forward(self, x):
        return self.conv(x) + x
""", [(1, 6, 3, 5, 4)], "strict"),
    "dw_odd_stride2_bias_relu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6)
    def forward(self, x):
        return torch.relu(self.conv(x))
""", [(2, 6, 45, 27)], "strict"),
    "dw_dilation2_multiplier2_no_bias": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, (3, 2), padding=(2, 1), dilation=2, groups=3, bias=False)
    def forward(self, x):
        return self.conv(x)
""", [(2, 3, 9, 14)], "strict"),
    "dw_channels_last_multiplier2_bias_relu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(12, 24, 3, padding=1, groups=12)
    def forward(self, x):
        return torch.relu(self.conv(x.permute(0, 3, 1, 2)))
""", [(2, 11, 13, 12)], "strict"),
    "dw_channels_last_kept_layout": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(5, 5, 3, stride=2, dilation=2, padding=2, groups=5)
    def forward(self, x):
        return self.conv(x.permute(0, 3, 1, 2))
""", [(1, 9, 8, 5)], "tf32"),
    "dw_conv1d_stride_dilation_gelu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(6, 12, 5, stride=2, padding=2, dilation=2, groups=6)
    def forward(self, x):
        return F.gelu(self.conv(x))
""", [(3, 6, 29)], "strict"),
    "dw_residual_reads_the_input": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    def forward(self, w):
        return self.conv(w) + w
""", [(1, 6, 7, 5)], "strict"),
    "dw_separable_block": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False)
        self.pw = nn.Conv2d(8, 16, 1, bias=False)
        self.bn = nn.BatchNorm2d(16).eval()
    def forward(self, x):
        return torch.relu(self.bn(self.pw(self.dw(x))))
""", [(2, 8, 11, 9)], "strict"),
    "max_pool_ceil_padding": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 3, 2, 1, ceil_mode=True)
""", [(2, 3, 17, 19)], "strict"),
    "max_pool_dilation_indices_strided_input": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x.transpose(2, 3), (3, 2), (1, 2), (1, 1), dilation=(2, 1), return_indices=True)
""", [(2, 3, 13, 11)], "strict"),
    "max_pool_channels_last_input": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x.permute(0, 3, 1, 2), 2, return_indices=True)
""", [(2, 9, 7, 5)], "strict"),
    "avg_pool_ceil_include_pad": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
""", [(2, 3, 16, 13)], "strict"),
    "avg_pool_exclude_pad": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, (2, 3), (2, 2), (1, 1), ceil_mode=True, count_include_pad=False)
""", [(1, 4, 9, 14)], "strict"),
    "avg_pool_divisor": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 3, 3, divisor_override=5) * 2.0
""", [(2, 2, 11, 10)], "strict"),
}
STRICT = 1e-4
# cases run at a tuning step of ``tuning.template_trials`` instead of the default: the first to a config
# of this small-M kernel (``GemmConfig.gemv``: 2 the streaming one, 1 the other)
TUNED = {"linear_decode_stream_tuned": 2, "mm_decode_gemv_tuned": 1}


def main_line(graph, precision: str):
    return ExpertPolicy().main_line(graph, Precision(precision).apply(Schedule(), {}), through="templates")


def worst(outs, refs, precision: str) -> float:
    outs = outs if isinstance(outs, tuple) else (outs,)
    refs = refs if isinstance(refs, tuple) else (refs,)
    ratios = []
    for out, ref in zip(outs, refs):
        if out.shape != ref.shape:
            return math.inf
        if not ref.is_floating_point():  # indices: exactly PyTorch's
            ratios.append(0.0 if torch.equal(out, ref) else math.inf)
        elif precision == "bf16":  # operands rounded to 8 bits: ||out - ref|| / ||ref|| against 1e-2
            ratios.append(float((out.double() - ref).norm() / ref.norm()) / 1e-2)
        else:
            ratios.append(float(((out.double() - ref).abs() / (STRICT + STRICT * ref.abs())).max()))
    return max(ratios)


def tuned_to(graph, plan, schedule, gemv: int):
    """``schedule`` with the first tuning step to a config of small-M kernel ``gemv`` applied."""
    from qimeng.kernels.engine.tuning import template_trials

    step = next(s for _, _, steps in template_trials(graph, plan, schedule, "cpu") for s in steps
                if s.config[-1] == gemv)
    return step.apply(schedule, {})


def templated(name: str, source: str, make_inputs, precision: str, folder: Path, gemv: int | None = None):
    """(inputs, the emitted model_new.py imported, its plan, its template units): the case's Model
    captured on ``make_inputs()`` (seed 0), the expert's main line through the templates stage (and with
    ``gemv``, the first tuning step to that small-M kernel)."""
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)
    torch.manual_seed(0)
    inputs = make_inputs()
    graph = capture(namespace["Model"](), inputs)
    schedule = main_line(graph, precision)
    plan = with_templates(graph, build_plan(graph, schedule), schedule, "cpu")
    if gemv is not None:
        schedule = tuned_to(graph, plan, schedule, gemv)
        plan = with_templates(graph, build_plan(graph, schedule), schedule, "cpu")
    path = folder / f"{name}.py"
    path.write_text(emit_model_new(source, namespace["Model"], graph, plan, "cpu", precision))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return inputs, mod, plan, [u for u in plan.units if isinstance(u, TemplateUnit)]


def run(name: str, folder: Path) -> dict:
    body, shapes, precision = CASES[name]
    inputs, mod, plan, units = templated(name, HEADER + body, lambda: [torch.randn(*s) for s in shapes], precision,
                                         folder, TUNED.get(name))
    torch.manual_seed(1)
    model = mod.ModelNew()
    ref_model = mod.Model()
    ref_model.load_state_dict(model.state_dict())
    ref_model = ref_model.double()
    ratio = 0.0
    with torch.no_grad():
        refs = ref_model(*[x.double() for x in inputs])
        mod.Model.forward = None  # the generated path must run: no fallback to the PyTorch forward
        for tf32 in (False, True):  # both branches of the generated forward (PyTorch's TF32 flags)
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            ratio = max(ratio, worst(model(*inputs), refs, precision))
    ran = name not in TUNED or any(config[-1] == TUNED[name] for u in units for _, config in u.configs)
    return {"name": name, "ok": ratio <= 1.0 and len(units) > 0 and ran, "ratio": ratio,
            "notes": [u.note for u in units], "kernels": len(plan.kernels)}


if __name__ == "__main__":
    run_cases(run)
