"""An executor over a Ray cluster: one Ray task per item, holding one GPU (``num_gpus=1``) or one CPU.

Inside its task a job does what it does on this machine (for kernels: the sandboxed harness, with the
same timeouts and environment allowlist); the values it emits stream back to the driver as they come
(a Ray streaming generator), so the driver alone writes results down. A task whose worker dies
(process killed, node lost, out of memory) is submitted again for what it had not reported yet
(``rest``), at most ``retries`` times; then its end carries :class:`~qimeng.core.executor.WorkerLost`
with Ray's cause. ``--device auto`` is resolved by the cluster's resources (a GPU anywhere: cuda), not by
the driver's machine. Ray is an optional extra (``pip install 'qimeng[ray]'``).
"""

from __future__ import annotations

import pickle
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from qimeng.core.devices import AUTO
from qimeng.core.executor import Event, Rest, StreamJob, WorkerLost

INSTALL_HINT = "pip install 'qimeng[ray]'  (or: pip install 'ray>=2.40')"


class RayUnavailable(Exception):
    """Ray is not installed, or no cluster could be reached at the address (the message says which)."""


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - an exception Ray could not send back: send its text
        return RuntimeError(repr(exc))


def _run_job(fn: StreamJob, item: Any, slot: str) -> Iterator[tuple[str, Any]]:
    """The task's body (a generator): ``("value", v)`` for each value the job emits, then ``("end", error)``."""
    values: queue.Queue[tuple[str, Any]] = queue.Queue()

    def target() -> None:
        try:
            fn(item, slot, lambda value: values.put(("value", value)))
            values.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - errors are values
            values.put(("end", _picklable(exc)))

    threading.Thread(target=target, name="qimeng-ray-job", daemon=True).start()
    while True:
        kind, value = values.get()
        yield kind, value
        if kind == "end":
            return


def cluster_device(device: str, resources: Mapping[str, float]) -> str:
    """The device of a run on a cluster with ``resources`` (``ray.cluster_resources()``): ``auto`` is
    cuda when the cluster has a GPU, else cpu; ``cpu`` and ``cuda`` stay as they are."""
    if device == AUTO:
        return "cuda" if resources.get("GPU", 0) >= 1 else "cpu"
    return device


class RayExecutor:
    """Runs jobs as Ray tasks on the cluster at ``address`` (``auto``: the running cluster of this
    machine or of ``RAY_ADDRESS``; ``local``: start one here; else ``host:port`` or ``ray://...``).
    ``device`` is ``auto``, ``cpu`` or ``cuda``; :attr:`device` is what it resolved to on the cluster."""

    remote = True

    def __init__(self, device: str, address: str = "auto", retries: int = 2, num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise RayUnavailable(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
        if retries < 0:
            raise ValueError(f"retries must be at least 0, got {retries}")
        self._ray = ray
        self.retries = retries
        if not ray.is_initialized():
            try:
                where = ({"address": "local", "num_cpus": num_cpus, "_node_ip_address": "127.0.0.1"}
                         if address == "local" else {"address": address})
                ray.init(**where, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # noqa: BLE001 - ConnectionError, a bad address, a version mismatch, ...
                raise RayUnavailable(f"no Ray cluster at --ray-address {address}: {exc} (start one with "
                                     f"`ray start --head`, or pass --ray-address local)") from None
        resources = ray.cluster_resources()
        self.device = cluster_device(device, resources)
        resource = "GPU" if self.device.startswith("cuda") else "CPU"
        self.workers = int(resources.get(resource, 0))
        if self.workers < 1:
            raise RayUnavailable(f"the Ray cluster has no {resource} for --device {device}")
        options = {"num_gpus": 1, "num_cpus": 1} if resource == "GPU" else {"num_cpus": 1}
        self._task = ray.remote(max_retries=0, **options)(_run_job)
        self._slot = "cuda:0" if resource == "GPU" else "cpu"  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU

    def stream(self, fn: StreamJob, items: Iterable[Any], rest: Rest | None = None) -> Iterator[Event]:
        """Submit every item at once (Ray queues them by resources); yield each emitted value as it arrives
        and then the item's end."""
        ray = self._ray
        fn_ref = ray.put(fn)
        items = list(items)
        values: list[list[Any]] = [[] for _ in items]
        lost = [0] * len(items)
        running: dict[Any, tuple[int, Any]] = {}  # generator -> (item index, what this attempt runs)
        for index, item in enumerate(items):
            running[self._task.remote(fn_ref, item, self._slot)] = (index, item)
        try:
            while running:
                [generator], _ = ray.wait(list(running), num_returns=1)
                index, attempt = running.pop(generator)
                item = items[index]
                try:
                    kind, value = ray.get(next(generator))
                except StopIteration:  # ended without its end marker: cannot happen, but never hang on it
                    yield Event(item, self._slot, done=True, error=WorkerLost("the task ended without a result"))
                    continue
                except ray.exceptions.RayTaskError as exc:
                    yield Event(item, self._slot, done=True, error=RuntimeError(str(exc)))
                    continue
                except ray.exceptions.RayError as exc:  # the worker or its node died
                    lost[index] += 1
                    left = rest(item, values[index]) if rest else attempt
                    if left is None:
                        yield Event(item, self._slot, done=True)
                    elif lost[index] <= self.retries:
                        running[self._task.remote(fn_ref, left, self._slot)] = (index, left)
                    else:
                        cause = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                        yield Event(item, self._slot, done=True, error=WorkerLost(
                            f"the Ray worker died {lost[index]} times ({type(exc).__name__}: {cause})"))
                    continue
                if kind == "value":
                    values[index].append(value)
                    running[generator] = (index, attempt)
                    yield Event(item, self._slot, value=value)
                else:
                    yield Event(item, self._slot, done=True, error=value)
        finally:
            for generator in running:  # the consumer stopped early: run nothing more
                ray.cancel(generator, force=True)  # kills the worker (its sandboxed jobs die with it)
            if running:  # returns when every cancelled task has ended, its worker gone
                ray.wait([generator.completed() for generator in running], num_returns=len(running))


def cluster_executor(kind: str, device: str, address: str, retries: int, workers: int | None = None,
                     jobs_per_gpu: int = 1) -> RayExecutor | None:
    """The executor that ``--executor KIND`` asks for: None for ``local`` (the caller's pool of this
    machine), a :class:`RayExecutor` for ``ray`` (its ``device``: ``device`` resolved on the cluster).
    ValueError for options that do not go together; RayUnavailable when Ray is missing or unreachable."""
    if kind == "local":
        return None
    if kind != "ray":
        raise ValueError(f"--executor {kind!r}: expected local or ray")
    if workers is not None or jobs_per_gpu != 1:
        raise ValueError("--workers and --jobs-per-gpu apply to --executor local; under Ray each problem "
                         "holds one GPU (or one CPU) of the cluster, all of them at once")
    try:
        import ray  # noqa: F401 - before any option of its own is judged: the install command comes first
    except ImportError:
        raise RayUnavailable(f"--executor ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    if device not in (AUTO, "cpu", "cuda"):
        raise ValueError(f"--device {device!r} with --executor ray: use auto, cpu or cuda (Ray assigns the GPUs)")
    return RayExecutor(device, address, retries)
