"""The one device default of eval, bench and optimize: auto resolves to cuda when visible, else cpu."""

from __future__ import annotations

import pytest
import torch

from qimeng.core.devices import cuda_device_count, resolve_device
from qimeng.core.verdict import BadInput


def test_auto_is_cuda_when_visible_else_cpu():
    assert resolve_device("auto", lambda: 0)[0] == "cpu"
    device, line = resolve_device("auto", lambda: 2)
    assert device == "cuda" and "2 CUDA device(s)" in line
    assert resolve_device("cpu", lambda: 2) == ("cpu", "device: cpu")


def test_an_unusable_device_is_bad_input_before_any_work():
    with pytest.raises(BadInput, match="no CUDA device is visible"):
        resolve_device("cuda", lambda: 0)
    with pytest.raises(BadInput, match="only 2 CUDA device"):
        resolve_device("cuda:2", lambda: 2)
    assert resolve_device("cuda:1", lambda: 2)[0] == "cuda:1"
    with pytest.raises(BadInput, match="unknown device 'gpu'"):
        resolve_device("gpu", lambda: 1)


def test_the_probe_counts_what_torch_sees_here():
    expected = torch.cuda.device_count() if torch.cuda.is_available() else 0
    assert cuda_device_count() == expected
