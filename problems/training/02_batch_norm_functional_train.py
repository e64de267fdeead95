"""F.batch_norm with training=True (batch statistics in either mode) on [N, C, L], momentum 0.05, then ReLU."""

import torch
import torch.nn as nn
import torch.nn.functional as F

batch_size = 256
channels = 512
length = 2048
SMALL = {"batch_size": 4, "channels": 16, "length": 64}


class Model(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(1.0 + 0.1 * torch.randn(channels))
        self.bias = nn.Parameter(0.1 * torch.randn(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         training=True, momentum=0.05, eps=1e-5)
        return torch.relu(y)


def get_inputs():
    return [torch.randn(batch_size, channels, length) * 3.0 - 1.0]


def get_init_inputs():
    return [channels]
