"""Training mode: ModelNew runs its own kernels when captured in training mode, with batch statistics
and the running statistics updated as PyTorch does (momentum, cumulative average), dropout(0) as the
identity and dropout(p > 0) as a PyTorch call on the same random stream. Checked against the PyTorch
model in training mode after several calls (outputs against a float64 copy, buffers, step counters;
two batch norms' buffers updated by one copy per dtype, their step counters by one in-place add)."""

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.capture import TensorMeta, capture
from training_check import run_cases  # noqa: E402  (this directory's subprocess checker)

CASES = {
    "bn2d_relu": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(6)
    def forward(self, x):
        return torch.relu(self.bn(x)) * 2.0

def get_inputs():
    return [torch.randn(4, 6, 5, 7) * 3 + 1]
''',
    "bn1d_cumulative": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(16, momentum=None)
    def forward(self, x):
        return self.bn(x) + 1.0

def get_inputs():
    return [torch.randn(12, 16) * 2 - 1]
''',
    "conv_bn_dropout0": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8, momentum=0.3)
        self.drop = nn.Dropout(0.0)
    def forward(self, x):
        return self.drop(F.silu(self.bn(self.conv(x))))

def get_inputs():
    return [torch.randn(2, 3, 8, 8)]
''',
    "two_bn_chain": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm2d(6)
        self.bn2 = nn.BatchNorm2d(6, momentum=None)
    def forward(self, x):
        return self.bn2(torch.relu(self.bn(x)) + x)

def get_inputs():
    return [torch.randn(3, 6, 5, 4) * 2 + 3]
''',
    "dropout_half": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)
    def forward(self, x):
        return self.drop(torch.tanh(x) * 3.0) + 1.0

def get_inputs():
    return [torch.randn(64, 33)]
''',
}


@pytest.fixture(scope="module")
def results(tmp_path_factory, interpreter):
    return run_cases(interpreter, tmp_path_factory.mktemp("training"), CASES)


@pytest.mark.parametrize("name", ["bn2d_relu", "bn1d_cumulative", "conv_bn_dropout0", "two_bn_chain"])
def test_batch_norm_in_training_mode_runs_kernels_and_updates_buffers(results, name):
    r = results[name]
    assert "error" not in r, r
    assert r["training"] and r["mode_specific"]
    assert {"bn.running_mean", "bn.running_var"} <= set(r["mutations"])
    if name == "bn1d_cumulative":  # the new count sets the average's factor: a graph value
        assert "bn.num_batches_tracked" in r["mutations"] and not r["increments"]
    else:  # only incremented: in place, out of the graph (one call for all counters)
        assert "bn.num_batches_tracked" in r["increments"] and "bn.num_batches_tracked" not in r["mutations"]
    assert r["kernel_calls"] >= 3 * r["kernels"] >= 3, r  # every call ran the generated kernels
    assert r["out_err"] <= 2 * r["ref_err"] + 1e-5, r  # as close to the float64 result as PyTorch is
    assert r["buffer_diff"] <= 1e-5, r  # running_mean / running_var / num_batches_tracked after 3 calls


def test_dropout_zero_is_the_identity(results):
    assert not any("dropout" in why for why in results["conv_bn_dropout0"]["fallbacks"])


def test_dropout_with_p_is_a_pytorch_call_and_the_rest_gets_kernels(results):
    r = results["dropout_half"]
    assert "error" not in r, r
    assert r["out_err"] != float("inf"), r  # same mask as the reference: the same random stream
    assert any("random numbers" in why for why in r["fallbacks"]) and r["kernels"] >= 1 and r["kernel_calls"] >= 3


def test_capture_leaves_the_buffers_as_they_were():
    model = nn.BatchNorm1d(4).train()
    graph = capture(model, [torch.randn(3, 4)])
    assert [t for _, t in graph.mutations] == ["running_mean", "running_var"]
    assert graph.increments == ["num_batches_tracked"] and all(n.meta.dtype != "int64" for n in graph.nodes
                                                                if isinstance(n.meta, TensorMeta))
    assert int(model.num_batches_tracked) == 0 and torch.equal(model.running_mean, torch.zeros(4))
