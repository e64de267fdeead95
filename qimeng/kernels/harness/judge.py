"""The judge (``python -m qimeng.kernels.harness.judge``): the trusted worker that never loads candidate code.

It loads the problem, builds the reference, and answers the harness's commands one by one: the
reference's outputs for the seeds the harness sends when a trial starts, the comparison of the outputs
the candidate's worker exported (read from shared memory while that worker is stopped), the reference's
own timed rounds, the roofline, and the torch.compile baselines. Its answers go to the harness on its
own channel; the candidate's process can neither read its memory (it is not dumpable) nor write to it.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()

import contextlib  # noqa: E402
import faulthandler  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Iterator  # noqa: E402

import torch  # noqa: E402

from qimeng.core.command_job import serve  # noqa: E402
from qimeng.core.privileges import set_not_dumpable  # noqa: E402
from qimeng.core.verdict import BadInput  # noqa: E402
from qimeng.kernels.harness import baselines, burst, checks, device_lock, kernelbench, memory, roofline, timing  # noqa: E402
from qimeng.kernels.harness.exchange import Reader, Writer  # noqa: E402
from qimeng.kernels.harness.inputs import seed_all  # noqa: E402
from qimeng.kernels.harness.problem import Problem, load_problem  # noqa: E402
from qimeng.kernels.result import EvalOptions  # noqa: E402


def options_from(payload: dict) -> EvalOptions:
    return EvalOptions(**{k: tuple(v) if k == "baselines" else v for k, v in payload["options"].items()})


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


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def clone_inputs(values: list) -> list:
    return [v.clone() if isinstance(v, torch.Tensor) else v for v in values]


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


HOST_MMAP_BYTES = 32 * 1024 * 1024  # glibc's largest mmap threshold: bigger host blocks go back to the system


def generator_states(device: str) -> list:
    """The states of the random generators a call on ``device`` may draw from (host, and the GPU's)."""
    states = [torch.random.get_rng_state()]
    if torch.device(device).type == "cuda":
        states.append(torch.cuda.get_rng_state(torch.device(device)))
    return states


def build_reference(problem: Problem, options: EvalOptions) -> Any:
    try:
        return problem.build(problem.model_cls, options.seed, options.device, options.mode)
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"{problem.path}: Model(*get_init_inputs()) raised {describe(exc)}") from exc


