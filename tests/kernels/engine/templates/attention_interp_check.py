"""Run in a subprocess with TRITON_INTERPRET=1: the attention template on small, odd shapes against
``F.scaled_dot_product_attention`` in float64 on the CPU. Prints one JSON line per case."""

import json
import math
import sys

import torch
import torch.nn.functional as F

from qimeng.kernels.engine.templates.attention import AttentionConfig, attention, curated_configs

SMALL = AttentionConfig(16, 16, 4, 1)


def oracle(q, k, v, mask=None, causal=False, scale=None):
    group = q.shape[1] // k.shape[1]
    k64, v64 = (t.double().repeat_interleave(group, dim=1) for t in (k, v))
    m64 = mask if mask is None or mask.dtype == torch.bool else mask.double()
    if scale is not None and scale < 0:  # PyTorch's math path scales q and k by sqrt(scale): written out
        s = (q.double() @ k64.transpose(-2, -1)) * scale
        if causal:
            s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
        return s.softmax(-1) @ v64
    return F.scaled_dot_product_attention(q.double(), k64, v64, attn_mask=m64, is_causal=causal, scale=scale)


def ratio(out, ref, tol):
    if out.shape != ref.shape or out.isnan().any():
        return math.inf
    return float(((out.double() - ref).abs() / (tol + tol * ref.abs())).max())


def case(b, h, hkv, m, n, d, precision="strict", causal=False, mask=None, dtype=torch.float32, scale=None,
         transpose=False, config=SMALL):
    q = torch.randn(b, h, m, d).to(dtype)
    k, v = torch.randn(b, hkv, n, d).to(dtype), torch.randn(b, hkv, n, d).to(dtype)
    if transpose:  # [B, N, H, D] storage, as a projection's output viewed per head
        q, k, v = (t.transpose(1, 2).contiguous().transpose(1, 2) for t in (q, k, v))
    out = attention(q, k, v, mask=mask, causal=causal, scale=scale, precision=precision, config=config)
    tol = 2e-2 if precision == "bf16" or dtype == torch.bfloat16 else 1e-4
    return ratio(out, oracle(q, k, v, mask, causal, scale), tol) if out.dtype == dtype else math.inf


def bool_mask(m, n, batch_heads=()):
    keep = torch.rand(*batch_heads, m, n) > 0.4
    keep[..., 1, :] = False  # a row that sees no key: 0, as PyTorch
    return keep


def additive_mask(b, m, n):
    add = torch.randn(b, 1, m, n)
    add[:, :, 2, :] = float("-inf")
    add[:, :, 3, ::2] = float("-inf")
    return add


CASES = {
    "plain_d32": lambda: case(2, 3, 3, 37, 45, 32),
    "causal_square_d64": lambda: case(1, 2, 2, 40, 40, 64, causal=True),
    "causal_rect": lambda: case(1, 2, 2, 20, 33, 32, causal=True),  # top-left, as is_causal
    "bool_mask_broadcast": lambda: case(2, 2, 2, 19, 27, 32, mask=bool_mask(19, 27)),
    "additive_mask": lambda: case(2, 2, 2, 19, 27, 32, mask=additive_mask(2, 19, 27)),
    "gqa_d80": lambda: case(1, 4, 2, 21, 30, 80),
    "d256_scale": lambda: case(1, 1, 1, 17, 20, 256, scale=0.3),
    "ieee_strided": lambda: case(2, 2, 1, 25, 18, 48, precision="ieee", transpose=True),
    "tf32": lambda: case(1, 2, 2, 18, 22, 32, precision="tf32"),
    "bf16_precision": lambda: case(1, 2, 2, 23, 31, 64, precision="bf16", causal=True),
    "bf16_tensors": lambda: case(1, 2, 2, 23, 31, 64, precision="bf16", dtype=torch.bfloat16),
    "negative_scale": lambda: case(1, 2, 2, 20, 37, 32, scale=-0.4),  # the row maximum of the raw scores is no use
    "negative_scale_bf16_causal": lambda: case(1, 1, 1, 37, 37, 64, precision="bf16", causal=True, scale=-0.2),
    **{f"tuned_bf16_d64_{c.block_m}x{c.block_n}w{c.num_warps}s{c.num_stages}_{kind}": (
        lambda c=c, kind=kind: case(1, 1, 1, 150, 270, 64, precision="bf16", dtype=torch.bfloat16,
                                    causal=kind == "causal", config=c))
       for c in curated_configs(64, "bf16") for kind in ("causal", "full")},
    **{f"tuned_strict_d128_{c.block_m}x{c.block_n}w{c.num_warps}s{c.num_stages}": (
        lambda c=c: case(1, 1, 1, 70, 150, 128, causal=True, config=c)) for c in curated_configs(128, "strict")},
    "three_d": lambda: ratio(attention(*(x := [torch.randn(3, 17, 32) for _ in range(3)]), config=SMALL),
                             oracle(*(t.unsqueeze(1) for t in x)).squeeze(1), 1e-4),
}

if __name__ == "__main__":
    torch.manual_seed(0)
    for name in json.loads(sys.argv[1]):
        try:
            value = CASES[name]()
            print(json.dumps({"name": name, "ok": value <= 1.0, "ratio": value}), flush=True)
        except Exception as exc:  # reported per case: the test names the failing one
            print(json.dumps({"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}),
                  flush=True)
