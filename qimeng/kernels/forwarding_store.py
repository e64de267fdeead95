"""The store of a job that runs on another machine (a Ray worker): the driver alone writes the SQLite
store, so the job's store sends every write back to it and reads nothing.

A read answers from what the driver sent with the job (the cached baselines of its problem), else "not
stored" (tunings and footprints are measured again); a write becomes a message ``("store", method,
args, kwargs)`` through ``emit``, which the driver applies to its store with :func:`apply_write`, in the
order the job made them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qimeng.kernels.store import Store, content_hash

WRITES = ("put_baseline", "put_candidate", "put_step", "put_tuning", "record_eval", "put_problem")

Write = tuple[str, str, tuple[Any, ...], dict[str, Any]]


class ForwardingStore:
    """Stands in for :class:`~qimeng.kernels.store.Store` where the harness and the engine use it."""

    def __init__(self, emit: Callable[[Write], None],
                 baselines: dict[tuple[str, str, str, str], float] | None = None) -> None:
        self._emit = emit
        self._baselines = dict(baselines or {})  # Store.baselines_of

    def baseline_ms(self, problem_hash: str, device: str, torch_version: str, mode: str) -> float | None:
        return self._baselines.get((problem_hash, device, torch_version, mode))

    def tuning(self, *args: Any) -> None:
        return None

    def peak_device_bytes(self, *args: Any) -> None:
        return None

    def put_candidate(self, problem_hash: str, source: str, lineage: dict[str, Any]) -> str:
        self._emit(("store", "put_candidate", (problem_hash, source, lineage), {}))
        return content_hash(source)  # what Store.put_candidate returns

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name not in WRITES:
            raise AttributeError(f"a job on another machine cannot use Store.{name}")
        return lambda *args, **kwargs: self._emit(("store", name, args, kwargs))


def apply_write(store: Store | None, write: Write) -> None:
    """Make on ``store`` one write a job sent back (none when the driver has no store)."""
    _, name, args, kwargs = write
    if name not in WRITES:
        raise ValueError(f"not a store write: {name!r}")
    if store is not None:
        getattr(store, name)(*args, **kwargs)
