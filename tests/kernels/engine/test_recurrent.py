"""Recurrent networks and tensors made inside forward: a long nn.LSTM stays one PyTorch call (captured in
seconds), a short nn.GRU traces as cell math whose gates get kernels, a 0-d tensor made in forward is a
literal; each generated ModelNew matches the module (float64 oracle), run as built (training mode)."""

import time

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.capture import capture
from training_check import run_cases  # noqa: E402  (this directory's subprocess checker)

CASES = {
    "lstm_long": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True)
        self.head = nn.Linear(12, 3)
    def forward(self, x):
        return torch.tanh(self.head(self.lstm(x)[0]))

def get_inputs():
    return [torch.randn(2, 20, 4)]
''',
    "gru_short": '''
class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(4, 6, num_layers=2)
    def forward(self, x, h0):
        return self.gru(x, h0)[1]

def get_inputs():
    return [torch.randn(3, 2, 4), torch.randn(2, 2, 6)]
''',
    "literal_min": '''
class Model(nn.Module):
    def forward(self, x):
        return F.gelu(torch.min(x + 0.5, torch.tensor(0.25))) * 2.0

def get_inputs():
    return [torch.randn(8, 16)]
''',
}


@pytest.fixture(scope="module")
def results(tmp_path_factory, interpreter):
    return run_cases(interpreter, tmp_path_factory.mktemp("recurrent"), CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_model_matches_the_module(results, name):
    r = results[name]
    assert "error" not in r, r
    assert r["kernels"] >= 1 and r["kernel_calls"] >= 3, r
    assert r["out_err"] <= 2 * r["ref_err"] + 1e-5, r


def test_a_long_recurrence_is_one_vendor_call(results):
    assert any("whole recurrence" in why for why in results["lstm_long"]["fallbacks"])
    assert not any("whole recurrence" in why for why in results["gru_short"]["fallbacks"])


def test_a_deep_bidirectional_lstm_over_a_long_sequence_captures_in_seconds():
    model = nn.LSTM(8, 8, num_layers=6, bidirectional=True, batch_first=True).to("meta")
    start = time.monotonic()
    graph = capture(model, [torch.empty(2, 512, 8, device="meta")])
    assert time.monotonic() - start < 30  # tracing it step by step takes minutes
    assert [n.target for n in graph.nodes].count("aten.lstm.input") == 1


def test_a_run_with_nothing_to_lower_says_which_operators_it_holds():
    """A graph that is one whole recurrence gets no candidate on the CPU (on CUDA: a CUDA graph around it);
    the run's reason names the operator, and a budget that left candidates out keeps its own reason."""
    from qimeng.kernels.engine.budget import Budget
    from qimeng.kernels.engine.optimize import _nothing_proposed
    from qimeng.kernels.engine.search import SearchOutcome

    model = nn.GRU(8, 8, num_layers=3, batch_first=True).to("meta")
    graph = capture(model, [torch.empty(2, 512, 8, device="meta"), torch.empty(3, 2, 8, device="meta")])
    reason = _nothing_proposed(graph, SearchOutcome(None, None), Budget(60.0))["reason"]
    assert reason.startswith("no candidate") and "aten.gru.input" in reason
    skipped = Budget(60.0)
    skipped.skipped(2)
    assert _nothing_proposed(graph, SearchOutcome(None, None), skipped) == {}
