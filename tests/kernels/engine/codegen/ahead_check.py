"""Run in a subprocess with TRITON_INTERPRET=1: render a problem's main line under a reduction strategy,
load its ``model_new.py``, keep the launch sites it registered for compilation ahead (``codegen/ahead.py``),
then call the forward with every launch recorded (the interpreter's ``run``). Prints one JSON line per
case: the registered and the launched signatures (kernel, pointer dtypes, sizes, constexprs, warps,
stages) and whether the output matches the module's."""

import json
import sys

import torch
from triton.runtime.interpreter import InterpretedFunction

from interp_check import STRATEGIES, emitted  # noqa: E402  (this directory's modules)


def _signature(name, pointers, sizes, consts) -> str:
    return json.dumps([name, list(pointers), list(sizes), sorted(consts.items())])


def check(path: str, strategy: str, index: int) -> dict:
    # "templates": the main line through the templates stage (convolution, depthwise and pooling kernels)
    prob, graph, plan, module = emitted(path, STRATEGIES.get(strategy), f"{strategy}.ahead.{index}",
                                        through="templates" if strategy == "templates" else "siblings")
    registered = sorted({_signature(k.__name__, [str(d).removeprefix("torch.") for d in dtypes], sizes,
                                    {**consts, "num_warps": warps, **({} if stages is None else {"num_stages": stages})})
                         for k, dtypes, sizes, consts, warps, stages in module._QM_AHEAD})
    launched = set()
    run = InterpretedFunction.run

    def record(self, *args, grid, warmup, **kwargs):
        pointers = [str(a.dtype).removeprefix("torch.") for a in args if isinstance(a, torch.Tensor)]
        sizes = [a for a in args if not isinstance(a, torch.Tensor)]
        launched.add(_signature(self.__name__, pointers, sizes, kwargs))
        return run(self, *args, grid=grid, warmup=warmup, **kwargs)

    mode = "train" if graph.training else "eval"
    ref = prob.build(prob.model_cls, 0, "cpu", mode=mode)
    new = prob.build(module.ModelNew, 0, "cpu", mode=mode)
    new.load_state_dict(ref.state_dict())
    inputs = prob.inputs(1, "cpu")
    InterpretedFunction.run = record
    try:
        with torch.no_grad():
            got = new(*inputs)
    finally:
        InterpretedFunction.run = run
    with torch.no_grad():
        expected = ref(*inputs)
    return {"path": path, "strategy": strategy, "registered": registered, "launched": sorted(launched),
            "left": len(module._QM_AHEAD), "ok": bool(torch.allclose(got, expected, atol=1e-4, rtol=1e-4)),
            "strategies": sorted({u.rendered.config.strategy for u in plan.kernels})}


if __name__ == "__main__":
    for i, (path, strategy) in enumerate(json.loads(sys.argv[1])):
        try:
            print(json.dumps(check(path, strategy, i)), flush=True)
        except Exception as exc:  # reported per case: the test names the failing one
            print(json.dumps({"path": path, "strategy": strategy, "error": f"{type(exc).__name__}: {exc}"[:2000]}),
                  flush=True)
