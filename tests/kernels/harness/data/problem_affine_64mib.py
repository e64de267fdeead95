"""An affine map on one 64 MiB fp32 input: the worker's memory over a whole evaluation is bounded."""

import torch
import torch.nn as nn

numel = 16 * 2**20


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 + 1.0


def get_inputs():
    return [torch.randn(numel)]


def get_init_inputs():
    return []
