"""The candidate's worker (``python -m qimeng.kernels.harness.worker``, started by evaluate.py).

It runs candidate code, so nothing it says is a verdict: it answers the harness's commands with
evidence only. For a trial it makes the inputs of the seed the harness sends at that moment, calls the
candidate and writes the outputs into shared memory (``exchange``) for the judge to compare; for a
timed round it reports its own clock's time and writes the round's output likewise. Its own checks
(the tamper guard, poisoned memory, input mutation, threads) still run, and a failure it reports is
believed (a candidate can only make its own result worse that way); a success it reports is checked
by the judge. After a candidate that tampered with the process or hit a CUDA error it stops answering:
the harness starts a fresh worker for the rest. Between candidates a ``problem`` command points it at
another problem file (``evaluate.evaluate_problems``).
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before torch is imported: the worker's start-up is reported in phases

import faulthandler  # noqa: E402
import json  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

from qimeng.kernels.harness import guard  # noqa: E402,I001  (first: binds the trusted functions)
from qimeng.kernels.harness.guard import Guard, cuda_synchronize, no_grad  # noqa: E402

import torch  # noqa: E402

from qimeng.core import command_job, verdict  # noqa: E402
from qimeng.core.command_job import serve  # noqa: E402
from qimeng.core.privileges import drop_privileges  # noqa: E402
from qimeng.core.verdict import BadInput, Status  # noqa: E402
from qimeng.kernels.harness import (burst, checks, dispatch, exchange, inputs as inputs_mod, kernelbench, memory,  # noqa: E402
                                    problem as problem_mod, timing, values)
from qimeng.kernels.harness.judge import HOST_MMAP_BYTES, clone_inputs, describe, options_from  # noqa: E402
from qimeng.kernels.harness.problem import Problem, import_file, load_problem  # noqa: E402
from qimeng.kernels import result as result_mod  # noqa: E402
from qimeng.kernels.result import EvalOptions  # noqa: E402

_POISON_BYTES = 64 * 1024 * 1024
from qimeng.kernels.harness.evaluate import LOG_MARK  # noqa: E402


class CandidateFailed(Exception):
    """Ends the evaluation of one candidate with a status and reason (``discard``: end the worker too)."""

    def __init__(self, status: Status, reason: str, discard: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.discard = status, reason, discard


def _is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def _cuda_broken(device: str, exc: BaseException | None = None) -> bool:
    """True when this process's CUDA context can no longer be trusted (any CUDA error)."""
    if not _is_cuda(device):
        return False
    if exc is not None and ("CUDA" in str(exc) or "cuda" in type(exc).__name__.lower()
                            or type(exc).__name__ == "AcceleratorError"):
        return True
    try:
        cuda_synchronize()
        (torch.ones(1, device=device) + 1).item()
    except Exception:
        return True
    return False


