"""On a CUDA GPU: ``optimize`` finishes a problem within the time target, verified and not slower
than eager; a second run reuses the tuning cache."""

import time
from pathlib import Path

import pytest
import torch

from qimeng.kernels.store import Store
from qimeng.kernels.engine.optimize import optimize

ROOT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.mark.parametrize("problem", ["fused/01_silu_mul_add.py", "norm/01_layer_norm.py", "loss/01_mse.py"])
def test_optimize_on_the_gpu_is_verified_fast_and_quick(tmp_path, problem):
    store = Store(tmp_path / "store.db")
    start = time.monotonic()
    result = optimize(ROOT / "problems" / problem, tmp_path / "out", device="cuda", store=store, log=lambda m: None)
    assert time.monotonic() - start < 120
    assert result.status in ("optimized", "reference")
    assert result.speedup is None or result.speedup >= 0.97
    again = optimize(ROOT / "problems" / problem, tmp_path / "again", device="cuda", store=store, log=lambda m: None)
    assert again.status == result.status
    store.close()
