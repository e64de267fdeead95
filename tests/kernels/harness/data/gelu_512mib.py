"""GELU (exact) on one 512 MiB fp32 input (128M elements): the harness's memory and time target on the CPU.

Input plus output is 1 GiB. `scripts/harness_memory_check.sh` evaluates it under /usr/bin/time -v; the
tests use the SMALL size.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

rows = 32768
cols = 4096  # rows * cols = 128M fp32 elements = 512 MiB
SMALL = {"rows": 64, "cols": 256}


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x)


def get_inputs():
    return [torch.randn(rows, cols)]


def get_init_inputs():
    return []
