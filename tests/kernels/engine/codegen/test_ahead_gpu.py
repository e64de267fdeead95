"""On a CUDA GPU: the kernels ``model_new.py`` compiles ahead of its first call are the ones its launches
look up. The oracle is Triton's own per-device cache of compiled kernels: the launches after the
compilation ahead add nothing to it, and the output matches the module's."""

from __future__ import annotations

import pytest
import torch

from interp_check import STRATEGIES, emitted  # noqa: E402  (this directory's modules)
from test_ahead import CONV_STACK, ROW_SUMS
from test_welford_split import PROBLEM as BATCH_NORM

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def _compiled(kernels) -> int:
    """How many binaries Triton holds for these kernels, over all devices."""
    if not all(hasattr(k, "device_caches") for k in kernels):
        pytest.skip("this Triton keeps no device_caches on its JIT functions")
    return sum(len(cache[0]) for k in kernels for cache in k.device_caches.values())


@pytest.mark.parametrize("name,source,strategy", [("batch_norm", BATCH_NORM.format(n=32, c=24, h=56, w=56), "default"),
                                                  ("batch_norm", BATCH_NORM.format(n=32, c=24, h=56, w=56), "split"),
                                                  ("row_sums", ROW_SUMS.replace("(6, 3000)", "(64, 100003)"), "split"),
                                                  ("conv_stack", CONV_STACK.replace("(2, 3, 16, 16)", "(32, 3, 64, 64)"),
                                                   "templates")])
def test_launches_after_the_compilation_ahead_compile_nothing(tmp_path, name, source, strategy):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    prob, graph, _, module = emitted(str(path), STRATEGIES.get(strategy), strategy, "cuda",
                                     through="templates" if strategy == "templates" else "siblings")
    kernels = list({id(site[0]): site[0] for site in module._QM_AHEAD}.values())
    assert len(module._QM_AHEAD) >= 2 and _compiled(kernels) == 0
    seen = {}
    compile_ahead = module._qm_compile_ahead

    def counted():
        compile_ahead()
        seen["ahead"] = _compiled(kernels)

    module._qm_compile_ahead = counted
    mode = "train" if graph.training else "eval"
    ref = prob.build(prob.model_cls, 0, "cuda", mode=mode)
    new = prob.build(module.ModelNew, 0, "cuda", mode=mode)
    new.load_state_dict(ref.state_dict())
    inputs = prob.inputs(1, "cuda")
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # the templates' strict variant, which float64 judges at 1e-4
    try:
        with torch.no_grad():
            got = new(*inputs)
            expected = ref.double()(*[x.double() for x in inputs]).float()
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    assert seen["ahead"] >= len(kernels)  # every kernel compiled before the first launch
    assert _compiled(kernels) == seen["ahead"]  # and the launches found them
    assert not module._QM_AHEAD
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
