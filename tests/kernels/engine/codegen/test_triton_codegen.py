"""Generated Triton kernels against PyTorch, under the Triton interpreter, across operator families
and reduction strategies (one subprocess for all cases: the interpreter is slow to start)."""

from pathlib import Path

import pytest

HEADER = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n\n"

CASES = {
    "pointwise_broadcast": """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(37))
    def forward(self, x, b):
        y = F.gelu(x * self.w + b, approximate="tanh")
        y = torch.where(x > 0, y, F.elu(x)) + F.silu(x) + F.mish(x) + F.softplus(x) + F.hardswish(x)
        return torch.clamp(y, -2.0, 3.0) + torch.round(x * 3) + torch.sigmoid(x) * F.leaky_relu(x, 0.1)
def get_inputs():
    return [torch.randn(5, 37), torch.randn(5, 1)]
""",
    "dtypes": """
class Model(nn.Module):
    def forward(self, h, f, i):
        return h + f, (i * 0.5 + h.float()), (h > 0).float() * i, (f > i).sum(dim=1), i % 3, torch.remainder(f, -1.5)
def get_inputs():
    return [torch.randn(6, 33).half(), torch.randn(6, 33), torch.randint(-5, 5, (6, 33))]
""",
    "views_pad_cat": """
class Model(nn.Module):
    def forward(self, x):
        t = x.permute(0, 2, 1)[:, 1:, :] * 2
        p = F.pad(x, (1, 2)) + 1
        c = torch.cat([x, x * 3], dim=1)
        return t.sum(dim=1), p, c.transpose(0, 1).contiguous(), x.reshape(3, -1)[:, 2:9].exp()
def get_inputs():
    return [torch.randn(3, 5, 7)]
""",
    "reductions": """
class Model(nn.Module):
    def forward(self, x):
        return (x.sum(dim=(0, 2), keepdim=True), x.amax(dim=1), x.argmax(dim=2), x.argmin(dim=1),
                (x * 0.1 + 1).prod(dim=2), torch.var(x, dim=2, keepdim=True), torch.std(x, dim=(0, 2)),
                x.mean(), torch.logsumexp(x, dim=1), x.max(dim=2)[0] - x.min(dim=0)[0].sum(),
                (x > 0.5).any(dim=1), (x > -2).all(dim=0))
def get_inputs():
    return [torch.randn(3, 19, 21)]
""",
    "softmax_norms": """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(40)
        self.gn = nn.GroupNorm(2, 4)
        self.bn = nn.BatchNorm2d(4)
        self.w = nn.Parameter(torch.rand(40) + 0.5)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-1, 1)
            self.bn.running_var.uniform_(0.5, 2)
    def forward(self, x, img):
        rms = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.w
        return (torch.softmax(x, dim=-1), F.log_softmax(x, dim=1), torch.softmax(img, dim=1), self.ln(x), rms,
                self.gn(img), self.bn(img), F.instance_norm(img))
def get_inputs():
    return [torch.randn(2, 9, 40), torch.randn(2, 4, 5, 3)]
""",
    "losses": """
class Model(nn.Module):
    def forward(self, a, b, target, n):
        return (F.mse_loss(a, b), F.huber_loss(a, b), F.cross_entropy(a, target), F.kl_div(F.log_softmax(a, 1), F.softmax(b, 1), reduction="batchmean"),
                torch.mean(torch.clamp(1 - a * b, min=0)), F.cosine_similarity(a, b).mean(),
                F.triplet_margin_loss(a, b, n))
def get_inputs():
    return [torch.randn(7, 21), torch.randn(7, 21), torch.randint(0, 21, (7,)), torch.randn(7, 21)]
""",
    "indexing": """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(11, 6)
    def forward(self, x, idx, tokens):
        return (torch.gather(x, 1, idx) * 2, torch.index_select(x, 0, idx[:, 0] % 4), self.emb(tokens) + 1,
                F.cross_entropy(x, idx[:, 1]))
def get_inputs():
    return [torch.randn(4, 9), torch.randint(0, 9, (4, 3)), torch.randint(0, 11, (2, 5))]
""",
    "unit_dims": """
class Model(nn.Module):
    def forward(self, x, y):
        return torch.softmax(x / 0.7, dim=-1), x.sum(dim=(0, 2)), y.mean(dim=1, keepdim=True), torch.cumsum(x, 0), y.sum(1)
def get_inputs():
    return [torch.randn(1, 2, 1, 5), torch.randn(3, 1)]
""",
    "scans": """
class Model(nn.Module):
    def forward(self, x):
        return torch.cumsum(x * 2, dim=1), torch.cumprod(1 + 0.01 * x, dim=0), torch.cumsum(x, dim=-1).exp()
def get_inputs():
    return [torch.randn(6, 37)]
""",
    "strided_axis": """
class Model(nn.Module):
    def forward(self, x):
        # reduced/scanned axis strided, rows contiguous: looped tiles of 16 rows by default
        return (x.sum(dim=1, keepdim=True), torch.cumsum(x, dim=1), x.amax(dim=(0, 1), keepdim=True),
                x.argmin(dim=1), torch.softmax(x, dim=1))
def get_inputs():
    return [torch.randn(2, 300, 20)]
""",
    "moments": """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gn = nn.GroupNorm(2, 4)
        self.ln = nn.LayerNorm(3000)
    def forward(self, x, img):
        # long rows with a large mean: the one-pass (Welford) variance must stay accurate
        y = x * 3 + 50
        return y.var(dim=1), torch.std(y, dim=(0, 1), correction=0), self.ln(y), self.gn(img)
def get_inputs():
    return [torch.randn(3, 3000), torch.randn(2, 4, 30, 30)]
""",
    "transposed": """
class Model(nn.Module):
    def forward(self, x, y, z):
        # y and z are read across their contiguous axis: tiled over two axes (masked edges: 37 x 20)
        return x * y.t() + y.t(), torch.relu(z.permute(0, 2, 1)) + 1, z.permute(0, 2, 1) * x[0] + x[:, :1]
def get_inputs():
    return [torch.randn(37, 20), torch.randn(20, 37), torch.randn(3, 20, 37)]
""",
    "row_epilogue_cat": """
class Model(nn.Module):
    def forward(self, x, a, b):
        # a cat of per-row values in a reduction's epilogue: its masked loads stay row-shaped
        return x.sum(dim=2) + torch.cat([a, b], dim=1), F.pad(a, (1, 2)) * x.amax(dim=(1, 2))[:, None]
def get_inputs():
    return [torch.randn(4, 6, 5), torch.randn(4, 3), torch.randn(4, 3)]
""",
    "constants": """
class Model(nn.Module):
    def forward(self, x):
        # outputs that do not depend on the input's values: stores of constants
        return torch.zeros_like(x), torch.ones(3, 5) * 2.5, x * 0 + 1, torch.full_like(x, float("inf")) > 0
def get_inputs():
    return [torch.randn(3, 5)]
""",
    "gemm_epilogue": """
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.rand(24) + 0.5  # a plain tensor attribute (neither parameter nor buffer)
        self.fc = nn.Linear(16, 24)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
    def forward(self, x, img):
        return torch.relu(self.fc(x)) * self.scale - 1, F.gelu(self.conv(img)) + 0.5
def get_inputs():
    return [torch.randn(5, 16), torch.randn(2, 3, 6, 6)]
""",
}