class CandidateRun:
    """One candidate in this worker: loaded, then called on the harness's command."""

    def __init__(self, problem: Problem, options: EvalOptions, writer: exchange.Writer, path: Path) -> None:
        self.problem, self.options, self.writer, self.path = problem, options, writer, path
        self.device = options.device
        self.source = path.read_text()
        self.threads = set(threading.enumerate())
        self.guard = Guard(extra_namespaces=_watched_namespaces(),
                           strict_namespaces=[("problem", problem.module), ("Model", problem.model_cls)])
        self.module: Any = None
        self.model: Any = None
        self.output_bytes: list[int] = []
        self.flusher: timing.L2Flusher | None = None
        self.state: dict[str, Any] = {}  # the candidate's state after load: every trial starts from it
        self.buffer_names: list[str] = []  # its buffers that the reference's model has too
        self.burst: burst.Burst | None = None  # the last verification burst: every call's outputs
        self.profiled = False  # the CUDA profiler ran here (kernel_share): CUPTI stays subscribed

    def _sync(self) -> None:
        if _is_cuda(self.device):
            cuda_synchronize()

    def check_untouched(self, when: str) -> None:
        """Reject the candidate when it patched trusted objects or left threads running."""
        changed = self.guard.violations()
        if changed:
            shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
            raise CandidateFailed(Status.REJECTED, f"the candidate tampered with the harness ({when}): {shown}", True)
        started = [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]
        if started:
            raise CandidateFailed(Status.REJECTED, f"the candidate left a thread running ({when}): {started[0].name}", True)

    def poison(self) -> None:
        """Fill freed memory with NaN, so an uninitialised output cannot hold an earlier result. On the
        CPU only blocks the allocator reuses: larger ones (``HOST_MMAP_BYTES``) are given back to the
        system when freed and come back zeroed, so poisoning them would only cost time and memory."""
        sizes = list(self.output_bytes) + ([_POISON_BYTES] if _is_cuda(self.device) else [])
        if not _is_cuda(self.device):
            sizes = [n for n in sizes if n <= HOST_MMAP_BYTES]
        for nbytes in sizes:
            block = torch.empty(max(nbytes // 4, 1), dtype=torch.float32, device=self.device)
            block.fill_(float("nan"))
            del block

    def load(self) -> dict:
        memory.start(self.device)
        try:
            module = import_file(self.path, "qimeng_candidate")
        except SyntaxError as exc:
            raise CandidateFailed(Status.COMPILE_ERROR, f"{self.path.name}: syntax error at line {exc.lineno}: {exc.msg}") from None
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.COMPILE_ERROR, f"importing the candidate raised {describe(exc)}",
                                  _cuda_broken(self.device, exc)) from None
        self.module = module
        self.check_untouched("after import")
        model_cls = getattr(module, "ModelNew", None)
        if not isinstance(model_cls, type) or not issubclass(model_cls, torch.nn.Module):
            raise CandidateFailed(Status.COMPILE_ERROR, "the candidate defines no `ModelNew` (a torch.nn.Module subclass)")
        mode = self.options.mode
        reference = self.problem.build(self.problem.model_cls, self.options.seed, self.device, mode)
        try:
            model = self.problem.build(model_cls, self.options.seed, self.device, mode)
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.RUNTIME_ERROR, f"ModelNew(*get_init_inputs()) raised {describe(exc)}",
                                  _cuda_broken(self.device, exc)) from None
        ref_state, cand_state = reference.state_dict(), model.state_dict()
        shared = {k: v for k, v in ref_state.items() if k in cand_state and cand_state[k].shape == v.shape}
        model.load_state_dict(shared, strict=False)
        del reference
        self.check_untouched("in the constructor")
        self.model = model
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.buffer_names = [name for name, _ in model.named_buffers() if name in shared]
        return {"kind": "loaded"}

    def restore_state(self) -> None:
        """The candidate back to its state after load (in place): in training mode batch norm updates its
        running statistics on every call, and every trial starts from the same state as the judge's."""
        try:
            self.model.load_state_dict(self.state)
        except BaseException as exc:  # noqa: BLE001  (a model whose state the candidate's calls reshaped)
            raise CandidateFailed(Status.RUNTIME_ERROR, f"restoring the candidate's state raised {describe(exc)}",
                                  _cuda_broken(self.device, exc)) from None

    def call(self, inputs: list, when: str, rng_seed: int = 0) -> Any:
        self.poison()
        self._sync()  # the candidate starts on an idle device: side streams cannot race the input copies
        inputs_mod.seed_all(rng_seed)  # the judge's reference draws the same random numbers (dropout)
        try:
            with no_grad():
                out = self.model(*inputs)
            self._sync()
        except BaseException as exc:  # noqa: BLE001  (a candidate may raise anything, SystemExit too)
            raise CandidateFailed(Status.RUNTIME_ERROR, f"the candidate's forward raised {describe(exc)} ({when})",
                                  _cuda_broken(self.device, exc)) from None
        self.check_untouched(when)
        return out

    def trial(self, seed: int, when: str) -> dict:
        """Call the candidate, from its fresh state, on the inputs of ``seed`` (two input sets alive);
        write its outputs and its shared buffers (running statistics) for the judge."""
        self.restore_state()
        inputs = self.problem.inputs(seed, self.device)
        cand_inputs = clone_inputs(inputs)
        out = self.call(cand_inputs, when, rng_seed=seed)
        self.output_bytes = [v.numel() * v.element_size() for _, v in checks.leaves(out) if isinstance(v, torch.Tensor)]
        reason = checks.inputs_changed(inputs, cand_inputs)
        if reason:
            raise CandidateFailed(Status.INCORRECT, f"{reason} ({when})")
        flags = ["output_aliases_input"] if checks.aliases_input(out, cand_inputs) else []
        del inputs, cand_inputs
        buffers = dict(self.model.named_buffers())
        named = [name for name in self.buffer_names if isinstance(buffers.get(name), torch.Tensor)]
        return {"kind": "outputs", "leaves": self.writer.write(out, "out"), "flags": flags,
                "buffer_names": named, "buffers": self.writer.write([buffers[n] for n in named], "buf")}

    def inspect(self, seed: int) -> dict:
        """The ATen operators the candidate's forward dispatches (a dispatch mode: nothing stays behind)."""
        inputs = self.problem.inputs(seed, self.device)
        with no_grad():
            try:
                ops = dispatch.dispatched_ops(lambda: self.model(*inputs))
            except BaseException as exc:  # noqa: BLE001
                raise CandidateFailed(Status.RUNTIME_ERROR, f"the candidate's forward raised {describe(exc)} "
                                      "(while recording its operators)", _cuda_broken(self.device, exc)) from None
        self.check_untouched("while recording its operators")
        return {"kind": "inspected", "ops_called": ops}

    def kernel_share(self, seed: int) -> dict:
        """The share of the candidate's GPU time in kernels it defines (``dispatch.own_kernel_share``),
        asked once its verdict is made: the CUDA profiler leaves CUPTI subscribed in this process, which
        slows every later call, so this worker times nothing more (``unload`` discards it). Information
        only, and no guard check after it: a candidate that tampers now can only forge this figure."""
        self.profiled = True
        inputs = self.problem.inputs(seed, self.device)
        with no_grad():
            try:
                share = dispatch.own_kernel_share(lambda: self.model(*inputs),
                                                  dispatch.own_kernel_names(self.module, self.source))
            except BaseException as exc:  # noqa: BLE001
                raise CandidateFailed(Status.RUNTIME_ERROR, f"the candidate's forward raised {describe(exc)} "
                                      "(while profiling its kernels)", True) from None
        return {"kind": "kernel_share", "own_kernel_share": share}

    def warmup(self, seed: int, calls: int, budget_s: float | None) -> dict:
        """``calls`` calls, fewer once ``budget_s`` is spent (slow calls: large problems on the CPU)."""
        inputs = self.problem.inputs(seed, self.device)
        started = time.perf_counter()
        for _ in range(calls):
            self.call(inputs, "while warming up", rng_seed=seed)
            if budget_s is not None and time.perf_counter() - started > budget_s:
                break
        return {"kind": "warm"}

    def timed_round(self, seed: int) -> dict:
        """One timed call on fresh inputs; its output is written for the judge before the answer. Under
        ``--protocol kernelbench`` by that evaluator's clock (kernelbench.py): no flush, autograd on."""
        with timing.gc_paused():  # no collection inside the harness's clock around the round
            inputs = self.problem.inputs(seed, self.device)
            cand_inputs = clone_inputs(inputs)
            self.poison()
            fn = lambda: self.model(*cand_inputs)  # noqa: E731
            inputs_mod.seed_all(seed)
            try:
                if self.options.protocol == "kernelbench":
                    ms, out = kernelbench.time_call(fn, self.device, grad=True)
                    late = False
                else:
                    with no_grad():
                        if _is_cuda(self.device):
                            self.flusher = self.flusher or timing.L2Flusher(torch.device(self.device))
                            ms, out, late = timing.cuda_trial(fn, self.flusher)
                        else:
                            ms, out, late = timing.cpu_trial(fn)
            except BaseException as exc:  # noqa: BLE001
                raise CandidateFailed(Status.RUNTIME_ERROR, f"a call raised {describe(exc)} (while timing)",
                                      _cuda_broken(self.device, exc)) from None
            return {"kind": "round", "ms": ms, "late": late, "leaves": self.writer.write(out, "out")}

    def run_burst(self, seed: int, calls: int, reseed: bool) -> dict:
        """A verification burst (burst.py): ``calls`` calls back to back, each on fresh inputs of its own
        seed; the answer commits to every call's outputs with their digests."""
        with timing.gc_paused():
            laps = burst.Laps()
            self.burst = None
            self.restore_state()
            laps.lap("restore")
            run = burst.Burst(self.device)
            cuda = _is_cuda(self.device)
            if cuda:
                self.flusher = self.flusher or timing.L2Flusher(torch.device(self.device))
            try:
                with no_grad():
                    run.run(lambda xs: self.model(*xs), lambda s: self.problem.inputs(s, self.device), calls, seed,
                            reseed, self.flusher if cuda else None)
            except burst.BurstMismatch as exc:
                raise CandidateFailed(Status.INCORRECT, f"{exc} (in a verification burst)") from None
            except BaseException as exc:  # noqa: BLE001
                raise CandidateFailed(Status.RUNTIME_ERROR, f"a call raised {describe(exc)} (in a verification burst)",
                                      _cuda_broken(self.device, exc)) from None
            laps.lap("loop")
            self.burst = run  # its tampering is looked for at end_timing: here it would cost time the judge does not spend
            digests = run.digests(seed)
            laps.lap("digests")
        return {"kind": "burst", "digests": digests,
                "anatomy": {"side": laps.report(call_ms=sum(run.call_ms)), "loop": run.laps.report()}}

    def export_burst(self, calls: list) -> dict:
        """Write the outputs of the burst's ``calls`` for the judge."""
        if self.burst is None:
            raise CandidateFailed(Status.REJECTED, "no verification burst to export", True)
        leaves = [self.writer.write(self.burst.outputs(int(c)), f"burst{k}") for k, c in enumerate(calls)]
        return {"kind": "burst_outputs", "leaves": leaves}

    def end_timing(self) -> dict:
        self.check_untouched("while timing")
        self.burst = None
        return {"kind": "timed"}

    def unload(self) -> dict:
        """Drop the candidate's module, so a worker that evaluates many does not keep them all."""
        if self.module is not None:
            sys.modules.pop(self.module.__name__, None)
        self.module = self.model = None
        self.state = {}
        peaks = {"peak_device_bytes": memory.peak_device_bytes(self.device), "peak_rss_bytes": memory.peak_rss_bytes()}
        memory.release(self.device)
        return {"kind": "unloaded", "discard": self.profiled or _cuda_broken(self.device),
                "backend_flags": memory.backend_flags(), **peaks}


