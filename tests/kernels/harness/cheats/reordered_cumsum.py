"""Honest: the same cumsum summed in another order (torch.cumsum, more accurate than the reference)."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.cumsum(x, dim=1)
