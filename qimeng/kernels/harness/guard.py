"""Tamper detection for code that runs in the worker's process.

Importing this module binds the timers and comparison functions the harness uses (``TRUSTED``), before
any candidate is imported. A :class:`Guard` also snapshots the namespaces a candidate could patch to
fool the harness (time, torch, the CUDA event class, tensor methods, the reference problem's module and
Model class, qimeng's own checking modules) plus process-wide numeric settings, and reports anything that
changed. A candidate that changes any of it is ``rejected``.

torch._dynamo, imported lazily by torch itself, wraps ``torch.manual_seed`` in ``torch._disable_dynamo``;
that exact rebinding is accepted. torch.compile rebinds ``nn.Module`` methods on first use, so a
candidate that calls torch.compile is rejected.
"""

from __future__ import annotations

import builtins
import sys
import threading
import time
import types
from typing import Any, Iterable

import torch
import torch.nn.functional

# Bound once, before any candidate code exists in this process. Harness code calls these objects.
TRUSTED: dict[str, Any] = {
    "time.perf_counter_ns": time.perf_counter_ns,
    "time.monotonic_ns": time.monotonic_ns,
    "torch.cuda.Event": torch.cuda.Event,
    "torch.cuda.synchronize": torch.cuda.synchronize,
    "torch.allclose": torch.allclose,
    "torch.isclose": torch.isclose,
    "torch.equal": torch.equal,
    "torch.isnan": torch.isnan,
    "torch.isinf": torch.isinf,
    "torch.no_grad": torch.no_grad,
    "torch.nn.Module.__call__": torch.nn.Module.__call__,
    "threading.active_count": threading.active_count,
}
perf_counter_ns = TRUSTED["time.perf_counter_ns"]
monotonic_ns = TRUSTED["time.monotonic_ns"]
CudaEvent = TRUSTED["torch.cuda.Event"]
cuda_synchronize = TRUSTED["torch.cuda.synchronize"]
no_grad = TRUSTED["torch.no_grad"]
active_thread_count = TRUSTED["threading.active_count"]


def _namespace(obj: Any) -> dict[str, Any]:
    return dict(vars(obj))


def _watched(value: Any) -> bool:
    """Functions, classes and modules are watched; plain data (flags, counters) may change."""
    return callable(value) or isinstance(value, types.ModuleType)


def _added_suspect(value: Any) -> bool:
    """A new function or class in a watched namespace (new submodules appear there lazily)."""
    return _watched(value) and not isinstance(value, types.ModuleType)


def _identity(value: Any) -> tuple:
    """What must stay the same: the object, and for Python functions their code and defaults."""
    if isinstance(value, types.FunctionType):
        return (value, value.__code__, value.__defaults__, value.__kwdefaults__)
    return (value,)


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


_DISABLE_DYNAMO_CODE = torch._disable_dynamo(lambda: None).__code__


def _unchanged(before: tuple, now: Any) -> bool:
    """Same objects as before, or torch's own ``_disable_dynamo`` wrapper around the same function."""
    if _same(_identity(now), before):
        return True
    return getattr(now, "__code__", None) is _DISABLE_DYNAMO_CODE and getattr(now, "__wrapped__", None) is before[0]


def _aten_overrides() -> tuple[str, ...]:
    """Python kernels registered for ATen operators (``torch.library``), Meta kernels aside (torch adds
    those lazily); a candidate that overrides e.g. ``aten::isclose`` adds one."""
    return tuple(sorted(e for e in torch.library._impls if e.startswith("aten/") and not e.endswith("/Meta")))


def _settings() -> dict[str, Any]:
    state = {
        "torch.get_num_threads": torch.get_num_threads(),
        "torch.get_default_dtype": torch.get_default_dtype(),
        "torch.get_float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch.are_deterministic_algorithms_enabled": torch.are_deterministic_algorithms_enabled(),
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction":
            torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "torch.backends.cudnn.benchmark": torch.backends.cudnn.benchmark,
        "torch.backends.cudnn.enabled": torch.backends.cudnn.enabled,
        "sys.gettrace": id(sys.gettrace()),
        "sys.getprofile": id(sys.getprofile()),
        "torch dispatch modes": torch._C._len_torch_dispatch_stack(),
        "torch function modes": torch._C._len_torch_function_stack(),
        "torch.library kernels for aten ops": _aten_overrides(),
    }
    for name, module in (("time", time), ("torch", torch)):
        state[f"sys.modules[{name!r}]"] = id(sys.modules.get(name)) == id(module)
    return state


class Guard:
    """Snapshot of everything a candidate must leave alone; :meth:`violations` names what changed."""

    def __init__(self, extra_namespaces: Iterable[tuple[str, Any]] = (),
                 strict_namespaces: Iterable[tuple[str, Any]] = ()) -> None:
        """``extra_namespaces``: watched like torch's (functions, classes, modules); ``strict_namespaces``
        (the problem's module and Model class): every value watched, constants too."""
        targets: list[tuple[str, Any]] = [
            ("builtins", builtins),
            ("time", time),
            ("threading", threading),
            ("torch", torch),
            ("torch._C", torch._C),
            ("torch.cuda", torch.cuda),
            ("torch.cuda.Event", torch.cuda.Event),
            ("torch.nn.functional", torch.nn.functional),
            ("torch.nn.Module", torch.nn.Module),
            ("torch.Tensor", torch.Tensor),
            ("torch._C.TensorBase", torch._C.TensorBase),
            *extra_namespaces,
        ]
        self._namespaces = [(label, obj, self._snapshot(obj, False)) for label, obj in targets]
        self._namespaces += [(label, obj, self._snapshot(obj, True)) for label, obj in strict_namespaces]
        self._settings = _settings()

    @staticmethod
    def _snapshot(obj: Any, every_value: bool) -> dict[str, tuple]:
        return {k: _identity(v) for k, v in _namespace(obj).items() if every_value or _watched(v)}

    def violations(self) -> list[str]:
        """Names of the trusted objects, namespace entries or settings that changed since the snapshot."""
        found = [name for name, obj in TRUSTED.items() if not _unchanged(_identity(obj), _resolve(name))]
        for label, obj, before in self._namespaces:
            now = _namespace(obj)
            found += [f"{label}.{k}" for k, ident in before.items() if k not in now or not _unchanged(ident, now[k])]
            found += [f"{label}.{k} (added)" for k, v in now.items() if k not in before and _added_suspect(v)]
        now_settings = _settings()
        found += [name for name, value in self._settings.items() if now_settings[name] != value]
        return list(dict.fromkeys(found))  # a trusted name is also a namespace entry: report it once


def _resolve(dotted: str) -> Any:
    """Look a trusted name up again, the way candidate code would see it now."""
    head, *rest = dotted.split(".")
    obj: Any = sys.modules.get(head)
    for part in rest:
        obj = getattr(obj, part, None)
    return obj
