"""FlashAttention-style scaled dot-product attention (forward): one pass over K/V with an online softmax.

``attention(q, k, v, mask=None, causal=False, scale=None, precision="strict")`` computes
``softmax(q @ k^T * scale + mask) @ v`` as ``F.scaled_dot_product_attention`` does (dropout 0):

- ``q [B, H, M, D]``, ``k``/``v`` ``[B, H_kv, N, D]`` (or 3-D ``[B, M, D]``), any strides; ``H_kv`` divides
  ``H`` (grouped-query heads: query head ``h`` reads key/value head ``h // (H / H_kv)``, PyTorch's
  ``enable_gqa``); head dims up to 256 (padded to a power of two in registers, masked in memory);
- ``causal``: key ``j`` is seen by query ``i`` when ``j <= i`` (top-left, as ``is_causal``);
- ``mask``: boolean (True takes part) or additive, broadcastable to ``[B, H, M, N]`` (strides of 0);
- a row that sees no key gives 0, as PyTorch's math path does (its ``_safe_softmax``);
- precisions: ``strict`` (both products 3xTF32; every product of one K/V block starts from zero and
  joins the running sums by fp32 adds), ``ieee``, ``tf32``, ``bf16`` (operands and probabilities rounded
  to bfloat16, fp32 accumulation). The output has ``q``'s dtype.

Under the Triton interpreter a bfloat16 ``tl.dot`` multiplies raw bits, so there the bf16 products run
on bf16-rounded operands widened to fp32 (the same arithmetic); TF32 rounding is not emulated there.
The kernels and their launch routine are ``attention_source``'s text, the one ``model_new.py`` inlines.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import sys
from dataclasses import dataclass

import torch

from qimeng.kernels.engine.templates.attention_source import KERNELS, RUNTIME
from qimeng.settings import Settings

SOURCE_HEADER = "import torch\nimport triton\nimport triton.language as tl\n\n"
_MODULE = None
PRECISIONS = {"strict": "tf32x3", "ieee": "ieee", "tf32": "tf32", "bf16": "bf16"}


@dataclass(frozen=True)
class AttentionConfig:
    block_m: int = 128
    block_n: int = 64
    num_warps: int = 8
    num_stages: int = 2

    def launch(self) -> tuple[int, int, int, int]:
        """The tuple ``_qm_attn_run`` takes."""
        return (self.block_m, self.block_n, self.num_warps, self.num_stages)

    def key(self) -> str:
        return f"{self.block_m}x{self.block_n} w{self.num_warps} st{self.num_stages}"


def default_config(head_dim: int, precision: str) -> AttentionConfig:
    """Smaller tiles where fp32 operands or wide heads would not fit registers and shared memory."""
    if head_dim > 128:
        return AttentionConfig(64, 32, 8, 2)
    if precision == "bf16":
        return AttentionConfig(128, 64, 8, 3)
    # fp32 at head dim 128 on the H200 (4 x 16 heads x 4096): 32x64 11.8 ms, 128x64 one stage 12.7, 64x64 18.1
    return AttentionConfig(32, 64, 4, 2) if head_dim > 64 else AttentionConfig(128, 64, 8, 2)


# The tiles tuning measures beside the default, per operand width (fp32 operands, 3xTF32, need about twice
# bf16's registers and shared memory). bf16: FlashAttention-2's 128-row blocks on 8 warps (two warpgroups),
# 64 or 128 keys a block, 2-4 stages (K and V tiles of 128 x 128 bf16 are 64 KiB a stage: 4 stages only
# with 64 keys or head dim 64).
BF16_CONFIGS = (AttentionConfig(128, 128, 8, 3), AttentionConfig(128, 64, 8, 4), AttentionConfig(128, 128, 8, 2),
                AttentionConfig(128, 64, 4, 3), AttentionConfig(128, 64, 8, 2), AttentionConfig(64, 64, 4, 3),
                AttentionConfig(128, 32, 4, 4))
BF16_NARROW_HEAD = (AttentionConfig(128, 128, 8, 4), AttentionConfig(128, 128, 4, 3))  # head dims up to 64
FP32_CONFIGS = (AttentionConfig(64, 64, 4, 2), AttentionConfig(128, 64, 8, 2), AttentionConfig(32, 64, 4, 2),
                AttentionConfig(64, 32, 4, 2), AttentionConfig(64, 64, 8, 2), AttentionConfig(128, 64, 8, 1),
                AttentionConfig(128, 32, 8, 2))
WIDE_HEAD_CONFIGS = (AttentionConfig(64, 32, 4, 2), AttentionConfig(32, 32, 4, 2), AttentionConfig(64, 16, 4, 2))


def curated_configs(head_dim: int, precision: str) -> list[AttentionConfig]:
    """The default tile first, then the others of its class, for tuning to measure on the target."""
    if head_dim > 128:
        others = WIDE_HEAD_CONFIGS
    elif precision == "bf16":
        others = (BF16_NARROW_HEAD if head_dim <= 64 else ()) + BF16_CONFIGS
    else:
        others = FP32_CONFIGS
    return list(dict.fromkeys((default_config(head_dim, precision),) + others))


def _module():
    """The template's kernels and launch routine, imported from ``<work dir>/templates/attention_<hash>.py``
    (Triton reads a kernel's source from its file)."""
    global _MODULE
    if _MODULE is None:
        source = SOURCE_HEADER + KERNELS + "\n\n" + RUNTIME
        folder = Settings.from_env().work_dir / "templates"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"attention_{hashlib.sha256(source.encode()).hexdigest()[:16]}.py"
        if not path.exists() or path.read_text() != source:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(source)
            tmp.replace(path)
        spec = importlib.util.spec_from_file_location(f"_qm_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        _MODULE = module
    return _MODULE


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              causal: bool = False, scale: float | None = None, precision: str = "strict",
              config: AttentionConfig | None = None) -> torch.Tensor:
    """``softmax(q k^T * scale + mask) v`` per (batch, head); see the module docstring."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    three = q.dim() == 3
    if three:
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
        mask = mask.unsqueeze(1) if mask is not None and mask.dim() == 3 else mask
    if q.dim() != 4 or k.dim() != 4 or v.shape[:3] != k.shape[:3] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    bsz, heads, m, d = q.shape
    kv_heads, dv = k.shape[1], v.shape[3]
    if dv != d or heads % kv_heads or k.shape[0] != bsz or d > 256:
        raise ValueError(f"unsupported: head dims {d}/{dv} (equal, at most 256), heads {heads}/{kv_heads}")
    out = torch.empty(bsz, heads, m, d, device=q.device, dtype=q.dtype)
    config = config or default_config(d, precision)
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    kind = 0 if mask is None else 1 if mask.dtype == torch.bool else 2
    _module()._qm_attn_run(q, k, v, out, mask, kind, causal, scale, 1.0, float("-inf"), False,
                           PRECISIONS[precision], config.launch(), os.environ.get("TRITON_INTERPRET") == "1")
    return out.squeeze(1) if three else out
