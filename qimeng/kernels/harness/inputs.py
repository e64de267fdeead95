"""Making a problem's inputs and models on the target device directly, without a host copy.

``get_inputs()`` and ``Model(*get_init_inputs())`` run under ``with torch.device(device):``, so a
``torch.randn(...)`` lands on the GPU at once instead of being made in host memory and copied. Tensors
that a problem puts elsewhere on purpose (``device="cpu"``, ``torch.from_numpy``) are moved after; a
factory that fails under the device context is run again without it (and its tensors moved).

Values: the seed is the same, but on CUDA the values come from the GPU's generator, so they differ from
the host-made values of earlier qimeng versions (and from a CPU run); on the CPU they are unchanged.
"""

from __future__ import annotations

from typing import Any, Callable

import torch


def seed_all(seed: int) -> None:
    """What ``torch.manual_seed(seed)`` does to the generators a problem's inputs and a forward draw from
    (the host's and every CUDA device's default generator), without its cost: on every call it also
    records a traceback for each backend not yet initialised (XPU, MPS), 0.3 ms on the CPU and more on a
    deeper stack, so that the judge's and the candidate's worker's seeding, on stacks of other depths,
    cost unequal times inside the harness's clock. Before CUDA is initialised, ``torch.manual_seed``
    itself (its lazy seeding of CUDA keeps the values the same)."""
    if torch.cuda.device_count() and not torch.cuda.is_initialized():
        torch.manual_seed(seed)
        return
    torch.default_generator.manual_seed(seed)
    for generator in torch.cuda.default_generators if torch.cuda.is_initialized() else ():
        generator.manual_seed(seed)


def on_device(factory: Callable[[], Any], seed: int, device: str) -> Any:
    """``factory()`` seeded with ``seed``, run under ``device``'s context (on CUDA), else on the host."""
    if torch.device(device).type == "cpu":
        seed_all(seed)
        return factory()
    seed_all(seed)
    try:
        with torch.device(device):
            return factory()
    except Exception:  # noqa: BLE001  (an operator or call that does not run there: make it on the host)
        seed_all(seed)
        return factory()


def moved(values: list, device: str) -> list:
    """The tensors of ``values`` on ``device`` (those already there are kept, not copied)."""
    target = torch.device(device)
    return [v.to(target) if isinstance(v, torch.Tensor) and v.device != _resolved(target) else v for v in values]


def _resolved(device: torch.device) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def nbytes(values: Any) -> int:
    """Bytes of the tensors in ``values`` (nested lists/tuples), each storage counted once."""
    seen: set[int] = set()
    total = 0
    stack = [values]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, torch.Tensor) and item.device.type != "meta":
            storage = item.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
    return total
