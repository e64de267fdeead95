"""Run in a subprocess with TRITON_INTERPRET=1: structure the GEMM template fuses, taken through the expert
policy's main line (up to the ``templates`` stage) and emitted as model_new.py: a reduction over N after the
product (the ``[M, N]`` product never written); a product with a diagonal operand (``torch.diag`` of a vector),
which is a broadcast multiply; tril/triu of a product (the tiles past the diagonal run no K loop); softmax,
log-softmax and logsumexp over rows that fit one tile; a matrix times its own transpose (half the tiles computed). Sizes are odd (no multiple of a block). Each case is checked
against the problem's own Model in float64; prints one JSON line per case: name, ok, the worst
|err| / (atol + rtol |ref|), the template units' notes and the number of plain kernels."""

import sys
from pathlib import Path

import torch

from qimeng.kernels.engine.lowering_plan import ExternUnit

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from case_runner import run_cases  # noqa: E402
from template_interp_check import HEADER, templated, worst  # noqa: E402

CASES = {
    "linear_relu_mean_keepdim": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(37, 23)
    def forward(self, x):
        return torch.relu(self.fc(x)).mean(-1, keepdim=True)
""", [(19, 37)]),
    "mm_sum_two_n_tiles": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.sum(x @ w * 0.5, dim=1)
""", [(19, 29), (29, 150)]),
    "bmm_amax": ("""
class Model(nn.Module):
    def forward(self, a, b):
        return torch.bmm(a, b).amax(-1)
""", [(3, 17, 29), (3, 29, 21)]),
    "linear3d_gelu_sum": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(31, 141)
    def forward(self, x):
        return F.gelu(self.fc(x)).sum(-1)
""", [(2, 9, 31)]),
    "mm_max_values": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.max(x @ w, dim=-1).values
""", [(21, 33), (33, 150)]),
    "mm_amin_keepdim": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.amin(x @ w, dim=-1, keepdim=True) + 1.0
""", [(21, 33), (33, 19)]),
    "mm_sum_over_m_kept_apart": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return (x @ w).sum(0)
""", [(21, 33), (33, 19)]),
    "diag_left_matmul_relu": ("""
class Model(nn.Module):
    def forward(self, d, w):
        return torch.relu(torch.diag(d) @ w)
""", [(19,), (19, 23)]),
    "diag_right_batched_and_left_vector": ("""
class Model(nn.Module):
    def forward(self, d, a, v):
        return torch.matmul(a, torch.diag(d)), torch.diag(d) @ v
""", [(23,), (3, 19, 23), (23,)]),
    "diag_returned_and_multiplied": ("""
class Model(nn.Module):
    def forward(self, d, w):
        m = torch.diag(d)
        return torch.mm(w, m) + 1.0, m
""", [(23,), (19, 23)]),
    "tril_square_two_tiles": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.tril(x @ w)
""", [(150, 20), (20, 150)]),
    "triu_bmm_offset_plus_bias": ("""
class Model(nn.Module):
    def forward(self, a, b, bias):
        return torch.triu(torch.bmm(a, b), 1) + bias
""", [(2, 140, 23), (2, 23, 131), (131,)]),
    "tril_negative_diagonal_relu": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.relu(torch.tril(x @ w, -70))
""", [(133, 17), (17, 150)]),
    "tril_and_product_kept_whole": ("""
class Model(nn.Module):
    def forward(self, x, w):
        y = x @ w
        return torch.tril(y) + 0.5 * y
""", [(150, 20), (20, 150)]),
    "linear_softmax": ("""
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(37, 23)
    def forward(self, x):
        return torch.softmax(self.fc(x), dim=-1)
""", [(19, 37)]),
    "mm_scaled_log_softmax_wide": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return F.log_softmax(x @ w / 8.0, dim=1)
""", [(45, 17), (17, 300)]),
    "bmm_logsumexp": ("""
class Model(nn.Module):
    def forward(self, a, b):
        return torch.logsumexp(torch.bmm(a, b), dim=-1)
""", [(3, 17, 29), (3, 29, 21)]),
    "softmax_too_wide_kept_apart": ("""
class Model(nn.Module):
    def forward(self, x, w):
        return torch.softmax(x @ w, dim=-1)
""", [(5, 7), (7, 1100)]),
    "gram_relu_two_tile_rows": ("""
class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x @ x.t() - 1.0)
""", [(150, 21)]),
    "gram_of_columns_and_batched": ("""
class Model(nn.Module):
    def forward(self, x, y):
        return x.t() @ x, torch.matmul(y, y.transpose(1, 2))
""", [(21, 133), (2, 131, 9)]),
    "gram_plus_bias_not_symmetric": ("""
class Model(nn.Module):
    def forward(self, x, bias):
        return x @ x.t() + bias
""", [(131, 21), (131,)]),
}


def run(name: str, folder: Path) -> dict:
    body, shapes = CASES[name]
    inputs, mod, plan, units = templated(name, HEADER + body, lambda: [torch.randn(*s) for s in shapes], "strict",
                                         folder)
    model, ref_model = mod.ModelNew(), mod.Model()
    ref_model.load_state_dict(model.state_dict())
    with torch.no_grad():
        refs = ref_model.double()(*[x.double() for x in inputs])
        mod.Model.forward = None  # the generated path must run: no fallback to the PyTorch forward
        ratio = worst(model(*inputs), refs, "strict")
    return {"name": name, "ok": ratio <= 1.0, "ratio": ratio, "notes": [u.note for u in units],
            "kernels": len(plan.kernels), "calls": [u.node.target for u in plan.units if isinstance(u, ExternUnit)]}


if __name__ == "__main__":
    run_cases(run)
