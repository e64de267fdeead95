"""The sandboxed evaluation worker (``python -m qimeng.kernels.harness.worker``, started by evaluate.py).

It imports torch and binds its timers and checks (qimeng.kernels.harness.guard) before any candidate code
exists, loads the problem, measures the requested torch.compile baselines, then evaluates candidates
one by one and streams one result message per candidate. After a candidate that tampered with the
process or hit a CUDA error it stops: the harness starts a fresh worker for the rest.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before torch is imported: the worker's start-up is reported in phases

import contextlib
import dataclasses
import faulthandler
import json
import os
import platform
import re
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

from qimeng.kernels.harness import guard  # noqa: I001  (first: binds the trusted functions)
from qimeng.kernels.harness.guard import Guard, cuda_synchronize, no_grad, perf_counter_ns

import torch

from qimeng.core import sandbox, verdict
from qimeng.core.sandbox import job_main
from qimeng.core.verdict import BadInput, Status
from qimeng.kernels.harness import (baselines, checks, device_lock, dispatch, inputs as inputs_mod, kernelbench, memory,
                                    problem as problem_mod, roofline, timing, values)
from qimeng.kernels.harness.evaluate import LOG_MARK
from qimeng.kernels.harness.problem import Problem, import_file, load_problem
from qimeng.kernels import result as result_mod
from qimeng.kernels.result import EvalOptions, EvalResult

_TIMING_SEED = 10_007
_RECHECK_SEED = 20_011
_POISON_BYTES = 64 * 1024 * 1024
_HOST_MMAP_BYTES = 32 * 1024 * 1024  # glibc's largest mmap threshold: bigger host blocks go back to the system


class CandidateFailed(Exception):
    """Ends the evaluation of one candidate with a status and reason (``discard``: end the worker too)."""

    def __init__(self, status: Status, reason: str, discard: bool = False) -> None:
        super().__init__(reason)
        self.status, self.reason, self.discard = status, reason, discard


def versions(device: str) -> dict[str, str]:
    found = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import importlib.metadata

        found["triton"] = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        pass
    if torch.device(device).type == "cuda":
        found["cuda"] = str(torch.version.cuda)
        found["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return found


def clone_inputs(items: list) -> list:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in items]


def _copy_into(targets: list, sources: list) -> None:
    for dst, src in zip(targets, sources):
        if isinstance(dst, torch.Tensor):
            dst.copy_(src)


def _generator_states(device: str) -> list:
    """The states of the random generators a call on ``device`` may draw from (host, and the GPU's)."""
    states = [torch.random.get_rng_state()]
    if _is_cuda(device):
        states.append(torch.cuda.get_rng_state(torch.device(device)))
    return states


def _seeded(fn: Any, seed: int) -> Any:
    """``fn`` preceded by seeding the generator: calls that draw random numbers draw the same ones."""
    def call() -> Any:
        torch.manual_seed(seed)
        return fn()
    return call


def _is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


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


class Evaluation:
    """The evaluation of one candidate against the problem, check by check."""

    def __init__(self, problem: Problem, options: EvalOptions, source: str, path: Path) -> None:
        self.problem, self.options, self.source, self.path = problem, options, source, path
        self.device = options.device
        self.result = EvalResult(status=Status.OK, device=self.device)
        self.guard: Guard | None = None
        self.module: Any = None
        self.threads: set[threading.Thread] = set()
        self.output_bytes: list[int] = []
        self.reference_state: dict[str, Any] = {}  # the models' state at build: every trial starts from it

    # -- guarded calls -------------------------------------------------------------------------

    def _sync(self) -> None:
        if _is_cuda(self.device):
            cuda_synchronize()

    def check_untouched(self, when: str) -> None:
        """Reject the candidate when it patched trusted objects or left threads running."""
        assert self.guard is not None
        changed = self.guard.violations()
        if changed:
            shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
            raise CandidateFailed(Status.REJECTED, f"the candidate tampered with the harness ({when}): {shown}", True)
        started = [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]
        if started:
            raise CandidateFailed(Status.REJECTED, f"the candidate left a thread running ({when}): {started[0].name}", True)

    def call_candidate(self, model: Any, inputs: list, when: str, rng_seed: int = 0) -> Any:
        self.poison()
        self._sync()  # the candidate starts on an idle device: side streams cannot race the input copies
        torch.manual_seed(rng_seed)  # the reference's call draws the same random numbers (dropout)
        try:
            with no_grad():
                out = model(*inputs)
            self._sync()
        except BaseException as exc:  # noqa: BLE001  (a candidate may raise anything, SystemExit too)
            broken = _cuda_broken(self.device, exc)
            raise CandidateFailed(Status.RUNTIME_ERROR, f"the candidate's forward raised {_describe(exc)} ({when})", broken) from None
        self.check_untouched(when)
        return out

    def call_reference(self, model: Any, inputs: list, rng_seed: int = 0) -> Any:
        """The reference's call; flags ``random_reference`` when it drew random numbers (dropout with
        p > 0 in training mode, sampling): its outputs then match a candidate's only when the candidate
        draws the same numbers in the same order (both calls of a trial start from one generator seed)."""
        torch.manual_seed(rng_seed)
        before = _generator_states(self.device)
        try:
            with no_grad():
                out = model(*inputs)
            self._sync()
        except Exception as exc:
            raise BadInput(f"{self.problem.path}: the reference's forward raised {_describe(exc)}") from exc
        if any(not guard.TRUSTED["torch.equal"](a, b) for a, b in zip(before, _generator_states(self.device))):
            self._flag("random_reference")
        return out

    def poison(self) -> None:
        """Fill freed memory with NaN, so an uninitialised output cannot hold an earlier result. On the
        CPU only blocks the allocator reuses: larger ones (``_HOST_MMAP_BYTES``) are given back to the
        system when freed and come back zeroed, so poisoning them would only cost time and memory."""
        sizes = list(self.output_bytes) + ([_POISON_BYTES] if _is_cuda(self.device) else [])
        if not _is_cuda(self.device):
            sizes = [n for n in sizes if n <= _HOST_MMAP_BYTES]
        for nbytes in sizes:
            block = torch.empty(max(nbytes // 4, 1), dtype=torch.float32, device=self.device)
            block.fill_(float("nan"))
            del block

    # -- stages ----------------------------------------------------------------------------------

    def load_candidate(self) -> Any:
        self.threads = set(threading.enumerate())
        self.guard = Guard(extra_namespaces=_watched_namespaces(),
                           strict_namespaces=[("problem", self.problem.module), ("Model", self.problem.model_cls)])
        try:
            module = import_file(self.path, "qimeng_candidate")
        except SyntaxError as exc:
            raise CandidateFailed(Status.COMPILE_ERROR, f"{self.path.name}: syntax error at line {exc.lineno}: {exc.msg}") from None
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.COMPILE_ERROR, f"importing the candidate raised {_describe(exc)}",
                                  _cuda_broken(self.device, exc)) from None
        self.module = module
        self.check_untouched("after import")
        model_cls = getattr(module, "ModelNew", None)
        if not isinstance(model_cls, type) or not issubclass(model_cls, torch.nn.Module):
            raise CandidateFailed(Status.COMPILE_ERROR, "the candidate defines no `ModelNew` (a torch.nn.Module subclass)")
        return model_cls

    def build(self, model_cls: type) -> tuple[Any, Any]:
        try:
            reference = self.problem.build(self.problem.model_cls, self.options.seed, self.device, self.options.mode)
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(f"{self.problem.path}: Model(*get_init_inputs()) raised {_describe(exc)}") from exc
        try:
            candidate = self.problem.build(model_cls, self.options.seed, self.device, self.options.mode)
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.RUNTIME_ERROR, f"ModelNew(*get_init_inputs()) raised {_describe(exc)}",
                                  _cuda_broken(self.device, exc)) from None
        ref_state, cand_state = reference.state_dict(), candidate.state_dict()
        self.shared_names = [k for k, v in ref_state.items() if k in cand_state and cand_state[k].shape == v.shape]
        candidate.load_state_dict({k: ref_state[k] for k in self.shared_names}, strict=False)
        self.check_untouched("in the constructor")
        self.reference_state = {k: v.detach().clone() for k, v in ref_state.items()}
        return reference, candidate

    def restore_state(self, reference: Any, candidate: Any) -> None:
        """Both models back to their state at build (in place), so that every trial starts from the same
        fresh state: in training mode batch norm updates its running statistics on every call."""
        reference.load_state_dict(self.reference_state)
        candidate.load_state_dict({k: self.reference_state[k] for k in self.shared_names}, strict=False)

    def trial(self, reference: Any, candidate: Any, seed: int, when: str) -> Any:
        """One correctness trial from the models' fresh state: candidate first on its own clone of the
        inputs, then the reference on the inputs; their outputs, their inputs afterwards and their
        buffers (running statistics) must match. Two input sets are alive, and the outputs are dropped
        before the next trial: returns a small fingerprint of the reference's first output."""
        self.restore_state(reference, candidate)
        inputs = self.problem.inputs(seed, self.device)
        cand_inputs = clone_inputs(inputs)
        out_c = self.call_candidate(candidate, cand_inputs, when, rng_seed=seed)
        out_r = self.call_reference(reference, inputs, rng_seed=seed)
        self.output_bytes = [v.numel() * v.element_size() for _, v in checks.leaves(out_r) if isinstance(v, torch.Tensor)]
        atol, rtol = checks.tolerances(out_r, self.options.atol, self.options.rtol)
        self.result.atol, self.result.rtol = atol, rtol
        aliased = checks.aliases_input(out_c, cand_inputs) and not checks.aliases_input(out_r, inputs)
        changed = checks.inputs_changed(inputs, cand_inputs)
        del inputs, cand_inputs  # before a float64 second look needs the room
        reason = (self.check_outputs(out_c, out_r, seed, atol, rtol) or changed
                  or checks.buffers_differ(candidate, reference, self.shared_names))
        if reason:
            raise CandidateFailed(Status.INCORRECT, f"{reason} ({when})")
        if aliased:
            self._flag("output_aliases_input")
        first = checks.leaves(out_r)[0][1]
        return values.fingerprint(first) if isinstance(first, torch.Tensor) else first

    def check_outputs(self, out_c: Any, out_r: Any, seed: int, atol: float, rtol: float) -> str | None:
        """Why the candidate's outputs are wrong, if they are. Values that differ from the fp32
        reference beyond the tolerances get a second look against the reference computed in float64:
        a candidate that is as accurate as the reference (it only sums in another order) passes,
        flagged ``within_reference_error``. The float64 reference runs only then, on the inputs of
        ``seed`` made again, and is dropped after."""
        reason = checks.compare(out_c, out_r, atol, rtol)
        if reason is None or checks.VALUES_DIFFER not in reason:
            return reason
        truth = self.float64_reference(seed)
        if truth is None:
            return reason
        second = checks.within_reference_error(out_c, out_r, truth, atol, rtol)
        del truth
        if second is None:
            self._flag("within_reference_error")
        return second

    def float64_reference(self, seed: int) -> Any:
        """The reference's output in float64 on the inputs of ``seed``, from the models' state at build
        (None when the model cannot run in float64)."""
        try:
            model = self.problem.build(self.problem.model_cls, self.options.seed, self.device, self.options.mode)
            model.load_state_dict(self.reference_state)
            model = model.to(torch.float64)
            args = [x.to(torch.float64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                    for x in self.problem.inputs(seed, self.device)]
            torch.manual_seed(seed)
            with no_grad():
                out = model(*args)
            self._sync()
            return out
        except Exception:  # noqa: BLE001  (an operator without float64 support: keep the fp32 verdict)
            return None

    def first_call(self, reference: Any, candidate: Any, started_ns: int) -> None:
        """The first, checked call (where JIT compilers compile); learns the output sizes to poison."""
        self.trial(reference, candidate, self.options.seed + 1_000, "first call")
        self.result.compile_ms = (perf_counter_ns() - started_ns) / 1e6

    def correctness(self, reference: Any, candidate: Any) -> None:
        opts = self.options
        firsts = []
        for t in range(opts.correctness_trials):
            firsts.append(self.trial(reference, candidate, opts.seed + 1 + t, f"trial {t + 1}"))
            self.result.trials = t + 1
        reason = checks.degenerate(firsts)
        if reason:
            self._flag("degenerate_reference")
            self.result.reason = reason

    def inspect_calls(self, candidate: Any) -> None:
        inputs = self.problem.inputs(self.options.seed + 2_000, self.device)
        run = lambda: candidate(*inputs)  # noqa: E731
        with no_grad():
            try:
                self.result.ops_called = dispatch.dispatched_ops(run)
                if _is_cuda(self.device) and self.options.kernel_share:
                    names = dispatch.own_kernel_names(self.module, self.source)
                    self.result.own_kernel_share = dispatch.own_kernel_share(run, names)
            except BaseException as exc:  # noqa: BLE001
                raise CandidateFailed(Status.RUNTIME_ERROR, f"the candidate's forward raised {_describe(exc)} "
                                      "(while recording its operators)", _cuda_broken(self.device, exc)) from None
        self.check_untouched("while recording its operators")

    def time(self, reference: Any, candidate: Any) -> None:
        """Interleaved timing; between rounds freed memory is poisoned and the inputs' values switch
        between two seeds, and the last round's outputs must still match, so an output cached across
        calls, or memory left uninitialised, is caught. Three input sets are alive: the reference's and
        the candidate's copies of the current values, and the other seed's values (``spare``)."""
        opts = self.options
        if opts.protocol == "kernelbench":
            return self.time_kernelbench(reference, candidate)
        seeds = [opts.seed + _TIMING_SEED + k for k in (0, 1)]
        ref_inputs = self.problem.inputs(seeds[0], self.device)
        cand_inputs, spare = clone_inputs(ref_inputs), self.problem.inputs(seeds[1], self.device)
        holding = [0]  # which seed's values ref_inputs and cand_inputs hold

        def refill(round_index: int) -> None:
            self.poison()  # the last round's freed outputs hold no usable values
            if round_index % 2 == holding[0]:
                _copy_into(cand_inputs, ref_inputs)  # undo whatever the candidate did to its copy
                return
            _copy_into(cand_inputs, spare)  # rotate: the spare's values in, the current ones kept as spare
            _copy_into(spare, ref_inputs)
            _copy_into(ref_inputs, cand_inputs)
            holding[0] = round_index % 2

        fns = {"reference": lambda: reference(*ref_inputs), "candidate": lambda: candidate(*cand_inputs)}
        if "random_reference" in self.result.flags:  # the same random numbers for both, every call
            fns = {name: _seeded(fn, seeds[0]) for name, fn in fns.items()}
        try:
            with no_grad():
                measured = timing.time_interleaved(fns, opts.timing_trials, opts.warmup, self.device, refill,
                                                   budget_s=opts.timing_budget_s)
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.RUNTIME_ERROR, f"a call raised {_describe(exc)} (while timing)",
                                  _cuda_broken(self.device, exc)) from None
        self.check_untouched("while timing")
        reason = measured.cross_check()
        if reason:
            raise CandidateFailed(Status.REJECTED, f"{reason} (while timing)", True)
        atol, rtol = checks.tolerances(measured.last["reference"], opts.atol, opts.rtol)
        reason = (self.check_outputs(measured.last["candidate"], measured.last["reference"], seeds[holding[0]], atol, rtol)
                  or checks.inputs_changed(ref_inputs, cand_inputs))
        if reason:
            raise CandidateFailed(Status.INCORRECT, f"{reason} (in the last timed round)")
        res = self.result
        res.ref_ms, res.candidate_ms = measured.median("reference"), measured.median("candidate")
        res.ref_iqr_ms, res.candidate_iqr_ms = measured.iqr("reference"), measured.iqr("candidate")
        res.timing_trials = len(measured.trials_ms["reference"])
        res.baselines_ms["eager"] = res.ref_ms
        res.speedup = res.ref_ms / res.candidate_ms if res.candidate_ms > 0 else None
        if res.speedup is not None and res.speedup > 10:
            self._flag("speedup_over_10x")
        if measured.late["candidate"] > res.timing_trials // 10:  # more than stray host jitter
            self._flag("work_left_on_side_stream")
        if os.environ.get("TRITON_INTERPRET") == "1" and _TRITON_IMPORT.search(self.source):
            res.timing_meaningful = False
            self._flag("timing_not_meaningful")
        del measured  # its last round's outputs
        self.check_roofline(reference, ref_inputs)

    def time_kernelbench(self, reference: Any, candidate: Any) -> None:
        """KernelBench's clock (harness/kernelbench.py): the reference's trials under no_grad, then the
        candidate's with autograd on, each trial on its own, the mean of each."""
        opts = self.options
        inputs = self.problem.inputs(opts.seed + _TIMING_SEED, self.device)
        try:
            ref_times = kernelbench.time_calls(lambda: reference(*inputs), opts.timing_trials, opts.warmup,
                                               self.device, grad=False)
            cand_times = kernelbench.time_calls(lambda: candidate(*inputs), opts.timing_trials, opts.warmup,
                                                self.device, grad=True)
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.RUNTIME_ERROR, f"a call raised {_describe(exc)} (while timing)",
                                  _cuda_broken(self.device, exc)) from None
        self.check_untouched("while timing")
        res = self.result
        res.ref_ms, res.candidate_ms = kernelbench.mean(ref_times), kernelbench.mean(cand_times)
        res.ref_iqr_ms = timing.quantile(ref_times, 0.75) - timing.quantile(ref_times, 0.25)
        res.candidate_iqr_ms = timing.quantile(cand_times, 0.75) - timing.quantile(cand_times, 0.25)
        res.timing_trials = opts.timing_trials
        res.baselines_ms["eager"] = res.ref_ms
        res.speedup = res.ref_ms / res.candidate_ms if res.candidate_ms > 0 else None

    def check_roofline(self, reference: Any, inputs: list) -> None:
        if not _is_cuda(self.device):
            return
        ceilings = roofline.ceilings_for(torch.cuda.get_device_name(torch.device(self.device)))
        if ceilings is None:
            return
        with no_grad():
            out = reference(*inputs)
            flops = roofline.count_flops(lambda: reference(*inputs))
        dtype = next((v.dtype for v in inputs if isinstance(v, torch.Tensor) and v.is_floating_point()), torch.float32)
        self.result.roofline_ms = roofline.roofline_ms(roofline.tensor_bytes(inputs, out), flops, dtype, ceilings)
        if self.result.candidate_ms is not None and self.result.candidate_ms < self.result.roofline_ms:
            self._flag("beyond_roofline")

    def recheck(self, reference: Any, candidate: Any) -> None:
        """One more trial with new inputs; the reference's parameters (and in eval mode its buffers too:
        in training mode its forward updates them) must still be those it was built with."""
        self.trial(reference, candidate, self.options.seed + _RECHECK_SEED, "after timing")
        self.result.trials += 1
        kept = dict(reference.named_parameters()) if self.options.mode == "train" else reference.state_dict()
        for name, value in kept.items():
            if name not in self.reference_state or not guard.TRUSTED["torch.equal"](value, self.reference_state[name]):
                raise CandidateFailed(Status.REJECTED, f"the reference model's `{name}` changed during the run", True)

    def phase(self, name: str) -> contextlib.AbstractContextManager[None]:
        """Record the wall time of one stage in ``result.phases_s`` (also when it fails)."""
        return _timed(self.result.phases_s, name)

    def _flag(self, flag: str) -> None:
        if flag not in self.result.flags:
            self.result.flags.append(flag)

    def run(self) -> tuple[EvalResult, bool]:
        """Evaluate; returns the result and whether the worker must be discarded."""
        started = perf_counter_ns()
        memory.start(self.device)
        res = self.result
        res.mode, res.protocol, res.backend_flags = self.options.mode, self.options.protocol, memory.backend_flags()
        reference = candidate = None
        try:
            with self.phase("load"):
                model_cls = self.load_candidate()
            with self.phase("build"):
                reference, candidate = self.build(model_cls)
            # Triton compiles here: in parallel with other evaluations' first calls, never beside a clock
            with self.phase("first_call"), device_lock.shared(self.device):
                self.first_call(reference, candidate, started)
            with device_lock.exclusive(self.device):  # the rest has the device to itself
                with self.phase("correctness"):
                    self.correctness(reference, candidate)
                with self.phase("inspect"):
                    self.inspect_calls(candidate)
                if self.options.time_candidate and self.options.timing_trials > 0:
                    with self.phase("timing"):
                        self.time(reference, candidate)
                with self.phase("recheck"):
                    self.recheck(reference, candidate)
        except CandidateFailed as failure:
            self.result.status, self.result.reason = failure.status, failure.reason
            return self.result, failure.discard
        finally:
            res.peak_device_bytes, res.peak_rss_bytes = memory.peak_device_bytes(self.device), memory.peak_rss_bytes()
            reference = candidate = None  # noqa: F841  (freed before the next candidate)
            self.unload()
        return self.result, _cuda_broken(self.device)

    def unload(self) -> None:
        """Drop the candidate's module, so a worker that evaluates many does not keep them all."""
        if self.module is not None:
            sys.modules.pop(self.module.__name__, None)
            self.module = None
        memory.release(self.device)


