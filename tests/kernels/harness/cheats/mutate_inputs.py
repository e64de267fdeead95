import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        return x.mul_(self.scale).add_(y).clamp_min_(0)  # writes into its input
