"""Three-layer Elman RNN (nn.RNN, tanh) over a sequence [seq, batch, features]; returns every step's output."""

import torch
import torch.nn as nn

seq_len = 64
batch_size = 64
input_size = 256
hidden = 512
SMALL = {"seq_len": 6, "batch_size": 4, "input_size": 8, "hidden": 16}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden, num_layers=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rnn(x)[0]


def get_inputs():
    return [torch.randn(seq_len, batch_size, input_size)]


def get_init_inputs():
    return [input_size, hidden]
