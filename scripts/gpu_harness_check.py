"""GPU check of the evaluation harness: planted GPU cheats and faults must get the right status (a
candidate that patches its last output in the verification bursts, ``burst_incremental``, included),
honest Triton candidates must pass, and a hung kernel must be freed quickly. Prints a short table; exits
1 when any candidate gets a status other than the expected one. Honest Triton candidates on a small problem
(calls of about 10 us) must also be verified by the harness's clock (no ``timing_unverified``). For
every candidate whose timing needed verification bursts it prints their figures: calls per burst, the
claimed and the measured time per call, and the bursts' resolution. With ``--size-gib S`` it then
evaluates an honest Triton candidate on an elementwise problem whose inputs and output are S GiB each,
and prints what the trusted path costs: each stage's wall time, the timed rounds' overhead per side,
and the harness clock's resolution (``outside_clock``).

    python scripts/gpu_harness_check.py [--device cuda:0] [--timeout 20] [--size-gib 1]

Run by scripts/gpu_check.sh (stage ``harness``) on the H100.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qimeng.core.verdict import Status  # noqa: E402
from qimeng.kernels.harness.evaluate import evaluate_many  # noqa: E402
from qimeng.kernels.result import EvalOptions, EvalResult  # noqa: E402

CHEATS = Path(__file__).resolve().parents[1] / "tests" / "kernels" / "harness" / "cheats"


def fixture(name: str, constants: dict[str, str]) -> str:
    """A file of the CPU tests' cheats folder (a problem or a candidate), with module-level constants set:
    ``{"N": "4096"}`` rewrites the line ``N = ...``."""
    source = (CHEATS / f"{name}.py").read_text()
    for left, value in constants.items():
        source, count = re.subn(rf"^{re.escape(left)} = .*$", f"{left} = {value}", source, flags=re.M)
        if count != 1:
            raise ValueError(f"{CHEATS / name}.py: no single line '{left} = ...' to set")
    return source


def elementwise(n: int) -> str:
    """relu(x * scale + y) on two n x n inputs (cheats/problem_scale_relu.py)."""
    return fixture("problem_scale_relu", {"N": str(n), "SMALL": '{"N": %d}' % n})


SOFTMAX = '''
import torch
import torch.nn as nn

ROWS, COLS = 8192, 1024


class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1)


def get_inputs():
    return [torch.randn(ROWS, COLS)]


def get_init_inputs():
    return []
'''

HEADER = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl
'''

MODEL = '''

class ModelNew(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
{body}
'''

KERNEL = '''

@triton.jit
def scale_add_relu(x_ptr, y_ptr, out_ptr, scale, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    v = tl.maximum(tl.load(x_ptr + offs, mask=mask) * scale + tl.load(y_ptr + offs, mask=mask), 0.0)
    tl.store(out_ptr + offs, v, mask=mask)
'''

ELEMENTWISE_CANDIDATES: dict[str, tuple[Status, str]] = {
    "triton_honest": (Status.OK, HEADER + KERNEL + MODEL.format(body='''
        out = torch.empty_like(x)
        n = x.numel()
        scale_add_relu[(triton.cdiv(n, 4096),)](x, y, out, self.scale, n, BLOCK=4096)
        return out''')),
    "side_stream": (Status.OK, HEADER + MODEL.format(body='''
        stream = torch.cuda.Stream()
        with torch.cuda.stream(stream):  # returns before the work is done; no sync with the caller
            return torch.relu(x * self.scale + y)''')),
    "uninitialised_cuda": (Status.INCORRECT, HEADER + MODEL.format(body='''
        return torch.empty_like(x)''')),
    "inplace_kernel": (Status.INCORRECT, HEADER + KERNEL + MODEL.format(body='''
        n = x.numel()
        scale_add_relu[(triton.cdiv(n, 4096),)](x, y, x, self.scale, n, BLOCK=4096)
        return x''')),
    "hung_kernel": (Status.TIMEOUT, HEADER + '''

@triton.jit
def spin(flag_ptr, out_ptr):
    i = 0
    while tl.load(flag_ptr, volatile=True) == 0:
        i += 1
    tl.store(out_ptr, i)
''' + MODEL.format(body='''
        flag = torch.zeros(1, dtype=torch.int32, device=x.device)
        spin[(1,)](flag, flag)
        return torch.relu(x * self.scale + y)''')),
    "illegal_access": (Status.RUNTIME_ERROR, HEADER + '''

@triton.jit
def wild_store(out_ptr, n, BLOCK: tl.constexpr):
    offs = (tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)).to(tl.int64) + (1 << 40)  # terabytes past the end
    tl.store(out_ptr + offs, 1.0)
''' + MODEL.format(body='''
        out = torch.relu(x * self.scale + y)
        wild_store[(4,)](out, out.numel(), BLOCK=1024)
        return out''')),
    "after_crash_honest": (Status.OK, HEADER + MODEL.format(body='''
        return torch.relu(torch.addcmul(y, x, torch.full_like(x, self.scale)))''')),
}

SHORT_CANDIDATES: dict[str, tuple[Status, str]] = {  # 512 x 512: calls of about 10 us, to be verified
    "short_triton_honest": ELEMENTWISE_CANDIDATES["triton_honest"],
    "short_torch_honest": ELEMENTWISE_CANDIDATES["after_crash_honest"],
}

SOFTMAX_CANDIDATES: dict[str, tuple[Status, str]] = {
    "triton_softmax": (Status.OK, HEADER + '''

@triton.jit
def softmax_rows(x_ptr, out_ptr, cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < cols
    x = tl.load(x_ptr + row * cols + offs, mask=mask, other=-float("inf"))
    e = tl.exp(x - tl.max(x, axis=0))
    tl.store(out_ptr + row * cols + offs, e / tl.sum(e, axis=0), mask=mask)


class ModelNew(nn.Module):
    def forward(self, x):
        x = x.contiguous()
        out = torch.empty_like(x)
        rows, cols = x.shape
        softmax_rows[(rows,)](x, out, cols, BLOCK=triton.next_power_of_2(cols))
        return out
'''),
}

MATMUL = fixture("problem_rows_matmul", {"ROWS, K, N": "2048, 4096, 1024"})  # each output row from one input row

MATMUL_CANDIDATES: dict[str, tuple[Status, str]] = {
    "matmul_kept": (Status.OK, '''
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, k, n):
        super().__init__()
        self.w = nn.Parameter(torch.empty(k, n))

    def forward(self, x):
        return x @ self.w
'''),
    # claims a fifth of each call (a lie below the rounds' resolution) and, in bursts, recomputes only the
    # rows of x that changed since its last call: while a burst changed one block of the input per call,
    # the bursts verified the lie
    "burst_incremental": (Status.REJECTED, fixture("burst_incremental", {})),
}


BIG = '''
import torch
import torch.nn as nn

N = {numel}


class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, x, y):
        return torch.relu(x * self.scale + y)


def get_inputs():
    return [torch.randn(N, device="cuda"), torch.randn(N, device="cuda")]  # made on the device


def get_init_inputs():
    return [2.0]
'''


BURSTS: list[dict[str, object]] = []  # the verification bursts' figures, in the order they ran


def _spy_on_bursts() -> None:
    """Record each candidate's verification bursts (outside_clock.check_bursts runs in this process)."""
    from qimeng.kernels.harness import outside_clock
    from qimeng.kernels.harness.stats import quantile

    real = outside_clock.check_bursts

    def spy(raw: outside_clock.Bursts, claimed_ms: float) -> tuple[str | None, bool]:
        verdict = real(raw, claimed_ms)
        discounted = raw.discounted()
        BURSTS.append({"calls": raw.calls, "claimed_ms": claimed_ms, "resolution_ms": raw.resolution_ms(),
                       "measured_ms": quantile(raw.per_call_ms(), 0.5),
                       "discounted_ms": quantile(discounted.per_call_ms(), 0.5), "verified": verdict[1],
                       "refuted": verdict[0] is not None, "judge_wall_ms": raw.judge_wall_ms,
                       "worker_wall_ms": raw.worker_wall_ms, "judge_call_ms": raw.judge_call_ms})
        return verdict

    outside_clock.check_bursts = spy