class Judge:
    """The reference side of every trial, and the comparisons."""

    def __init__(self, problem: Problem, options: EvalOptions, exchange: Path) -> None:
        self.problem, self.options, self.device = problem, options, options.device
        self.reference = build_reference(problem, options)
        self.state = {k: v.detach().clone() for k, v in self.reference.state_dict().items()}
        self.reader = Reader(exchange)
        self.kept: dict[str, tuple[int, Any]] = {}  # tag -> (seed, reference output): no inputs kept
        self.fingerprints: list[tuple] = []
        self.flusher: timing.L2Flusher | None = None
        self.lock = contextlib.ExitStack()
        self.spare = Writer(None)  # private buffers of the same kind as the exchange's, for the timed rounds
        self.output_bytes: list[int] = []  # host buffers the timed rounds copy their outputs into
        self.burst: burst.Burst | None = None  # the last verification burst: every call's reference outputs
        self.burst_seed = (0, 0)  # its seed and number of calls
        self.compiled: dict[str, Any] = {}  # torch.compile baselines timed in the candidates' rounds, by mode
        self.baseline_errors: dict[str, str] = {}  # why a baseline is no longer timed

    def run_reference(self, inputs: list, rng_seed: int | None = 0) -> Any:
        """The reference's call, from generator seed ``rng_seed`` (the candidate's worker seeds its call
        alike; None: seeded already); inputs are not cloned: each caller makes its own."""
        if rng_seed is not None:
            seed_all(rng_seed)
        try:
            with torch.no_grad():
                out = self.reference(*inputs)
            sync(self.device)
        except Exception as exc:
            raise BadInput(f"{self.problem.path}: the reference's forward raised {describe(exc)}") from exc
        return out

    def reference_for(self, seed: int, tag: str, fingerprint: bool) -> dict:
        """The reference's outputs for ``seed``, from the model's state at build (in training mode batch
        norm updates its running statistics on every call). ``random``: the call drew random numbers
        (dropout in training mode): a candidate matches only when it draws the same, from one seed."""
        self.kept.pop(tag, None)  # the last trial's outputs are freed before this one's
        self.reference.load_state_dict(self.state)
        inputs = self.problem.inputs(seed, self.device)
        seed_all(seed)
        before = generator_states(self.device)
        out = self.run_reference(inputs, None)
        random = any(not torch.equal(a, b) for a, b in zip(before, generator_states(self.device)))
        del inputs
        self.kept[tag] = (seed, out)
        self.output_bytes = [v.numel() * v.element_size() for _, v in checks.leaves(out) if isinstance(v, torch.Tensor)]
        if fingerprint:
            self.fingerprints.append(checks.fingerprint(out))
        return {"kind": "reference", "random": random}

    def check(self, tag: str, described: Any, keep: bool, buffers: Any = None, buffer_names: Any = None) -> dict:
        """Compare the candidate's exported outputs with the reference kept under ``tag`` (and, after a
        trial, its exported buffers with the reference's after its call)."""
        seed, out_r = self.kept[tag] if keep else self.kept.pop(tag)
        atol, rtol = checks.tolerances(out_r, self.options.atol, self.options.rtol)
        reply: dict[str, Any] = {"kind": "checked", "atol": atol, "rtol": rtol, "flags": []}
        if not isinstance(described, list) or not described:
            return {**reply, "reason": "the candidate's worker described no outputs"}
        read = [self.reader.read(meta) for meta in described]
        unreadable = next((r for r in read if isinstance(r, str)), None)
        if unreadable:
            return {**reply, "reason": unreadable}
        candidate = read[0] if len(read) == 1 and not isinstance(out_r, (tuple, list)) else read
        reason = checks.compare(candidate, out_r, atol, rtol)
        truth_buffers: dict[str, torch.Tensor] | None = None  # the float64 twin's, once it ran
        if reason is not None and checks.VALUES_DIFFER in reason:
            truth_buffers = {}
            truth = self.float64_reference(seed, buffers=truth_buffers)
            if truth is not None:
                reason = checks.within_reference_error(candidate, out_r, truth, atol, rtol)
                if reason is None:
                    reply["flags"].append("within_reference_error")
            else:
                truth_buffers = None
            del truth
        if reason is None and buffers is not None:
            reason, second_look = self.check_buffers(buffers, buffer_names, seed, truth_buffers)
            if reason is None and second_look:
                reply["flags"].append("within_reference_error")
        return {**reply, "reason": reason}

    def check_buffers(self, described: Any, names: Any, seed: int,
                      truth: dict[str, torch.Tensor] | None = None) -> tuple[str | None, bool]:
        """(why the candidate's exported buffers differ from the reference's after its call on ``seed``, if
        they do; whether it took the second look): values that miss the tolerances are looked at again
        against the buffers of the reference's float64 twin after the same call (``truth`` when the
        outputs' second look ran it already)."""
        if not isinstance(described, list) or not isinstance(names, list) or len(names) != len(described):
            return "the candidate's worker described its buffers wrongly", False
        read = [self.reader.read(meta) for meta in described]
        unreadable = next((r for r in read if isinstance(r, str)), None)
        if unreadable:
            return unreadable, False
        candidate, reference = dict(zip(map(str, names), read)), dict(self.reference.named_buffers())
        reason = checks.buffers_differ(candidate, reference)
        if reason is None or checks.VALUES_DIFFER not in reason:
            return reason, False
        if truth is None:
            truth = {}
            if self.float64_reference(seed, buffers=truth) is None:
                return reason, False
        return checks.buffers_differ(candidate, reference, truth), True

    def float64_reference(self, seed: int, inputs: list | None = None,
                          buffers: dict[str, torch.Tensor] | None = None) -> Any:
        """The reference's output in float64 on the inputs of ``seed`` made again (or on ``inputs``), from
        the model's state at build; built only when an fp32 comparison failed, and dropped after (None
        when the model cannot run in float64). ``buffers`` receives the float64 model's buffers after the
        call (training mode's running statistics)."""
        try:
            model = build_reference(self.problem, self.options)
            model.load_state_dict(self.state)
            model = model.to(torch.float64)
            args = [x.to(torch.float64) if isinstance(x, torch.Tensor) and x.is_floating_point() else x
                    for x in (self.problem.inputs(seed, self.device) if inputs is None else inputs)]
            seed_all(seed)
            with torch.no_grad():
                out = model(*args)
            sync(self.device)
            if buffers is not None:
                buffers.update(model.named_buffers())
            return out
        except Exception:  # noqa: BLE001  (an operator without float64 support: keep the fp32 verdict)
            return None

    def warmup(self, seed: int, calls: int, budget_s: float | None) -> dict:
        """``calls`` calls, fewer once ``budget_s`` is spent, as the candidate's worker warms up (and as
        many of each torch.compile baseline timed in the rounds)."""
        inputs = self.problem.inputs(seed, self.device)
        started = time.perf_counter()
        for _ in range(calls):
            self.run_reference(clone_inputs(inputs), seed)
            for mode in list(self.compiled):
                seed_all(seed)
                try:
                    with torch.no_grad():
                        self.compiled[mode](*clone_inputs(inputs))
                except Exception as exc:  # noqa: BLE001  (a baseline that fails is reported, not fatal)
                    self.drop_baseline(mode, exc)
            if budget_s is not None and time.perf_counter() - started > budget_s:
                break
        sync(self.device)
        return {"kind": "warm"}

    def drop_baseline(self, mode: str, exc: BaseException) -> None:
        self.compiled.pop(mode, None)
        self.baseline_errors[mode] = describe(exc)

    def timed_round(self, seed: int, baseline: str | None = None) -> dict:
        """One timed call of the reference (or of its torch.compile ``baseline``) on fresh inputs, with the
        same untimed work around it as the candidate's worker does (its output copied to host memory),
        so that the harness's clock sees the same overhead on both sides. Only the reference's output is
        kept, for the candidate's round of the same seed; a baseline that raises answers its error."""
        with timing.gc_paused():  # no collection inside the harness's clock around the round
            if baseline is None:
                model = self.reference
                self.kept.pop("round", None)
            elif baseline in self.compiled:
                model = self.compiled[baseline]
            else:
                return {"kind": "round", "ms": None, "error": self.baseline_errors.get(baseline, "not compiled")}
            inputs = self.problem.inputs(seed, self.device)
            ref_inputs = clone_inputs(inputs)
            self.poison()
            seed_all(seed)
            try:
                ms, out, late = self.time_call(lambda: model(*ref_inputs))
            except Exception as exc:
                if baseline is None:
                    raise
                self.drop_baseline(baseline, exc)
                return {"kind": "round", "ms": None, "error": self.baseline_errors[baseline]}
            self.spare.write(out, "out")  # as the candidate's worker writes its output for the judge
            sync(self.device)
            del inputs, ref_inputs
            if baseline is None:
                self.kept["round"] = (seed, out)
            found = checks.leaves(out)
            return {"kind": "round", "ms": ms, "late": late,
                    "output_bytes": sum(v.numel() * v.element_size() for _, v in found if isinstance(v, torch.Tensor)),
                    "tensors_only": bool(found) and all(isinstance(v, torch.Tensor) for _, v in found)}

    def time_call(self, fn: Callable[[], Any]) -> tuple[float, Any, bool]:
        """(milliseconds, output, late) of one call by the protocol's clock, as the candidate's worker times its own."""
        if self.options.protocol == "kernelbench":
            ms, out = kernelbench.time_call(fn, self.device, grad=False)
            return ms, out, False
        with torch.no_grad():
            if torch.device(self.device).type == "cuda":
                self.flusher = self.flusher or timing.L2Flusher(torch.device(self.device))
                return timing.cuda_trial(fn, self.flusher)
            return timing.cpu_trial(fn)

    def run_burst(self, seed: int, calls: int, reseed: bool) -> dict:
        """The reference's verification burst (burst.py), the same work as the candidate's worker does for
        its burst on this seed; its calls' outputs are kept here, never where the candidate could read them."""
        with timing.gc_paused():
            laps = burst.Laps()
            self.burst = None
            self.reference.load_state_dict(self.state)
            laps.lap("restore")
            run = burst.Burst(self.device)
            cuda = torch.device(self.device).type == "cuda"
            if cuda:
                self.flusher = self.flusher or timing.L2Flusher(torch.device(self.device))
            with torch.no_grad():
                times = run.run(lambda xs: self.reference(*xs), lambda s: self.problem.inputs(s, self.device), calls,
                                seed, reseed, self.flusher if cuda else None)
            laps.lap("loop")
            digests = run.digests(seed)  # as the candidate's worker commits to its outputs: the same work on both sides
            laps.lap("digests")
            self.burst, self.burst_seed = run, (seed, calls)
        # the digests go out as the worker's do (the same bytes through a pipe and a JSON decoder on both
        # sides' clocks); the harness keeps them from the candidate and reads them for nothing
        return {"kind": "burst", "call_ms": sum(times) / max(len(times), 1), "digests": digests,
                "anatomy": {"side": laps.report(call_ms=sum(times)), "loop": run.laps.report()}}

    def check_burst(self, calls: Any, described: Any, committed: Any) -> dict:
        """Compare the outputs of the burst's ``calls`` that the candidate's worker exported with the
        digests it committed to in its answer, and with the reference's outputs of the same calls."""
        reply: dict[str, Any] = {"kind": "checked", "tampered": False, "flags": []}
        if self.burst is None or not (isinstance(calls, list) and isinstance(described, list)
                                      and isinstance(committed, list) and len(calls) == len(described) == len(committed)):
            return {**reply, "reason": "the candidate's worker described its burst outputs wrongly", "tampered": True}
        seed, count = self.burst_seed
        for call, metas, digests in zip(calls, described, committed):
            reference = self.burst.outputs(int(call))
            if not isinstance(metas, list) or not isinstance(digests, list) or len(metas) != len(reference) \
                    or len(digests) != len(reference):
                return {**reply, "reason": "the candidate's worker described its burst outputs wrongly", "tampered": True}
            read = [self.reader.read(meta) for meta in metas]
            unreadable = next((r for r in read if isinstance(r, str)), None)
            if unreadable:
                return {**reply, "reason": unreadable}
            for leaf, value in zip(read, digests):
                if not isinstance(leaf, torch.Tensor) or not burst.digest_matches(leaf, seed, value):
                    return {**reply, "tampered": True, "reason": f"the outputs of call {int(call) + 1} of a verification "
                            "burst are not those the candidate's worker committed to in its answer"}
            out_r = reference[0] if self.burst.single else reference
            candidate = read[0] if self.burst.single else read
            atol, rtol = checks.tolerances(out_r, self.options.atol, self.options.rtol)
            reason = checks.compare(candidate, out_r, atol, rtol)
            if reason is not None and checks.VALUES_DIFFER in reason:
                truth = self.float64_reference(burst.call_seed(seed, int(call)))  # the call's own inputs, made again
                if truth is not None:
                    reason = checks.within_reference_error(candidate, out_r, truth, atol, rtol)
                    if reason is None:
                        reply["flags"].append("within_reference_error")
                del truth
            if reason:
                return {**reply, "reason": f"{reason} (call {int(call) + 1} of {count} of a verification burst)"}
        return {**reply, "reason": None}

    def poison(self) -> None:
        """The candidate's worker fills freed memory with NaN before each timed call: the same work here."""
        cuda = torch.device(self.device).type == "cuda"
        sizes = [n for n in self.output_bytes if cuda or n <= HOST_MMAP_BYTES] + ([64 * 1024 * 1024] if cuda else [])
        for nbytes in sizes:
            torch.empty(max(nbytes // 4, 1), dtype=torch.float32, device=self.device).fill_(float("nan"))

    def take_lock(self, shared: bool) -> dict:
        """Hold the device's lock until ``unlock``: shared while the candidate's first call compiles
        (beside other evaluations' first calls, never beside a clock), exclusive for the rest; with the
        seconds it waited for other processes to let go of it."""
        before = device_lock.waited_s()
        held = self.lock.enter_context(device_lock.exclusive(self.device, shared=shared))
        return {"kind": "locked", "held": held, "waited_s": round(device_lock.waited_s() - before, 4)}

    def memory_start(self) -> dict:
        memory.start(self.device)
        return {"kind": "memory"}

    def memory_peaks(self) -> dict:
        """The judge's peaks since ``memory_start``; what it still holds of the last candidate is freed."""
        self.kept.clear()
        self.burst = None
        peaks = {"peak_device_bytes": memory.peak_device_bytes(self.device), "peak_rss_bytes": memory.peak_rss_bytes()}
        memory.release(self.device)
        return {"kind": "memory", **peaks}

    def release_lock(self) -> dict:
        self.lock.close()
        return {"kind": "unlocked"}

    def roofline_ms(self, seed: int) -> dict:
        if torch.device(self.device).type != "cuda":
            return {"kind": "roofline", "ms": None}
        ceilings = roofline.ceilings_for(torch.cuda.get_device_name(torch.device(self.device)))
        if ceilings is None:
            return {"kind": "roofline", "ms": None}
        inputs = self.problem.inputs(seed, self.device)
        with torch.no_grad():
            out = self.reference(*inputs)
            flops = roofline.count_flops(lambda: self.reference(*inputs))
        dtype = next((v.dtype for v in inputs if isinstance(v, torch.Tensor) and v.is_floating_point()), torch.float32)
        return {"kind": "roofline", "ms": roofline.roofline_ms(roofline.tensor_bytes(inputs, out), flops, dtype, ceilings)}

    def degenerate(self) -> dict:
        reason = checks.degenerate_fingerprints(self.fingerprints)
        self.fingerprints = []
        return {"kind": "degenerate", "reason": reason}


def compile_cache_hits() -> int:
    """Inductor's FX graph cache hits in this process so far (a compile read back from the shared cache)."""
    from torch._dynamo.utils import counters

    return int(counters["inductor"]["fxgraph_cache_hit"])


def warm(problem_path: str, options: EvalOptions, modes: list[str]) -> dict:
    """Compile the torch.compile baselines once and keep nothing (``compile_cache.BaselineWarmer``): the
    shared compile cache then holds them for the judges that follow."""
    started = time.perf_counter()
    problem = load_problem(problem_path, small=options.small)
    compiled, errors = compile_baselines(problem, options, modes)
    return {"kind": "warm", "compiled": sorted(compiled), "errors": errors, "cache_hits": compile_cache_hits(),
            "compile_s": round(time.perf_counter() - started, 3)}


def compile_baselines(problem: Problem, options: EvalOptions, modes: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """torch.compile of a reference of its own for each mode, compiled by a first call (the device's lock
    shared: beside other compilations, never beside a clock). Returns (compiled by mode, error by mode):
    a baseline that cannot be built is reported, not fatal."""
    compiled, errors = {}, {}
    for mode in modes:
        try:
            model = baselines.compile_model(build_reference(problem, options), mode)
            inputs = problem.inputs(options.seed + 10_007, options.device)
            with torch.no_grad(), device_lock.shared(options.device):
                model(*inputs)
            sync(options.device)
            compiled[mode] = model
        except Exception as exc:
            errors[mode] = describe(exc)
    return compiled, errors


def measure_baselines(problem: Problem, options: EvalOptions, compiled: dict[str, Any]) -> tuple[dict, dict]:
    """Time each compiled baseline against eager, interleaved (at the judge's start, before any candidate).

    Returns (milliseconds by mode, error by mode)."""
    found, errors = {}, {}
    reference = build_reference(problem, options)
    inputs = problem.inputs(options.seed + 10_007, options.device)
    for mode, model in compiled.items():
        try:
            with torch.no_grad():
                measured = timing.time_interleaved(
                    {"eager": lambda: reference(*inputs), mode: lambda: model(*inputs)},
                    options.timing_trials, max(options.warmup, 3), options.device, budget_s=options.timing_budget_s)
            found[mode] = measured.median(mode)
        except Exception as exc:
            errors[mode] = describe(exc)
    return found, errors


def _commands(judge: Judge) -> dict[str, Callable[[dict], dict]]:
    return {
        "reference": lambda c: judge.reference_for(int(c["seed"]), c["tag"], bool(c.get("fingerprint"))),
        "check": lambda c: judge.check(c["tag"], c.get("leaves"), bool(c.get("keep")), c.get("buffers"),
                                       c.get("buffer_names")),
        "warmup": lambda c: judge.warmup(int(c["seed"]), int(c["calls"]), c.get("budget_s")),
        "round": lambda c: judge.timed_round(int(c["seed"]), c.get("baseline")),
        "burst": lambda c: judge.run_burst(int(c["seed"]), int(c["calls"]), bool(c.get("reseed"))),
        "burst_check": lambda c: judge.check_burst(c.get("calls"), c.get("leaves"), c.get("digests")),
        "lock": lambda c: judge.take_lock(bool(c.get("shared"))),
        "memory_start": lambda c: judge.memory_start(),
        "memory": lambda c: judge.memory_peaks(),
        "unlock": lambda c: judge.release_lock(),
        "roofline": lambda c: judge.roofline_ms(int(c["seed"])),
        "degenerate": lambda c: judge.degenerate(),
    }


def load(problem_path: str, options: EvalOptions, exchange: Path, to_measure: list[str]) -> tuple[Judge, dict]:
    """The judge of ``problem_path`` (its reference run once) and its ready message: the baselines in
    ``to_measure`` compiled (and timed, unless in the rounds), the start-up phases, the wait for the lock."""
    startup: dict[str, float] = {}
    waited_before = device_lock.waited_s()
    t0 = time.perf_counter()
    with device_lock.shared(options.device):  # a full-size forward: not beside another evaluation's clock
        problem = load_problem(problem_path, small=options.small)
        judge = Judge(problem, options, exchange)
        judge.run_reference(problem.inputs(options.seed, options.device))
    startup["judge_problem"] = round(time.perf_counter() - t0, 4)
    t0 = time.perf_counter()
    compiled, errors = compile_baselines(problem, options, to_measure)
    if compiled or errors:  # torch.compile's own compile: the competitor's, not the candidates' (engine/budget)
        startup[baselines.COMPILE_PHASE] = round(time.perf_counter() - t0, 4)
    found: dict[str, float] = {}
    if options.interleave_baselines:  # timed in each candidate's rounds, three-way
        judge.compiled, judge.baseline_errors = compiled, dict(errors)
    else:
        found, timing_errors = measure_baselines(problem, options, compiled)
        errors.update(timing_errors)
    return judge, {"kind": "ready", "versions": versions(options.device), "problem_hash": problem.hash,
                   "baselines": found, "baseline_errors": errors, "in_rounds": sorted(judge.compiled),
                   "startup_s": startup, "backend_flags": memory.backend_flags(),
                   "lock_wait_s": round(device_lock.waited_s() - waited_before, 4)}


def handle(payload: dict, next_command: Callable[[], dict | None]) -> Iterator[dict]:
    """Serve the problem of ``payload``; a ``problem`` command (between candidates) points this process at
    another problem file under the same options, as at start-up (``evaluate.evaluate_problems``)."""
    set_not_dumpable()  # no other process of this user may read this one's memory or descriptors
    faulthandler.enable()
    options = options_from(payload)
    exchange = Path(payload["exchange"])
    try:
        if torch.device(options.device).type == "cuda":
            if not torch.cuda.is_available():
                raise BadInput(f"device {options.device!r} is not available here (torch {torch.__version__} sees no CUDA GPU)")
            if torch.device(options.device).index is not None:
                torch.cuda.set_device(torch.device(options.device))
        imported = round(time.perf_counter() - _STARTED, 4)
        if payload.get("warm_only"):
            yield warm(payload["problem"], options, payload.get("baselines", []))
            return
        judge, ready = load(payload["problem"], options, exchange, payload.get("baselines", []))
        ready["startup_s"] = {"judge_import": imported, **ready["startup_s"]}
        yield ready
        commands = _commands(judge)
        while (command := next_command()) is not None and command.get("cmd") != "exit":
            if command["cmd"] == "problem":
                del judge, commands  # the last problem's reference and outputs go before the next one loads
                memory.release(options.device)
                judge, ready = load(command["problem"], options, exchange, command.get("baselines", []))
                commands = _commands(judge)
                yield ready
            else:
                yield commands[command["cmd"]](command)
    except BadInput as exc:
        yield {"kind": "bad_input", "reason": str(exc)}


if __name__ == "__main__":
    serve(handle)