LOOPED = ("reductions", "softmax_norms", "losses", "scans", "indexing", "views_pad_cat", "unit_dims",
          "row_epilogue_cat")
# "strided_axis" is looped by default; its one_pass run covers whole strided rows in registers
RUNS = [(name, "default") for name in CASES] + [(name, "looped") for name in LOOPED] + [
    ("softmax_norms", "online"), ("moments", "online_r64"), ("moments", "looped_r64"), ("scans", "one_pass"), ("strided_axis", "one_pass"), ("losses", "split"), ("reductions", "split")]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, interpreter):
    root = tmp_path_factory.mktemp("codegen")
    paths = {}
    for name, body in CASES.items():
        path = root / f"{name}.py"
        path.write_text(HEADER + body.strip() + "\n\ndef get_init_inputs():\n    return []\n")
        paths[name] = str(path)
    runs = [(paths[name], strategy) for name, strategy in RUNS]
    # two interpreter processes side by side (CI has 2 cores)
    lines = interpreter(Path(__file__).with_name("interp_check.py"), root, runs, processes=2, timeout=500)
    return {(Path(r["path"]).stem, r["strategy"]): r for r in lines}


@pytest.mark.parametrize("name,strategy", RUNS)
def test_generated_kernels_match_pytorch(outcomes, name, strategy):
    result = outcomes[(name, strategy)]
    assert result["ok"], result
    assert result["kernels"] >= 1


def test_gemm_and_conv_stay_vendor_calls_with_fused_epilogues(outcomes):
    result = outcomes[("gemm_epilogue", "default")]
    assert {"addmm", "convolution"} <= set(result["fallbacks"])
    assert result["kernels"] == 2


def test_forced_strategies_are_rendered(outcomes):
    assert "looped" in outcomes[("reductions", "looped")]["strategies"]
    assert "online" in outcomes[("softmax_norms", "online")]["strategies"]
    assert "split" in outcomes[("losses", "split")]["strategies"]
