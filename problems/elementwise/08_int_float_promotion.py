"""Integer/float promotion: int32 counts * fp32 scale + counts, result fp32."""

import torch
import torch.nn as nn

batch_size = 32768
dim = 8192
SMALL = {"batch_size": 64, "dim": 256}


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, counts: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return counts * scale + counts


def get_inputs():
    return [torch.randint(-100, 100, (batch_size, dim), dtype=torch.int32), torch.randn(batch_size, dim)]


def get_init_inputs():
    return []
