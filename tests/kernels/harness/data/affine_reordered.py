"""The affine map in another order: equal up to rounding, so every comparison takes the value path."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 0.5) * 2.0