def _watched_namespaces() -> list[tuple[str, Any]]:
    """Namespaces beyond torch and time that a candidate must not patch: qimeng's own checks, and what
    turns evidence into the message the harness reads (json, dataclasses, the sandbox)."""
    ours = [guard, checks, values, timing, kernelbench, memory, inputs_mod, dispatch, exchange, problem_mod,
            command_job, verdict, result_mod, json, dataclasses, sys.modules[__name__]]
    return [("CandidateRun", CandidateRun)] + [(m.__name__, m) for m in ours]


def _warm_up_instruments(device: str, profiler: bool) -> None:
    """Use the operator recorder (and on CUDA the profiler, with host activity only: no CUPTI before the
    timed calls) once, before any guard snapshot: their first use imports modules that rebind torch
    functions."""
    x = torch.ones(8, device=device)
    dispatch.dispatched_ops(lambda: x + 1)
    if _is_cuda(device) and profiler:
        dispatch.warm_up_profiler()


def _answer(run: CandidateRun, command: dict) -> dict:
    actions: dict[str, Callable[[dict], dict]] = {
        "trial": lambda c: run.trial(int(c["seed"]), str(c["when"])),
        "inspect": lambda c: run.inspect(int(c["seed"])),
        "kernel_share": lambda c: run.kernel_share(int(c["seed"])),
        "warmup": lambda c: run.warmup(int(c["seed"]), int(c["calls"]), c.get("budget_s")),
        "round": lambda c: run.timed_round(int(c["seed"])),
        "burst": lambda c: run.run_burst(int(c["seed"]), int(c["calls"]), bool(c.get("reseed"))),
        "burst_export": lambda c: run.export_burst(list(c["calls"])),
        "end_timing": lambda c: run.end_timing(),
        "unload": lambda c: run.unload(),
    }
    return actions[command["cmd"]](command)


