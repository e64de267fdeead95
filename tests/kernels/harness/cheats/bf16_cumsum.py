"""Cheat: the cumsum in bfloat16, less accurate than the fp32 reference."""

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.cumsum(x.bfloat16(), dim=1).float()
