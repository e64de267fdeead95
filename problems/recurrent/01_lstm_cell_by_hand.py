"""One LSTM cell step written by hand: gates = x W_ih^T + h W_hh^T + b, split in four, sigmoid/tanh, new (h, c)."""

import torch
import torch.nn as nn

batch_size = 4096
input_size = 1024
hidden = 1024
SMALL = {"batch_size": 8, "input_size": 16, "hidden": 32}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.ih = nn.Linear(input_size, 4 * hidden)
        self.hh = nn.Linear(hidden, 4 * hidden, bias=False)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        i, f, g, o = (self.ih(x) + self.hh(h)).chunk(4, dim=1)
        c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c_next), c_next


def get_inputs():
    return [torch.randn(batch_size, input_size), torch.randn(batch_size, hidden), torch.randn(batch_size, hidden)]


def get_init_inputs():
    return [input_size, hidden]