def handle(payload: dict, next_command: Callable[[], dict | None]) -> Iterator[dict]:
    drop_privileges()  # even as root, no ptrace of the judge or the harness, which are not dumpable
    faulthandler.enable()  # a crashing candidate leaves a Python traceback in its log
    options = options_from(payload)
    try:
        if _is_cuda(options.device) and torch.device(options.device).index is not None:
            torch.cuda.set_device(torch.device(options.device))
        t0 = time.perf_counter()
        problem = load_problem(payload["problem"], small=options.small)
        _warm_up_instruments(options.device, options.kernel_share)
        startup = {"worker_import": round(t0 - _STARTED, 4), "worker_problem": round(time.perf_counter() - t0, 4)}
    except BadInput as exc:
        yield {"kind": "bad_input", "reason": str(exc)}
        return
    yield {"kind": "ready", "startup_s": startup}
    writer = exchange.Writer(Path(payload["exchange"]))
    run: CandidateRun | None = None
    while (command := next_command()) is not None:
        try:
            if command["cmd"] == "problem":  # between candidates: another problem file, the same options
                t0 = time.perf_counter()
                problem, run = load_problem(command["problem"], small=options.small), None
                answer = {"kind": "ready", "startup_s": {"worker_problem": round(time.perf_counter() - t0, 4)}}
            elif command["cmd"] == "load":
                for stream in (sys.stdout, sys.stderr):  # the harness splits the output per candidate here
                    stream.write(LOG_MARK.format(index=command["index"]))
                    stream.flush()
                run = CandidateRun(problem, options, writer, Path(command["path"]))
                answer = run.load()
            else:
                assert run is not None
                answer = _answer(run, command)
        except CandidateFailed as failure:
            answer = {"kind": "failed", "status": failure.status.value, "reason": failure.reason,
                      "discard": failure.discard}
        except BadInput as exc:  # the problem of a ``problem`` command: the harness asks a fresh worker
            yield {"kind": "bad_input", "reason": str(exc)}
            return
        sys.stdout.flush()
        sys.stderr.flush()
        yield answer
        if answer["kind"] == "failed" and answer["discard"]:
            return


if __name__ == "__main__":
    serve(handle)
