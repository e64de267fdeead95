"""Run in a subprocess with TRITON_INTERPRET=1: problems with 2-D convolutions taken through the expert
policy's main line up to the ``layout`` stage (``ChannelsLast``), emitted as model_new.py and run against a
float64 oracle (the problem's own Model in float64, running statistics included). Every aten.convolution
the generated forward dispatches is recorded (are its input, weight and output channels-last?). Prints
one JSON line per case."""

import copy
import importlib.util
import sys
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.emit import emit_model_new
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import Precision, ReductionStrategy, Schedule

sys.path.insert(0, str(Path(__file__).parent))
from case_runner import run_cases  # noqa: E402

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
CONV_BIAS_RELU = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=True)
    def forward(self, x):
        return torch.relu(self.conv(x))
"""
CONV_BN_RELU = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))
"""
TWO_CONVS = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(6, 5, 3, stride=2, padding=1, bias=False)
    def forward(self, x):
        y = torch.relu(self.conv1(x))
        return torch.sigmoid(self.conv2(y)) + 1.0{}
"""
CONV_BN_RELU_CONV = """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 4, 1, bias=True)
    def forward(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(x))))
"""
# name: (source, input shapes, training mode, reduction strategy forced on the batch norm kernel)
CASES = {
    "conv_bias_relu": (CONV_BIAS_RELU, [(2, 4, 11, 13)], False, None),
    "conv_bn_relu_train": (CONV_BN_RELU, [(2, 4, 10, 9)], True, None),
    "conv_bn_relu_train_split": (CONV_BN_RELU, [(3, 4, 37, 29)], True, "split"),
    "conv_bn_relu_conv_train_split": (CONV_BN_RELU_CONV, [(3, 3, 37, 29)], True, "split"),
    "two_convs": (TWO_CONVS.format(""), [(2, 3, 9, 10)], False, None),
    "two_convs_intermediate_returned": (TWO_CONVS.format(", y"), [(2, 3, 9, 10)], False, None),
}
STRICT = 1e-4


class ConvLog(TorchDispatchMode):
    """Records (input, weight, output) channels-last flags of every aten.convolution."""

    def __init__(self):
        super().__init__()
        self.calls: list[list[bool]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.convolution.default:
            cl = torch.channels_last
            self.calls.append([args[0].is_contiguous(memory_format=cl), args[1].is_contiguous(memory_format=cl),
                               out.is_contiguous(memory_format=cl)])
        return out


def main_line(graph, precision: str = "strict"):
    return ExpertPolicy().main_line(graph, Precision(precision).apply(Schedule(), {}), through="layout")


def ratio(out: torch.Tensor, ref: torch.Tensor) -> float:
    if out.shape != ref.shape:
        return float("inf")
    return float(((out.double() - ref).abs() / (STRICT + STRICT * ref.abs())).max())


def run(name: str, folder: Path) -> dict:
    body, shapes, training, strategy = CASES[name]
    source = HEADER + body
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)
    torch.manual_seed(0)
    inputs = [torch.randn(*s) for s in shapes]
    graph = capture(namespace["Model"]().train(training), inputs)
    schedule = main_line(graph)
    plan = build_plan(graph, schedule)
    if strategy is not None:
        head = next(u.group[0] for u in plan.kernels if u.kernel.kind == "reduction")
        schedule = ReductionStrategy(head, strategy).apply(schedule, {n.name: i for i, n in enumerate(graph.nodes)})
        plan = build_plan(graph, schedule)
    path = folder / f"{name}.py"
    path.write_text(emit_model_new(source, namespace["Model"], graph, plan, "cpu", "strict"))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(1)
    model = mod.ModelNew().train(training)
    ref_model = mod.Model().train(training)
    ref_model.load_state_dict(model.state_dict())
    ref_model = ref_model.double()
    worst = 0.0
    with torch.no_grad():
        refs = ref_model(*[x.double() for x in inputs])
        ref_eager = mod.Model.forward(copy.deepcopy(ref_model).float(), *inputs)  # the reference's own layout
        forward, mod.Model.forward = mod.Model.forward, None  # the generated path must run: no fallback
        log = ConvLog()
        with log:
            outs = model(*inputs)
        mod.Model.forward = forward
    outs = outs if isinstance(outs, tuple) else (outs,)
    refs = refs if isinstance(refs, tuple) else (refs,)
    ref_eager = ref_eager if isinstance(ref_eager, tuple) else (ref_eager,)
    for out, ref in zip(outs, refs):
        worst = max(worst, ratio(out, ref))
    for (key, buf), (_, ref_buf) in zip(model.state_dict().items(), ref_model.state_dict().items()):
        if buf.is_floating_point():  # running statistics after one call
            worst = max(worst, ratio(buf, ref_buf))
    cached = getattr(model, "_qm_nhwc_weights", {})
    return {"name": name, "ok": worst <= 1.0, "ratio": worst, "convs": log.calls,
            "channels_last": sorted(plan.channels_last),
            "nhwc": {k: list(v) for k, v in plan.strides.items()},
            "out_strides": [list(o.stride()) for o in outs], "ref_strides": [list(r.stride()) for r in ref_eager],
            "cached_weights": sorted(cached),
            "cached_channels_last": all(w.is_contiguous(memory_format=torch.channels_last) for _, w in cached.values()),
            "strategies": [u.rendered.config.strategy for u in plan.kernels],
            "kernel_strides": {b.name: list(b.stride) for u in plan.kernels for b in u.kernel.inputs + u.kernel.outputs}}


if __name__ == "__main__":
    run_cases(run)
