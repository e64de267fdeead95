"""Module forwards that ``torch.export`` cannot trace as written, replaced while capturing by the same
computation in traceable form (the generated candidate is verified against the original module).

- Batch norm in training mode with ``momentum=None`` (a cumulative moving average): PyTorch computes
  the factor as ``1.0 / float(num_batches_tracked)``, a data-dependent Python float. Here it stays a
  tensor: the running statistics become ``(1 - f) * running + f * batch`` with ``f = 1 / n``, the
  batch variance unbiased, as in ``torch.nn.functional.batch_norm``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F


def _cumulative_batch_norm(module: torch.nn.modules.batchnorm._BatchNorm):
    """A forward for ``module`` (training, momentum None, running stats tracked) with a tensor factor."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        module._check_input_dim(x)
        dims = [d for d in range(x.dim()) if d != 1]
        count = x.numel() // x.shape[1]
        out = F.batch_norm(x, None, None, module.weight, module.bias, True, 0.0, module.eps)
        with torch.no_grad():
            tracked = module.num_batches_tracked.add_(1)
            factor = 1.0 / tracked.to(x.dtype)
            var, mean = torch.var_mean(x, dims, correction=0)
            module.running_mean.copy_(module.running_mean * (1 - factor) + mean * factor)
            module.running_var.copy_(module.running_var * (1 - factor) + var * (count / (count - 1)) * factor)
        return out

    return forward


def _rewrite(module: torch.nn.Module):
    """The traceable forward for ``module``, or None when its own forward exports."""
    if (isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.training
            and module.momentum is None and module.track_running_stats):
        return _cumulative_batch_norm(module)
    return None


@contextmanager
def exportable(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, submodules whose forward does not export run a traceable equivalent."""
    replaced = []
    for module in model.modules():
        forward = _rewrite(module)
        if forward is not None:
            replaced.append(module)
            module.forward = forward
    try:
        yield
    finally:
        for module in replaced:
            del module.forward
