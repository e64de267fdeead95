"""LayerNorm over the hidden dim of [tokens, hidden] activations (nn.LayerNorm with affine weight and bias)."""

import torch
import torch.nn as nn

tokens = 65536
hidden = 4096
SMALL = {"tokens": 64, "hidden": 256}


class Model(nn.Module):
    def __init__(self, hidden: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=eps)
        with torch.no_grad():  # non-trivial affine parameters so they matter
            self.norm.weight.copy_(1.0 + 0.1 * torch.randn(hidden))
            self.norm.bias.copy_(0.1 * torch.randn(hidden))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x)


def get_inputs():
    return [torch.randn(tokens, hidden)]


def get_init_inputs():
    return [hidden, 1e-5]
