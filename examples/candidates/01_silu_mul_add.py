"""Candidate for fused/01_silu_mul_add (Triton): x * sigmoid(x) + y in one elementwise pass."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def silu_mul_add_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x * tl.sigmoid(x) + y, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.contiguous(), y.contiguous()
        out = torch.empty_like(x)
        n_elements = x.numel()
        block = 1024
        silu_mul_add_kernel[(triton.cdiv(n_elements, block),)](x, y, out, n_elements, BLOCK=block)
        return out
