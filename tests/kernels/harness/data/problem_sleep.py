"""A reference that sleeps 2 ms and returns its input. torch.compile has nothing to compile (dynamo breaks
the graph at the sleep; no inductor), so its baseline costs well under a second on the CPU, and every
call lasts at least 2 ms: a lower bound that timing tests can check."""

import time

import torch
import torch.nn as nn

SLEEP_S = 0.002


class Model(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(SLEEP_S)
        return x


def get_inputs():
    return [torch.randn(16)]


def get_init_inputs():
    return []
