"""The fastest a problem could possibly run on a known GPU: every input and output byte moved once at
peak memory bandwidth, or every FLOP (counted by ``torch.utils.flop_counter``) at peak compute.
A candidate measured below that time is flagged for review. CPUs have no ceiling here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from qimeng.kernels.harness.checks import leaves


@dataclass(frozen=True)
class Ceilings:
    """Peak memory bandwidth (bytes/s) and dense compute (FLOP/s) by precision."""

    bandwidth: float
    fp32: float
    tf32: float
    bf16: float


# Matched by substring of the device name. H200: H100's compute with HBM3e bandwidth.
CEILINGS: dict[str, Ceilings] = {
    "H100": Ceilings(bandwidth=3.0e12, fp32=52e12, tf32=379e12, bf16=716e12),
    "H200": Ceilings(bandwidth=4.8e12, fp32=52e12, tf32=379e12, bf16=716e12),
}


def ceilings_for(device_name: str) -> Ceilings | None:
    return next((c for key, c in CEILINGS.items() if key in device_name), None)


def tensor_bytes(*values: Any) -> int:
    """Bytes of the distinct tensor storages among ``values`` (nested lists/tuples flattened)."""
    seen: dict[int, int] = {}
    for value in values:
        for _, leaf in leaves(value):
            if isinstance(leaf, torch.Tensor):
                seen[leaf.untyped_storage().data_ptr()] = leaf.numel() * leaf.element_size()
    return sum(seen.values())


def count_flops(fn: Callable[[], object]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def roofline_ms(nbytes: int, flops: int, dtype: torch.dtype, ceilings: Ceilings) -> float:
    """Lower bound on the run time in ms. fp32 takes the TF32 peak whatever the flags: cuDNN runs fp32
    convolutions in TF32 by default (``torch.backends.cudnn.allow_tf32``), and strict-fp32 products built
    from tensor-core passes (3xTF32: about 120 TFLOP/s on an H100 or H200) pass the fp32 FMA peak honestly."""
    peak = ceilings.bf16 if dtype in (torch.float16, torch.bfloat16) else ceilings.tf32
    return max(nbytes / ceilings.bandwidth, flops / peak) * 1e3
