"""End to end on the CPU: ``optimize`` of a pooling alone (max with indices) and of a convolution + ReLU +
pooling (the ReLU computed by the pooling at each tap) from problems/pooling ends with the pooling kernel in
the winner, verified by the harness under the Triton interpreter; the written model_new.py is then run
against the problem's Model in float64 at its SMALL sizes (odd: no multiple of the block), indices equal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qimeng.kernels.engine.optimize import optimize

PROBLEMS = Path(__file__).parents[4] / "problems" / "pooling"
CASES = {"maxpool2d_indices": "01_maxpool2d_indices.py", "conv3d_relu_avgpool": "06_conv3d_relu_avgpool.py"}
ORACLE = '''
import importlib.util, json, sys, torch
spec = importlib.util.spec_from_file_location("candidate", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
torch.manual_seed(0)
new = mod.ModelNew(*mod.get_init_inputs())
ref = mod.Model(*mod.get_init_inputs())
ref.load_state_dict(new.state_dict())
torch.manual_seed(3)
inputs = mod.get_inputs()
with torch.no_grad():
    refs = ref.double()(*[x.double() for x in inputs])
    mod.Model.forward = None  # the generated path must run
    outs = new(*inputs)
outs, refs = (outs, refs) if isinstance(outs, tuple) else ((outs,), (refs,))
ratio = max(float(((o.double() - r).abs() / (1e-4 + 1e-4 * r.abs())).max()) if r.is_floating_point()
            else (0.0 if torch.equal(o, r) else float("inf")) for o, r in zip(outs, refs))
print(json.dumps({"ratio": ratio, "shapes": [list(o.shape) for o in outs]}))
'''


@pytest.fixture(scope="module")
def optimized(tmp_path_factory):
    root = tmp_path_factory.mktemp("pool_optimize")
    results = {}
    for name, file in CASES.items():
        logs: list[str] = []
        result = optimize(PROBLEMS / file, root / name, device="cpu", budget_s=200, static=True, log=logs.append)
        results[name] = (result, root / name, logs)
    return results


@pytest.mark.parametrize("name, note", [("maxpool2d_indices", "max pooling kernel 3x3, stride (2, 2)"),
                                        ("conv3d_relu_avgpool", "the pointwise kernel before it computed at each tap")])
def test_the_winner_computes_the_pooling_with_its_kernel(optimized, name, note):
    result, out, logs = optimized[name]
    assert result.status == "optimized", (result.first_failure, logs[-5:])
    source = (out / "model_new.py").read_text()
    assert "_qm_pool_" in source and "pool2d_with_indices.default(" not in source
    assert "avg_pool3d.default(" not in source and note in (out / "report.md").read_text()
    assert any("[templates]" in line and "-> accepted" in line for line in logs)


def float64_check(out: Path, tmp_path: Path) -> dict:
    """ORACLE on ``out``'s model_new.py at its problem's SMALL sizes (what the CPU run captured), under the
    Triton interpreter in a subprocess: its output shapes and error ratio against the float64 model."""
    candidate = tmp_path / "model_new.py"
    source = (out / "model_new.py").read_text()
    candidate.write_text(source.replace("SMALL = {", "_SMALL = {") + "\nglobals().update(_SMALL)\n")
    env = {**os.environ, "TRITON_INTERPRET": "1", "QIMENG_WORK_DIR": str(tmp_path / "work")}
    proc = subprocess.run([sys.executable, "-c", ORACLE, str(candidate)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("name, shapes", [("maxpool2d_indices", [[2, 3, 9, 10], [2, 3, 9, 10]]),
                                          ("conv3d_relu_avgpool", [[2, 4, 2, 4, 4]])])
def test_model_new_matches_the_float64_model(optimized, name, shapes, tmp_path):
    checked = float64_check(optimized[name][1], tmp_path)
    assert checked["shapes"] == shapes and checked["ratio"] <= 1.0, checked
