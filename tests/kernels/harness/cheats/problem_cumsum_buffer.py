"""Fixture problem: a buffer updated by each call (as running statistics are) with a long fp32 cumsum
summed in blocks, whose own rounding error exceeds the fp32 tolerance where the running sum crosses zero;
the output itself is a plain row sum."""

import torch
import torch.nn as nn

N = 20_000


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("running", torch.zeros(4, N))

    def forward(self, x):
        rows, n = x.shape
        inner = torch.cumsum(x.reshape(rows, n // 1000, 1000), 2)
        offsets = torch.cumsum(inner[:, :, -1], 1) - inner[:, :, -1]
        self.running.copy_((inner + offsets[:, :, None]).reshape(rows, n))
        return x.sum(dim=1)


def get_inputs():
    return [torch.randn(4, N) * 100]


def get_init_inputs():
    return []
