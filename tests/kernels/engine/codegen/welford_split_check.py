"""Run in a subprocess with TRITON_INTERPRET=1: a training-mode batch norm (+ ReLU) at small odd sizes,
lowered with the split Welford strategy (partials per segment, then the merging normalise pass), called
twice in training mode. Prints one JSON line per case: the errors of the output and of the running
statistics against a float64 copy of the model, and the strategies and kernel functions rendered."""

import copy
import json
import sys

import torch

from qimeng.kernels.engine.steps import KernelConfig
from interp_check import emitted  # noqa: E402  (this directory's modules)


def check(path: str, segments: int, block_r: int, index: int) -> dict:
    prob, graph, plan, module = emitted(path, KernelConfig("split", segments, block_r, 4), str(index))
    ref = prob.build(prob.model_cls, 0, "cpu", mode="train")
    new = prob.build(module.ModelNew, 0, "cpu", mode="train")
    new.load_state_dict(ref.state_dict())
    oracle = copy.deepcopy(ref).double()
    out_err = 0.0
    for seed in (1, 2):
        inputs = prob.inputs(seed, "cpu")
        with torch.no_grad():
            got = new(*inputs)
            exact = oracle(*[x.double() for x in inputs])
        out_err = max(out_err, (got.double() - exact).abs().max().item())
    buffers = {name: (b.double() - dict(oracle.named_buffers())[name].double()).abs().max().item()
               for name, b in new.named_buffers()}
    return {"path": path, "segments": segments, "out_err": out_err, "buffer_err": buffers,
            "strategies": sorted({u.rendered.config.strategy for u in plan.kernels}),
            "partials": sum("_partial(" in u.rendered.source for u in plan.kernels)}


if __name__ == "__main__":
    for i, (path, segments, block_r) in enumerate(json.loads(sys.argv[1])):
        try:
            print(json.dumps(check(path, segments, block_r, i)), flush=True)
        except Exception as exc:  # reported per case: the test names the failing one
            print(json.dumps({"path": path, "segments": segments, "error": f"{type(exc).__name__}: {exc}"[:2000]}),
                  flush=True)
