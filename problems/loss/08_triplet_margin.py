"""Triplet margin loss (L2 distance, margin) of anchor/positive/negative embeddings, mean reduction."""

import torch
import torch.nn as nn

batch_size = 131072
dim = 2048
SMALL = {"batch_size": 64, "dim": 128}


class Model(nn.Module):
    def __init__(self, margin: float):
        super().__init__()
        self.loss = nn.TripletMarginLoss(margin=margin, p=2.0)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return self.loss(anchor, positive, negative)


def get_inputs():
    # Independent embeddings: positive and negative distances are alike, so about half the triplets are active.
    return [torch.randn(batch_size, dim), torch.randn(batch_size, dim), torch.randn(batch_size, dim)]


def get_init_inputs():
    return [1.0]