def _burst_line(figures: dict[str, object] | None) -> str:
    if figures is None:
        return "no bursts"
    return (f"bursts: {figures['calls']} calls, claimed {figures['claimed_ms']:.4f} ms, measured "
            f"{figures['measured_ms']:.4f} ms (less waits for a core {figures['discounted_ms']:.4f}), "
            f"resolution {figures['resolution_ms']:.5f} ms, "
            + ("refuted" if figures["refuted"] else "verified" if figures["verified"] else "unverified")
            + "\n" + " " * 21 + "walls (ms), judge / worker / judge per call: "
            + "; ".join(f"{j:.2f}/{w:.2f}/{c:.4f}" for j, w, c in zip(figures["judge_wall_ms"], figures["worker_wall_ms"],
                                                                  figures["judge_call_ms"])))


def trusted_path_cost(size_gib: float, options: EvalOptions, workdir: Path) -> int:
    """Evaluate an honest candidate on a problem of ``size_gib`` per tensor; print what each stage cost."""
    import time

    from qimeng.kernels.harness import outside_clock
    from qimeng.kernels.harness.stats import quantile

    seen: dict[str, float] = {}
    real_check = outside_clock.check

    def spy(judge: outside_clock.Rounds, worker: outside_clock.Rounds) -> str | None:
        hidden, noise = outside_clock.hidden_ms(judge, worker)
        seen.update(judge_overhead_ms=quantile(judge.unclaimed_ms(), 0.5),
                    worker_overhead_ms=quantile(worker.unclaimed_ms(), 0.5), hidden_median_ms=hidden, hidden_noise_ms=noise,
                    resolution_ms=outside_clock.resolution_ms(judge, worker, outside_clock.verify_allowance("cuda")))
        return real_check(judge, worker)

    outside_clock.check = spy
    problem = workdir / "big_scale_add_relu.py"
    problem.write_text(BIG.format(numel=int(size_gib * 2**30 // 4)))
    ran = len(BURSTS)
    started = time.perf_counter()
    [result] = evaluate_many(problem, [ELEMENTWISE_CANDIDATES["triton_honest"][1]], options)
    wall = time.perf_counter() - started
    outside_clock.check = real_check
    print(f"\ntrusted path on {size_gib:g} GiB per tensor: {result.status.value} {result.reason[:120]}")
    print(f"  end to end {wall:.1f} s; stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.phases_s.items()))
    if result.candidate_ms is not None:
        print(f"  reference {result.ref_ms:.3f} ms, candidate {result.candidate_ms:.3f} ms, speed-up "
              f"{result.speedup:.2f}, flags {result.flags}")
    rounds = options.timing_trials
    if "timing" in result.phases_s:
        print(f"  timing: {1e3 * result.phases_s['timing'] / rounds:.1f} ms per round (both sides, {rounds} rounds)")
    for key, value in seen.items():
        print(f"  {key}: {value:.3f}")
    print("  " + _burst_line(BURSTS[ran] if len(BURSTS) > ran else None))
    return 0 if result.status is Status.OK else 1


def run(problem_source: str, candidates: dict[str, tuple[Status, str]], options: EvalOptions,
        workdir: Path, name: str) -> list[tuple[str, Status, EvalResult, dict | None]]:
    """Evaluate the candidates of one problem in shared workers; (name, expected, result, bursts) rows."""
    problem = workdir / f"{name}.py"
    problem.write_text(problem_source)
    bursts: dict[int, dict] = {}
    seen = [len(BURSTS)]

    def on_result(index: int, result: EvalResult) -> None:
        if len(BURSTS) > seen[0]:
            bursts[index] = BURSTS[-1]
        seen[0] = len(BURSTS)

    results = evaluate_many(problem, [source for _, source in candidates.values()], options, on_result=on_result)
    return [(cand, expected, result, bursts.get(i))
            for i, ((cand, (expected, _)), result) in enumerate(zip(candidates.items(), results))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--timeout", type=float, default=20.0, help="per-candidate timeout (the hung kernel's)")
    parser.add_argument("--size-gib", type=float, default=0.0, help="also measure the trusted path on this size")
    parser.add_argument("--timing-trials", type=int, default=20, help="timed rounds of the --size-gib problem")
    args = parser.parse_args()
    options = EvalOptions(device=args.device, timeout_s=args.timeout)
    _spy_on_bursts()
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(elementwise(4096), ELEMENTWISE_CANDIDATES, options, Path(tmp), "scale_add_relu")
        rows += run(elementwise(512), SHORT_CANDIDATES, options, Path(tmp), "short_scale_add_relu")
        rows += run(SOFTMAX, SOFTMAX_CANDIDATES, options, Path(tmp), "softmax_rows")
        rows += run(MATMUL, MATMUL_CANDIDATES, options, Path(tmp), "rows_matmul")
    failures = 0
    print(f"{'candidate':20} {'expected':14} {'got':14} {'check':5} {'speedup':>8} {'own%':>5}  reason / flags")
    for name, expected, result, bursts in rows:
        good = result.status is expected
        if name == "side_stream":
            # its work is timed, not hidden: no clean win. The work left running after the end event is
            # flagged, or it was left below the flag's threshold and the claim is out of the clean scores
            # (unverified) or refuted by the bursts
            good = (good and result.speedup is not None and result.speedup < 1.5
                    and bool({"work_left_on_side_stream", "timing_unverified"} & set(result.flags))) or (
                    result.status is Status.REJECTED and "calls back to back" in result.reason)
        if name.startswith("short_") and good:  # calls of ~10 us: verified by the bursts
            good = "timing_unverified" not in result.flags
        failures += not good
        speedup = "-" if result.speedup is None else f"{result.speedup:.2f}"
        share = "-" if result.own_kernel_share is None else f"{100 * result.own_kernel_share:.0f}"
        detail = (result.reason or "")[:90] + (f" flags={result.flags}" if result.flags else "")
        print(f"{name:20} {expected.value:14} {result.status.value:14} {'PASS' if good else 'FAIL':5} "
              f"{speedup:>8} {share:>5}  {detail}")
        if result.candidate_ms is not None or bursts is not None:
            print(f"{'':20} candidate {result.candidate_ms if result.candidate_ms is not None else float('nan'):.4f} ms; "
                  + _burst_line(bursts))
    hung = next(r for n, _, r, _ in rows if n == "hung_kernel")
    freed = re.search(r"process gone ([0-9.]+) s after SIGKILL", hung.reason)
    print(f"\nspinning kernel freed {freed.group(1) if freed else '?'} s after SIGKILL (timeout {args.timeout:g} s)")
    print(f"{len(rows) - failures}/{len(rows)} candidates got the expected status")
    if args.size_gib > 0:
        big = EvalOptions(device=args.device, timeout_s=max(args.timeout, 300.0), timing_trials=args.timing_trials,
                          warmup=3, kernel_share=False)
        with tempfile.TemporaryDirectory() as tmp:
            failures += trusted_path_cost(args.size_gib, big, Path(tmp))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
