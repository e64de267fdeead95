"""Module forwards that ``torch.export`` cannot trace as written, replaced while capturing by the same
computation in traceable form (the generated candidate is verified against the original module).

- Batch norm in training mode with ``momentum=None`` (a cumulative moving average): PyTorch computes
  the factor as ``1.0 / float(num_batches_tracked)``, a data-dependent Python float. Here it stays a
  tensor: the running statistics become ``(1 - f) * running + f * batch`` with ``f = 1 / n``, the
  batch variance unbiased, as in ``torch.nn.functional.batch_norm``.
- ``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` over more than ``UNROLL_LIMIT`` cell steps (sequence x layers
  x directions): tracing them unrolls every step (minutes for a 6-layer bidirectional LSTM over 512
  steps, and a graph of 10^5 nodes), and the vendor's fused recurrent kernel beats per-step kernels
  there. They become one ``qimeng::recurrent`` node (shapes only while tracing) that capture turns back
  into ``aten.lstm/gru/rnn_*.input``, a PyTorch call. Shorter ones trace as cell math (their gates fuse).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
import torch.nn.functional as F

UNROLL_LIMIT = 64  # cell steps (sequence x layers x directions) above which a recurrent module stays one call
RECURRENT_OPS = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "rnn_tanh", "RNN_RELU": "rnn_relu"}
# The ATen ops these become. Their outputs' strides differ by backend (batch-first outputs come back
# transposed), so the generated code lays their outputs out as traced (contiguous).
RECURRENT_TARGETS = frozenset(f"aten.{kind}.input" for kind in RECURRENT_OPS.values())


@torch.library.custom_op("qimeng::recurrent", mutates_args=())
def recurrent(kind: str, input: torch.Tensor, hx: list[torch.Tensor], params: list[torch.Tensor], has_biases: bool,
              num_layers: int, dropout: float, train: bool, bidirectional: bool,
              batch_first: bool) -> list[torch.Tensor]:
    """``aten.<kind>.input`` with the hidden state(s) as a list (one op for every recurrent kind)."""
    op = getattr(torch.ops.aten, kind).input
    state = hx if kind == "lstm" else hx[0]
    return [t.clone() for t in op(input, state, params, has_biases, num_layers, dropout, train, bidirectional,
                                  batch_first)]


@recurrent.register_fake
def _recurrent_shapes(kind, input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first):
    hidden = hx[0].shape[-1]
    steps, batch = (input.shape[1], input.shape[0]) if batch_first else (input.shape[0], input.shape[1])
    dirs = 2 if bidirectional else 1
    out_shape = (batch, steps, dirs * hidden) if batch_first else (steps, batch, dirs * hidden)
    return [input.new_empty(out_shape)] + [h.new_empty(h.shape) for h in hx]


def _recurrent_call(module: torch.nn.RNNBase):
    """A forward for ``module`` (unbatched and packed inputs excluded) as one ``qimeng::recurrent`` node."""
    kind = RECURRENT_OPS[module.mode]
    dirs = 2 if module.bidirectional else 1

    def forward(x: torch.Tensor, hx=None):
        batch = x.shape[0] if module.batch_first else x.shape[1]
        shape = (module.num_layers * dirs, batch, module.hidden_size)
        if hx is None:
            hx = (x.new_zeros(shape), x.new_zeros(shape)) if kind == "lstm" else x.new_zeros(shape)
        states = list(hx) if kind == "lstm" else [hx]
        weights = [getattr(module, name) for name in module._flat_weights_names]  # as traced, not as cached
        out = recurrent(kind, x, states, weights, module.bias, module.num_layers,
                        float(module.dropout), module.training, module.bidirectional, module.batch_first)
        return (out[0], (out[1], out[2])) if kind == "lstm" else (out[0], out[1])

    return forward


def _long_recurrence(module: torch.nn.Module, args: tuple) -> bool:
    if not isinstance(module, torch.nn.RNNBase) or module.proj_size or not args:
        return False
    x = args[0]
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        return False
    steps = x.shape[1] if module.batch_first else x.shape[0]
    return steps * module.num_layers * (2 if module.bidirectional else 1) > UNROLL_LIMIT


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


def _recurrent_dispatch(module: torch.nn.RNNBase):
    """A forward that takes the one-call form for long recurrences and the module's own otherwise."""
    own, long_form = type(module).forward.__get__(module), _recurrent_call(module)

    def forward(*args):
        return (long_form if _long_recurrence(module, args) else own)(*args)

    return forward


@contextmanager
def exportable(model: torch.nn.Module) -> Iterator[None]:
    """Within the block, submodules whose forward does not export (or exports too slowly) run a
    traceable equivalent."""
    replaced: list[torch.nn.Module] = []
    for module in model.modules():
        if (isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.training
                and module.momentum is None and module.track_running_stats):
            module.forward = _cumulative_batch_norm(module)
        elif isinstance(module, torch.nn.RNNBase):
            module.forward = _recurrent_dispatch(module)
        else:
            continue
        replaced.append(module)
    try:
        yield
    finally:
        for module in replaced:
            del module.forward