@contextlib.contextmanager
def _timed(into: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall seconds of the block in ``into[name]`` (also when it fails)."""
    t0 = perf_counter_ns()
    try:
        yield
    finally:
        into[name] = round((perf_counter_ns() - t0) / 1e9, 4)


def _watched_namespaces() -> list[tuple[str, Any]]:
    """Namespaces beyond torch and time that a candidate must not patch: qimeng's own checks, and what
    turns a result into the message the harness reads (json, dataclasses, the sandbox)."""
    ours = [guard, checks, values, inputs_mod, memory, kernelbench, device_lock, timing, dispatch, roofline, problem_mod,
            baselines, sandbox, verdict, result_mod, json, dataclasses, sys.modules[__name__]]
    return [("EvalResult", EvalResult), ("Evaluation", Evaluation)] + [(m.__name__, m) for m in ours]


def measure_baselines(problem: Problem, options: EvalOptions, modes: list[str]) -> tuple[dict, dict]:
    """Time torch.compile of the reference against eager, interleaved, for each requested mode.

    Returns (milliseconds by mode, error by mode): a baseline that cannot be built is reported, not fatal.
    """
    found, errors = {}, {}
    for mode in modes:
        reference = problem.build(problem.model_cls, options.seed, options.device, options.mode)
        inputs = problem.inputs(options.seed + _TIMING_SEED, options.device)
        try:
            compiled = baselines.compile_model(reference, mode)
            with no_grad(), device_lock.shared(options.device):
                compiled(*inputs)  # compiles here, beside other compilations but not beside a clock
            with no_grad():
                measured = timing.time_interleaved(
                    {"eager": lambda: reference(*inputs), mode: lambda: compiled(*inputs)},
                    options.timing_trials, max(options.warmup, 3), options.device, budget_s=options.timing_budget_s)
            found[mode] = measured.median(mode)
        except Exception as exc:
            errors[mode] = _describe(exc)
    return found, errors


def _check_problem(problem: Problem, options: EvalOptions) -> None:
    """Build the reference and run it once, so a broken problem is BadInput before any candidate runs."""
    try:
        reference = problem.build(problem.model_cls, options.seed, options.device, options.mode)
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"{problem.path}: Model(*get_init_inputs()) raised {_describe(exc)}") from exc
    inputs = problem.inputs(options.seed, options.device)
    try:
        with no_grad():
            reference(*inputs)
    except Exception as exc:
        raise BadInput(f"{problem.path}: the reference's forward raised {_describe(exc)}") from exc
    del reference, inputs
    memory.release(options.device)


def _warm_up_instruments(device: str, profiler: bool) -> None:
    """Use the operator recorder (and on CUDA the profiler and FLOP counter) once, before any guard
    snapshot: their first use imports modules that rebind torch functions."""
    x = torch.ones(8, device=device)
    dispatch.dispatched_ops(lambda: x + 1)
    if _is_cuda(device):
        if profiler:
            dispatch.own_kernel_share(lambda: x + 1, set(), calls=1)
        roofline.count_flops(lambda: x + 1)


_TRITON_IMPORT = re.compile(r"^\s*(import|from)\s+triton\b", re.MULTILINE)  # its kernels run interpreted on CPU


def handle(payload: dict) -> Iterator[dict]:
    faulthandler.enable()  # a crashing candidate leaves a Python traceback in its log
    options = EvalOptions(**{k: tuple(v) if k == "baselines" else v for k, v in payload["options"].items()})
    try:
        if _is_cuda(options.device) and not torch.cuda.is_available():
            raise BadInput(f"device {options.device!r} is not available here (torch {torch.__version__} sees no CUDA GPU)")
        if _is_cuda(options.device) and torch.device(options.device).index is not None:
            torch.cuda.set_device(torch.device(options.device))
        startup = {"worker_import": round(time.perf_counter() - _STARTED, 4)}
        with _timed(startup, "worker_problem"), device_lock.shared(options.device):  # a full-size forward
            problem = load_problem(payload["problem"], small=options.small)
            _check_problem(problem, options)
        with _timed(startup, "worker_instruments"):
            _warm_up_instruments(options.device, options.kernel_share)
        with _timed(startup, "worker_baselines") if payload.get("baselines") else contextlib.nullcontext():
            found, errors = measure_baselines(problem, options, payload.get("baselines", []))
        yield {"kind": "ready", "versions": versions(options.device), "problem_hash": problem.hash,
               "baselines": found, "baseline_errors": errors, "startup_s": startup}
        for item in payload["candidates"]:
            for stream in (sys.stdout, sys.stderr):  # the harness splits the output per candidate here
                stream.write(LOG_MARK.format(index=item["index"]))
                stream.flush()
            path = Path(os.getcwd()) / f"candidate_{item['index']}_{item['name']}"
            path.write_text(item["source"])
            result, discard = Evaluation(problem, options, item["source"], path).run()
            result.problem_hash = problem.hash
            result.versions = versions(options.device)
            sys.stdout.flush()
            sys.stderr.flush()
            yield {"kind": "result", "index": item["index"], "result": result.to_json(), "discard": discard}
            if discard:
                return
    except BadInput as exc:
        yield {"kind": "bad_input", "reason": str(exc)}


if __name__ == "__main__":
    job_main(handle)
