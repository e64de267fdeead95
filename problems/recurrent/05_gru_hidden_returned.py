"""Three-layer GRU (nn.GRU, batch first) from a given initial state; returns the final hidden state h_n [layers, batch, hidden]."""

import torch
import torch.nn as nn

batch_size = 16
seq_len = 512
input_size = 128
hidden = 256
SMALL = {"batch_size": 2, "seq_len": 5, "input_size": 8, "hidden": 8}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.gru = nn.GRU(input_size, hidden, num_layers=3, batch_first=True)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
        return self.gru(x, h0)[1]


def get_inputs():
    return [torch.randn(batch_size, seq_len, input_size), torch.randn(3, batch_size, hidden)]


def get_init_inputs():
    return [input_size, hidden]
