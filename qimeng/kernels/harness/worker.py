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
import gc
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
from qimeng.kernels.harness import baselines, checks, device_lock, dispatch, problem as problem_mod, roofline, timing
from qimeng.kernels.harness.evaluate import LOG_MARK
from qimeng.kernels.harness.problem import Problem, import_file, load_problem
from qimeng.kernels import result as result_mod
from qimeng.kernels.result import EvalOptions, EvalResult

_TIMING_SEED = 10_007
_RECHECK_SEED = 20_011
_POISON_BYTES = 64 * 1024 * 1024


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


def clone_inputs(values: list) -> list:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


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
        self.reference64: Any = None  # the reference model in float64, built on first need

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

    def call_candidate(self, model: Any, inputs: list, when: str) -> Any:
        self.poison()
        self._sync()  # the candidate starts on an idle device: side streams cannot race the input copies
        try:
            with no_grad():
                out = model(*inputs)
            self._sync()
        except BaseException as exc:  # noqa: BLE001  (a candidate may raise anything, SystemExit too)
            broken = _cuda_broken(self.device, exc)
            raise CandidateFailed(Status.RUNTIME_ERROR, f"the candidate's forward raised {_describe(exc)} ({when})", broken) from None
        self.check_untouched(when)
        return out

    def call_reference(self, model: Any, inputs: list) -> Any:
        try:
            with no_grad():
                out = model(*inputs)
            self._sync()
        except Exception as exc:
            raise BadInput(f"{self.problem.path}: the reference's forward raised {_describe(exc)}") from exc
        return out

    def poison(self) -> None:
        """Fill freed memory with NaN, so an uninitialised output cannot hold an earlier result."""
        sizes = list(self.output_bytes) + ([_POISON_BYTES] if _is_cuda(self.device) else [])
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
            reference = self.problem.build(self.problem.model_cls, self.options.seed, self.device)
        except BadInput:
            raise
        except Exception as exc:
            raise BadInput(f"{self.problem.path}: Model(*get_init_inputs()) raised {_describe(exc)}") from exc
        try:
            candidate = self.problem.build(model_cls, self.options.seed, self.device)
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.RUNTIME_ERROR, f"ModelNew(*get_init_inputs()) raised {_describe(exc)}",
                                  _cuda_broken(self.device, exc)) from None
        ref_state, cand_state = reference.state_dict(), candidate.state_dict()
        shared = {k: v for k, v in ref_state.items() if k in cand_state and cand_state[k].shape == v.shape}
        candidate.load_state_dict(shared, strict=False)
        self.check_untouched("in the constructor")
        self.reference_state = {k: v.detach().clone() for k, v in ref_state.items()}
        return reference, candidate

    def trial(self, reference: Any, candidate: Any, seed: int, when: str) -> Any:
        """One correctness trial: candidate first on its own clones, then the reference; returns its output."""
        inputs = self.problem.inputs(seed, self.device)
        cand_inputs, ref_inputs = clone_inputs(inputs), clone_inputs(inputs)
        out_c = self.call_candidate(candidate, cand_inputs, when)
        out_r = self.call_reference(reference, ref_inputs)
        self.output_bytes = [v.numel() * v.element_size() for _, v in checks.leaves(out_r) if isinstance(v, torch.Tensor)]
        atol, rtol = checks.tolerances(out_r, self.options.atol, self.options.rtol)
        self.result.atol, self.result.rtol = atol, rtol
        reason = self.check_outputs(out_c, out_r, inputs, atol, rtol) or checks.inputs_changed(ref_inputs, cand_inputs)
        if reason:
            raise CandidateFailed(Status.INCORRECT, f"{reason} ({when})")
        if checks.aliases_input(out_c, cand_inputs) and not checks.aliases_input(out_r, ref_inputs):
            self._flag("output_aliases_input")
        return out_r

    def check_outputs(self, out_c: Any, out_r: Any, inputs: list, atol: float, rtol: float) -> str | None:
        """Why the candidate's outputs are wrong, if they are. Values that differ from the fp32
        reference beyond the tolerances get a second look against the reference computed in float64:
        a candidate that is as accurate as the reference (it only sums in another order) passes,
        flagged ``within_reference_error``."""
        reason = checks.compare(out_c, out_r, atol, rtol)
        if reason is None or checks.VALUES_DIFFER not in reason:
            return reason
        truth = self.float64_reference(inputs)
        if truth is None:
            return reason
        second = checks.within_reference_error(out_c, out_r, truth, atol, rtol)
        if second is None:
            self._flag("within_reference_error")
        return second

    def float64_reference(self, inputs: list) -> Any:
        """The reference's output in float64 on ``inputs`` (None when the model cannot run in float64)."""
        try:
            if self.reference64 is None:
                model = self.problem.build(self.problem.model_cls, self.options.seed, self.device)
                model.load_state_dict(self.reference_state)
                self.reference64 = model.to(torch.float64)
            args = [x.detach().to(torch.float64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                    for x in inputs]
            with no_grad():
                out = self.reference64(*args)
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
            out_r = self.trial(reference, candidate, opts.seed + 1 + t, f"trial {t + 1}")
            firsts.append(checks.leaves(out_r)[0][1])
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
        calls, or memory left uninitialised, is caught."""
        opts = self.options
        sources = [self.problem.inputs(opts.seed + _TIMING_SEED + k, self.device) for k in (0, 1)]
        inputs = sources[0]
        ref_inputs, cand_inputs = clone_inputs(inputs), clone_inputs(inputs)

        def refill(round_index: int) -> None:
            self.poison()  # the last round's freed outputs hold no usable values
            for target in (ref_inputs, cand_inputs):
                for dst, src in zip(target, sources[round_index % 2]):
                    if isinstance(dst, torch.Tensor):
                        dst.copy_(src)

        fns = {"reference": lambda: reference(*ref_inputs), "candidate": lambda: candidate(*cand_inputs)}
        try:
            with no_grad():
                measured = timing.time_interleaved(fns, opts.timing_trials, opts.warmup, self.device, refill)
        except BaseException as exc:  # noqa: BLE001
            raise CandidateFailed(Status.RUNTIME_ERROR, f"a call raised {_describe(exc)} (while timing)",
                                  _cuda_broken(self.device, exc)) from None
        self.check_untouched("while timing")
        reason = measured.cross_check()
        if reason:
            raise CandidateFailed(Status.REJECTED, f"{reason} (while timing)", True)
        atol, rtol = checks.tolerances(measured.last["reference"], opts.atol, opts.rtol)
        last_inputs = sources[(opts.timing_trials - 1) % 2]
        reason = (self.check_outputs(measured.last["candidate"], measured.last["reference"], last_inputs, atol, rtol)
                  or checks.inputs_changed(ref_inputs, cand_inputs))
        if reason:
            raise CandidateFailed(Status.INCORRECT, f"{reason} (in the last timed round)")
        res = self.result
        res.ref_ms, res.candidate_ms = measured.median("reference"), measured.median("candidate")
        res.ref_iqr_ms, res.candidate_iqr_ms = measured.iqr("reference"), measured.iqr("candidate")
        res.timing_trials = opts.timing_trials
        res.baselines_ms["eager"] = res.ref_ms
        res.speedup = res.ref_ms / res.candidate_ms if res.candidate_ms > 0 else None
        if res.speedup is not None and res.speedup > 10:
            self._flag("speedup_over_10x")
        if measured.late["candidate"] > opts.timing_trials // 10:  # more than stray host jitter
            self._flag("work_left_on_side_stream")
        if os.environ.get("TRITON_INTERPRET") == "1" and _TRITON_IMPORT.search(self.source):
            res.timing_meaningful = False
            self._flag("timing_not_meaningful")
        self.check_roofline(reference, inputs)

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
        self.trial(reference, candidate, self.options.seed + _RECHECK_SEED, "after timing")
        self.result.trials += 1
        for name, value in reference.state_dict().items():
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
        try:
            with self.phase("load"):
                model_cls = self.load_candidate()
            with self.phase("build"):
                reference, candidate = self.build(model_cls)
            with self.phase("first_call"):  # Triton compiles here: in parallel with other evaluations
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
            self.unload()
        return self.result, _cuda_broken(self.device)

    def unload(self) -> None:
        """Drop the candidate's module, so a worker that evaluates many does not keep them all."""
        if self.module is not None:
            sys.modules.pop(self.module.__name__, None)
            self.module = None
        gc.collect()


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
    ours = [guard, checks, device_lock, timing, dispatch, roofline, problem_mod, baselines, sandbox, verdict, result_mod,
            json, dataclasses, sys.modules[__name__]]
    return [("EvalResult", EvalResult), ("Evaluation", Evaluation)] + [(m.__name__, m) for m in ours]


def measure_baselines(problem: Problem, options: EvalOptions, modes: list[str]) -> tuple[dict, dict]:
    """Time torch.compile of the reference against eager, interleaved, for each requested mode.

    Returns (milliseconds by mode, error by mode): a baseline that cannot be built is reported, not fatal.
    """
    found, errors = {}, {}
    for mode in modes:
        reference = problem.build(problem.model_cls, options.seed, options.device)
        inputs = problem.inputs(options.seed + _TIMING_SEED, options.device)
        try:
            compiled = baselines.compile_model(reference, mode)
            with no_grad():
                compiled(*inputs)  # compiles here, outside the device lock that the timing holds
                measured = timing.time_interleaved(
                    {"eager": lambda: reference(*inputs), mode: lambda: compiled(*inputs)},
                    options.timing_trials, max(options.warmup, 3), options.device)
            found[mode] = measured.median(mode)
        except Exception as exc:
            errors[mode] = _describe(exc)
    return found, errors


def _check_problem(problem: Problem, options: EvalOptions) -> None:
    """Build the reference and run it once, so a broken problem is BadInput before any candidate runs."""
    try:
        reference = problem.build(problem.model_cls, options.seed, options.device)
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
        with _timed(startup, "worker_problem"):
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
