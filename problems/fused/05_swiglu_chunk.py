"""SwiGLU gate on the two halves of the last dim (strided slices): silu(x[..., :H]) * x[..., H:]."""

import torch
import torch.nn as nn
import torch.nn.functional as F

tokens = 16384
hidden = 8192
SMALL = {"tokens": 64, "hidden": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = x.chunk(2, dim=-1)
        return F.silu(gate) * value


def get_inputs():
    return [torch.randn(tokens, 2 * hidden)]


def get_init_inputs():
    return []
