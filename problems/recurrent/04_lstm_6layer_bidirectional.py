"""Six-layer bidirectional LSTM (nn.LSTM, batch first) over [batch, seq, features], then a linear head on every step."""

import torch
import torch.nn as nn

batch_size = 16
seq_len = 512
input_size = 128
hidden = 256
SMALL = {"batch_size": 2, "seq_len": 3, "input_size": 8, "hidden": 8}


class Model(nn.Module):
    def __init__(self, input_size: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden, num_layers=6, bidirectional=True, batch_first=True)
        self.head = nn.Linear(2 * hidden, input_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.lstm(x)[0])


def get_inputs():
    return [torch.randn(batch_size, seq_len, input_size)]


def get_init_inputs():
    return [input_size, hidden]
