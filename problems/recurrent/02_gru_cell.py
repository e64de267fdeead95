"""nn.GRUCell: one step of a gated recurrent unit (reset, update and new gates) for a batch of states."""

import torch
import torch.nn as nn

batch_size = 4096
input_size = 1024
hidden = 1024
SMALL = {"batch_size": 8, "input_size": 16, "hidden": 32}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.cell = nn.GRUCell(input_size, hidden)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.cell(x, h)


def get_inputs():
    return [torch.randn(batch_size, input_size), torch.randn(batch_size, hidden)]


def get_init_inputs():
    return [input_size, hidden]
