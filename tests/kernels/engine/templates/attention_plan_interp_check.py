"""Run in a subprocess with TRITON_INTERPRET=1: attention problems (hand-written and
``F.scaled_dot_product_attention``) taken through the expert policy's main line up to the ``templates``
stage, emitted as model_new.py, and run against the problem's own Model in float64 at odd sequence
lengths (the end-to-end optimize tests take causal ones). Prints one JSON line per case: name, ok, the
worst |err| / (atol + rtol |ref|), the units' notes, the kernels and fallbacks left in the plan, the values the units compute as PyTorch calls."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from template_interp_check import run_cases, templated, worst  # noqa: E402

HEADER = "import math\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n\n"
BOOL = "bool"  # an input made as a random boolean mask: row 0 all True, row 1 all False
CASES = {
    "hand_additive_3d_bmm": ("""
class Model(nn.Module):
    def forward(self, q, k, v, bias):
        s = bias + torch.bmm(q, k.transpose(1, 2)) * 0.2
        return torch.bmm(s.softmax(-1), v)
""", [(3, 21, 24), (3, 29, 24), (3, 29, 24), (21, 29)], "strict"),
    "hand_bool_mask_finite_fill": ("""
class Model(nn.Module):
    def forward(self, q, k, v, drop):
        s = (q @ k.transpose(-2, -1)).masked_fill(drop, -1e4) / 4.0
        return s.softmax(-1) @ v
""", [(2, 2, 19, 16), (2, 2, 23, 16), (2, 2, 23, 16), (BOOL, 2, 1, 19, 23)], "strict"),
    "hand_buffer_mask_made_in_forward": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("tril", torch.tril(torch.ones(40, 40)))
    def forward(self, q, k, v):
        seq = q.size(-2)
        s = (q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5
        s = s.masked_fill(self.tril[:seq, :seq] == 0, float("-inf"))
        return torch.softmax(s, dim=-1) @ v
""", [(2, 2, 21, 16), (2, 2, 21, 16), (2, 2, 21, 16)], "strict"),
    "sdpa_gqa_bool_mask": ("""
class Model(nn.Module):
    def forward(self, q, k, v, keep):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=keep, enable_gqa=True, scale=0.3)
""", [(1, 4, 19, 16), (1, 2, 27, 16), (1, 2, 27, 16), (BOOL, 19, 27)], "strict"),
    "sdpa_additive_bf16_policy": ("""
class Model(nn.Module):
    def forward(self, q, k, v, bias):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
""", [(1, 2, 21, 32), (1, 2, 21, 32), (1, 2, 21, 32), (1, 1, 21, 21)], "bf16"),
}


def make(shape) -> torch.Tensor:
    if shape[0] == BOOL:
        keep = torch.rand(*shape[1:]) > 0.4
        keep[..., 0, :], keep[..., 1, :] = True, False
        return keep
    return torch.randn(*shape)


def run(name: str, folder: Path) -> dict:
    body, shapes, precision = CASES[name]
    inputs, mod, plan, units = templated(name, HEADER + body, lambda: [make(s) for s in shapes], precision, folder)
    model = mod.ModelNew()
    ratio = 0.0
    with torch.no_grad():
        refs = mod.Model().double()(*[x.double() if x.is_floating_point() else x for x in inputs])
        mod.Model.forward = None  # the generated path must run: no fallback to the PyTorch forward
        for tf32 in (False, True):  # both branches of the generated forward (PyTorch's TF32 flag)
            torch.backends.cuda.matmul.allow_tf32 = tf32
            ratio = max(ratio, worst(model(*inputs), refs, precision))
    return {"name": name, "ok": ratio <= 1.0 and len(units) > 0, "ratio": ratio,
            "notes": [u.note for u in units], "kernels": len(plan.kernels), "fallbacks": plan.fallbacks,
            "mask_lines": [line.split("=")[0].strip() for u in units for line in u.lines if "torch.ops.aten" in line]}


if __name__ == "__main__":
    run_cases(run)
