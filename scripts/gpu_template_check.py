#!/usr/bin/env python3
"""GPU check of the templates in model_new.py (issue 11): GEMM, convolution (implicit GEMM: 2-D, 3-D, transposed;
direct depthwise) and pooling units against the vendor path, with their errors.

For each case (a small module at benchmark scale), the expert policy's main line up to the ``templates``
stage is emitted as model_new.py (as ``qimeng optimize`` writes it) and imported; then, under PyTorch's
default flags and with its TF32 flags off (strict), it prints and records: the template forward's and
eager's milliseconds (CUDA events, median of 20 after warm-up), torch.compile's when ``--compile``, and
the largest |out - ref| / (1e-4 + 1e-4 |ref|) of the template against eager under the same flags and
against a float64 CPU reference. A ratio <= 1 meets the strict tolerance.

    python3 scripts/gpu_template_check.py [--case NAME ...] [--compile] [--device cuda|cpu]

``--device cpu`` runs the same under the Triton interpreter at small sizes (a smoke test: no timing
meaning). Writes templates.json under $OUT when it is set.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
# name -> (module source, input shapes at full size, input shapes under the interpreter)
CASES = {
    "linear_gelu_4096": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4096, 4096)
    def forward(self, x):
        return F.gelu(self.fc(x))
""", [(4096, 4096)], [(32, 4096)]),
    "linear_decode_1x4096_silu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4096, 4096)
    def forward(self, x):
        return F.silu(self.fc(x))
""", [(1, 4096)], [(1, 4096)]),
    "bmm_16x2048x1024x2048": ("""
class Model(nn.Module):
    def forward(self, a, b):
        return torch.bmm(a, b)
""", [(16, 2048, 1024), (16, 1024, 2048)], [(2, 32, 64), (2, 64, 32)]),
    "conv3x3_resnet_64ch_bias_relu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3, padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x))
""", [(32, 64, 56, 56)], [(1, 64, 6, 6)]),
    "conv3x3_stride2_256ch": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(128, 256, 3, stride=2, padding=1, bias=False)
    def forward(self, x):
        return self.conv(x)
""", [(32, 128, 56, 56)], [(1, 128, 6, 6)]),
    "conv1x1_hardswish": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(256, 512, 1)
    def forward(self, x):
        return F.hardswish(self.conv(x))
""", [(32, 256, 28, 28)], [(1, 256, 4, 4)]),
    "conv3d_3x3x3_video_bias_relu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(64, 64, 3, padding=1)
    def forward(self, x):
        return torch.relu(self.conv(x))
""", [(8, 64, 16, 56, 56)], [(1, 64, 3, 4, 5)]),
    "conv_transpose2d_4x4_s2_bias_gelu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
    def forward(self, x):
        return F.gelu(self.up(x))
""", [(32, 128, 56, 56)], [(1, 128, 5, 4)]),
    "conv_transpose3d_4x4x4_s2": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose3d(64, 32, 4, stride=2, padding=1, bias=False)
    def forward(self, x):
        return self.up(x)
""", [(16, 64, 8, 28, 28)], [(1, 64, 2, 3, 3)]),
    "conv_transpose2d_groups4_dilation3": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(256, 256, 3, stride=2, padding=3, output_padding=1, dilation=3, groups=4)
    def forward(self, x):
        return self.up(x)
""", [(32, 256, 32, 32)], [(1, 256, 4, 3)]),
    "depthwise3x3_gelu": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(256, 256, 3, padding=1, groups=256)
    def forward(self, x):
        return F.gelu(self.conv(x))
""", [(32, 256, 56, 56)], [(1, 256, 6, 6)]),
    "depthwise3x3_bias_relu_112": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(256, 256, 3, padding=1, groups=256)
    def forward(self, x):
        return torch.relu(self.conv(x))
""", [(64, 256, 112, 112)], [(1, 256, 13, 11)]),
    "depthwise3x3_s2_x2_channels_last": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(128, 256, 3, stride=2, padding=1, groups=128, bias=False)
    def forward(self, x):
        return self.conv(x.permute(0, 3, 1, 2))
""", [(64, 112, 112, 128)], [(1, 9, 7, 128)]),
    "maxpool3x3_s2": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool2d(x, 3, 2, 1)
""", [(32, 64, 112, 112)], [(1, 4, 9, 9)]),
    "avgpool2x2_ceil": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 2, ceil_mode=True)
