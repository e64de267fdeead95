"""Capture: core ATen graph with shapes/dtypes/strides; parameters named by state_dict keys."""

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.capture import CaptureError, TensorMeta, capture


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 16)
        self.layers = nn.Sequential(nn.LayerNorm(16))

    def forward(self, x, scale: float):
        return torch.softmax(self.layers(self.fc(x)) * scale, dim=-1), x.t()


def test_capture_records_inputs_nodes_and_metadata():
    graph = capture(_Block().eval(), [torch.randn(4, 8), 2.0])
    kinds = {i.target: i.kind for i in graph.inputs}
    assert kinds == {"fc.weight": "parameter", "fc.bias": "parameter", "layers.0.weight": "parameter",
                     "layers.0.bias": "parameter", "0": "user"}
    targets = [n.target for n in graph.nodes]
    assert "aten.addmm.default" in targets and "aten.amax.default" in targets
    assert "aten._softmax.default" not in targets and "aten.native_layer_norm.default" not in targets
    assert graph.user_args[1] == 2.0 and graph.user_args[0] == TensorMeta((4, 8), (8, 1), "float32")
    assert not graph.single_output and len(graph.outputs) == 2
    transposed = graph.meta(graph.outputs[1].name)
    assert transposed.shape == (8, 4) and transposed.stride == (1, 8)
    assert "addmm" in str(graph)


def test_a_forward_that_mutates_its_input_is_refused():
    class Inplace(nn.Module):
        def forward(self, x):
            return x.add_(1)

    with pytest.raises(CaptureError, match="mutates its inputs"):
        capture(Inplace(), [torch.randn(3, 4)])


def test_data_dependent_control_flow_is_a_capture_error():
    class Branchy(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x - 1

    with pytest.raises(CaptureError):
        capture(Branchy(), [torch.randn(3)])


class _Attention(nn.Module):
    def forward(self, q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.5)


def test_sdpa_stays_one_node_while_softmax_is_decomposed():
    q = torch.randn(1, 2, 5, 4)
    graph = capture(_Attention(), [q, q.clone(), q.clone()])
    assert [n.target for n in graph.nodes] == ["aten.scaled_dot_product_attention.default"]
    assert graph.nodes[0].args[3:] == (None, 0.0, True) and graph.nodes[0].kwargs == {"scale": 0.5}
    softmax = capture(nn.Softmax(-1), [q])
    assert "aten.amax.default" in {n.target for n in softmax.nodes}


def test_a_value_read_into_python_is_a_capture_error():
    class Loop(nn.Module):
        def forward(self, x):
            out = x
            for k in x[:2].round().abs().long().tolist():  # exports with the values as unbacked symbols
                out = out * (k + 1)
            return out

    with pytest.raises(CaptureError, match=r"\.item\(\) / \.tolist\(\)"):
        capture(Loop(), [torch.randn(4)])


class _NormStack(nn.Module):
    def __init__(self, track: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4, track_running_stats=track)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


@pytest.mark.parametrize("model, training, exports, mode_specific", [
    (_NormStack(), True, 1, True),  # running statistics updated: eval mode computes something else, no 2nd export
    (_NormStack(), False, 2, True),  # eval mode reads them: training mode is exported to tell
    (_NormStack(track=False), True, 2, False),  # batch statistics in both modes: no running statistics
    (_Block(), True, 2, False),  # nothing depends on the mode
])
def test_the_other_mode_is_exported_only_when_the_running_statistics_do_not_tell(monkeypatch, model, training,
                                                                                exports, mode_specific):
    import qimeng.kernels.engine.capture as capture_module

    calls = []
    real = capture_module._export
    monkeypatch.setattr(capture_module, "_export", lambda m, a: (calls.append(m.training), real(m, a))[1])
    args = [torch.randn(2, 3, 8, 8)] if isinstance(model, _NormStack) else [torch.randn(4, 8), 2.0]
    graph = capture(model.train(training), args)
    assert len(calls) == exports and graph.mode_specific is mode_specific and model.training is training
