"""The LayerNorm + ReLU problem the dynamic-shape checks run on (CPU: small; GPU: large), one definition."""

TEMPLATE = '''
import torch
import torch.nn as nn

batch, features = {batch}, {features}


class Model(nn.Module):
    def __init__(self, features: int):
        super().__init__()
        self.norm = nn.LayerNorm(features)

    def forward(self, x):
        return torch.relu(self.norm(x))


def get_inputs():
    return [torch.randn(batch, features)]


def get_init_inputs():
    return [features]
'''


def norm_relu_problem(batch: int, features: int) -> str:
    """The problem file's text: ``relu(LayerNorm(features)(x))`` on ``x`` of ``batch`` x ``features``."""
    return TEMPLATE.format(batch=batch, features=features)
