"""Fixture problem: a long fp32 cumsum summed in blocks (as GPU scans do), whose own rounding error
exceeds the fp32 tolerance where the running sum crosses zero."""

import torch
import torch.nn as nn

N = 20_000


class Model(nn.Module):
    def forward(self, x):
        rows, n = x.shape
        inner = torch.cumsum(x.reshape(rows, n // 1000, 1000), 2)
        offsets = torch.cumsum(inner[:, :, -1], 1) - inner[:, :, -1]
        return (inner + offsets[:, :, None]).reshape(rows, n)


def get_inputs():
    return [torch.randn(4, N) * 100]


def get_init_inputs():
    return []
