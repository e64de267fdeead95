"""Run as ``python dynamic_check.py MODEL_NEW [DEVICE]`` (on the CPU with TRITON_INTERPRET=1): what a user
of a shape-generic model_new.py relies on. Prints one line per check, ``ok ...`` or ``skip ...``, and
fails (an assertion) on the first one that does not hold:

- ``other-batch``: ModelNew at a batch that is not the captured one (odd) runs its own kernels (every
  launcher is wrapped and counted; no guard-miss warning) and matches a float64 copy of Model;
- ``compile``: torch.compile(ModelNew) matches too;
- ``speed`` (CUDA only): torch.compile(ModelNew) is not slower than ModelNew: both timed in this process
  with CUDA events, interleaved rounds, medians compared with 10% slack;
- ``cuda-graph`` (CUDA only): ModelNew captured in a CUDA graph and replayed on new inputs matches eager.

The problem comes from model_new.py itself (it starts with the problem's source: Model, get_inputs,
get_init_inputs).
"""

import importlib.util
import statistics
import sys
import warnings

import torch

SLACK = 1.10
ROUNDS, CALLS = 15, 20


def load(path: str):
    spec = importlib.util.spec_from_file_location("candidate", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def count_launches(mod) -> list[int]:
    """Wrap every generated launcher of ``mod`` so that each launch appends to the returned list."""
    ran: list[int] = []
    for name in [n for n in dir(mod) if n.startswith("_launch_")]:
        launch = getattr(mod, name)
        setattr(mod, name, lambda *a, _f=launch: (ran.append(1), _f(*a))[1])
    return ran


def other_batch(mod, device: str, larger: bool = False) -> list[torch.Tensor]:
    """The problem's inputs at an odd batch other than the captured one (axis 0 of each tensor of that size):
    about half the captured one, or (``larger``) just under twice it."""
    captured = mod.get_inputs()
    batch = next(x.shape[0] for x in captured if isinstance(x, torch.Tensor) and x.dim())
    rows = 2 * batch - 1 if larger else batch // 2 + 1 if batch > 2 else batch + 1
    rows += 1 - rows % 2  # odd: no multiple of any block size
    if rows == batch:
        rows += 2
    return [torch.randn(rows, *x.shape[1:], device=device) if isinstance(x, torch.Tensor) and x.dim()
            and x.shape[0] == batch and x.is_floating_point() else x for x in captured]


def close(out, expected) -> bool:
    return torch.allclose(out.double(), expected, atol=1e-4, rtol=1e-4)


def round_ms(fn, inputs) -> float:
    """One round on the GPU: CALLS back-to-back calls, milliseconds per call by CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(CALLS):
        fn(*inputs)
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / CALLS


def main(path: str, device: str) -> None:
    mod = load(path)
    torch.manual_seed(0)
    ref = mod.Model(*mod.get_init_inputs()).to(device).double().eval()
    new = mod.ModelNew(*mod.get_init_inputs()).to(device).eval()
    new.load_state_dict({k: v.float() for k, v in ref.state_dict().items()})
    ran = count_launches(mod)
    xs = other_batch(mod, device)
    expected = ref(*[x.double() if isinstance(x, torch.Tensor) else x for x in xs])
    with torch.no_grad():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert close(new(*xs), expected), "ModelNew differs from float64 at another batch"
        assert ran, "no generated kernel ran at another batch"
        assert not [w for w in caught if "no generated kernels" in str(w.message)], "a guard miss at another batch"
        print(f"ok other-batch {list(xs[0].shape)}: {len(ran)} launches, matches float64")
        compiled = torch.compile(new)
        assert close(compiled(*xs), expected), "torch.compile(ModelNew) differs from float64"
        print("ok compile")
        if device != "cuda":
            print("skip speed, cuda-graph: CPU")
            return
        timed = other_batch(mod, device, larger=True)  # more GPU work than either side's host time per call
        if not mod._qm_guard(timed):
            timed = xs
        for _ in range(3):  # warm both up (compilation, autotuning, caches)
            new(*timed), compiled(*timed)
        torch.cuda.synchronize()
        eager_ms, compiled_ms = [], []
        for _ in range(ROUNDS):
            eager_ms.append(round_ms(new, timed))
            compiled_ms.append(round_ms(compiled, timed))
        eager, comp = statistics.median(eager_ms), statistics.median(compiled_ms)
        assert comp <= eager * SLACK, f"torch.compile(ModelNew) {comp:.4f} ms is slower than ModelNew {eager:.4f} ms"
        print(f"ok speed at {list(timed[0].shape)}: ModelNew {eager:.4f} ms, torch.compile(ModelNew) {comp:.4f} ms "
              f"(medians of {ROUNDS})")
        static = [x.clone() if isinstance(x, torch.Tensor) else x for x in xs]
        new(*static)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = new(*static)
        fresh = [torch.randn_like(x) if isinstance(x, torch.Tensor) else x for x in xs]
        for s, f in zip(static, fresh):
            if isinstance(s, torch.Tensor):
                s.copy_(f)
        graph.replay()
        torch.cuda.synchronize()
        replayed = static_out.double()
        assert torch.allclose(replayed, new(*fresh).double(), atol=1e-5, rtol=1e-5), "CUDA graph replay differs"
        assert close(static_out, ref(*[x.double() if isinstance(x, torch.Tensor) else x for x in fresh]))
        print("ok cuda-graph")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "cpu")