""", [(32, 256, 55, 55)], [(1, 4, 9, 9)]),
    "maxpool3d_3x3x3_s2": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.max_pool3d(x, 3, 2, 1)
""", [(16, 32, 64, 64, 64)], [(1, 2, 7, 7, 7)]),
    "adaptive_avgpool_7x7": ("""
class Model(nn.Module):
    def forward(self, x):
        return F.adaptive_avg_pool2d(x, 7)
""", [(64, 256, 56, 56)], [(1, 4, 13, 11)]),
    "conv3d_relu_avgpool_fused": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(16, 32, 3, padding=1)
    def forward(self, x):
        return F.avg_pool3d(torch.relu(self.conv(x)), 2)
""", [(16, 16, 8, 112, 112)], [(1, 16, 5, 9, 9)]),
}


def build(name: str, device: str, folder: Path):
    """(template module's ModelNew instance, Model instance with the same weights, inputs, unit notes)."""
    import torch

    from qimeng.kernels.engine.capture import capture
    from qimeng.kernels.engine.emit import emit_model_new
    from qimeng.kernels.engine.lowering_plan import build_plan
    from qimeng.kernels.engine.policies.expert import ExpertPolicy
    from qimeng.kernels.engine.steps import Schedule
    from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates

    body, full, small = CASES[name]
    source = HEADER + body
    namespace: dict = {}
    exec(compile(source, name, "exec"), namespace)
    shapes = small if device == "cpu" else full
    graph = capture(namespace["Model"]().to("meta"), [torch.empty(*s, device="meta") for s in shapes])
    schedule = ExpertPolicy().main_line(graph, Schedule(), through="templates")
    plan = with_templates(graph, build_plan(graph, schedule), schedule, device)
    path = folder / f"{name}.py"
    path.write_text(emit_model_new(source, namespace["Model"], graph, plan, device, "strict"))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    new = mod.ModelNew().to(device)
    ref = mod.Model().to(device)
    ref.load_state_dict(new.state_dict())
    inputs = [torch.randn(*s, device=device) for s in shapes]
    return new, ref, inputs, [u.note for u in plan.units if isinstance(u, TemplateUnit)]


def ratio(out, ref) -> float:
    """The largest |out - ref| / (1e-4 + 1e-4 |ref|), on the CPU (the float64 reference lives there)."""
    out, ref = out.double().cpu(), ref.double().cpu()
    return float(((out - ref).abs() / (1e-4 + 1e-4 * ref.abs())).max())


def timed(fn, device: str) -> float | None:
    import torch

    if device != "cuda":
        return None
    for _ in range(3):
        fn()
    times = []
    for _ in range(20):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def check(name: str, device: str, compile_too: bool, folder: Path) -> list[dict]:
    import copy

    import torch

    new, ref, inputs, notes = build(name, device, folder)
    ref64 = copy.deepcopy(ref).double().cpu()
    rows = []
    with torch.no_grad():
        exact = ref64(*[x.double().cpu() for x in inputs])
        for flags in ("default", "strict"):
            tf32 = flags == "default"
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = False, tf32
            ours, eager = new(*inputs), ref(*inputs)
            row = {"case": name, "flags": flags, "notes": notes, "vs_eager": ratio(ours, eager),
                   "vs_float64": ratio(ours, exact), "eager_vs_float64": ratio(eager, exact),
                   "ours_ms": timed(lambda: new(*inputs), device), "eager_ms": timed(lambda: ref(*inputs), device)}
            if compile_too and device == "cuda":
                compiled = torch.compile(ref)
                row["compile_ms"] = timed(lambda: compiled(*inputs), device)
            rows.append(row)
            print(json.dumps(row), flush=True)
    torch.backends.cudnn.allow_tf32 = True
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", default=[], choices=sorted(CASES))
    parser.add_argument("--compile", action="store_true", help="time torch.compile too")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args()
    if args.device == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device (use --device cpu for the interpreter smoke test)", file=sys.stderr)
        return 2
    rows, started = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.case or list(CASES):
            try:
                rows += check(name, args.device, args.compile, Path(tmp))
            except Exception as exc:  # one failing case must not end the table
                rows.append({"case": name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                print(json.dumps(rows[-1]), flush=True)
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "templates.json").write_text(json.dumps(rows, indent=1))
    print(f"{len(rows)} rows in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
