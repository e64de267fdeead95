"""The CudaGraph step's run time (``cuda_graph.GRAPHED_RUNTIME``): which calls it graphs, when a graph is
stale, and on a GPU that replays match the module call for call, running statistics included."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn as nn

from qimeng.kernels.engine.cuda_graph import GRAPHED_RUNTIME


def runtime() -> dict:
    namespace: dict = {"torch": torch}
    exec(compile(GRAPHED_RUNTIME, "<graphed runtime>", "exec"), namespace)
    return namespace


class Block(nn.Module):
    """A training-mode batch norm between two pointwise ops: it updates its running statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(8)

    def forward(self, x: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
        return torch.relu(self.bn(x * scale))

    _qm_forward = forward  # as a generated ModelNew names its fast path


def test_cpu_tensors_values_and_inputs_asking_for_gradients_are_not_graphed():
    rt = runtime()
    key = rt["_qm_graph_key"]
    assert key([torch.ones(2)]) is None  # a CPU tensor: no CUDA graph
    assert key([object()]) is None  # not a tensor nor a plain value
    block, x = Block(), torch.randn(4, 8)
    out = rt["_qm_graphed"](block, (x, 3.0))  # falls back to the forward itself
    reference = Block()
    torch.testing.assert_close(out, reference(x, 3.0), rtol=0, atol=0)
    torch.testing.assert_close(block.bn.running_mean, reference.bn.running_mean, rtol=0, atol=0)
    assert block._qm_graphs == {}


def test_a_graph_is_stale_once_a_parameter_or_buffer_is_replaced_or_moved():
    rt = runtime()
    block = Block()
    state = rt["_qm_graph_state"](block)
    assert len(state) == 5  # weight, bias, running mean, running var, batches tracked
    assert rt["_qm_graph_current"](state)
    block.bn.weight.data = block.bn.weight.data.clone()  # same Parameter object, new memory (.half(), .to())
    assert not rt["_qm_graph_current"](state)
    state = rt["_qm_graph_state"](block)
    block.bn.bias = nn.Parameter(torch.zeros(8))  # a new Parameter
    assert not rt["_qm_graph_current"](state)
    state = rt["_qm_graph_state"](block)
    with torch.no_grad():
        block.bn.load_state_dict(Block().bn.state_dict())  # copied in place: the graph still reads them
    assert rt["_qm_graph_current"](state)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_replays_match_the_module_call_for_call_and_update_running_statistics_once_each():
    rt = runtime()
    torch.manual_seed(0)
    graphed, reference = Block().cuda(), Block().cuda()
    graphed.load_state_dict(reference.state_dict())
    outputs = []
    for k in range(4):
        x = torch.randn(64, 8, device="cuda")
        out = rt["_qm_graphed"](graphed, (x, 2.0))
        outputs.append(out)
        torch.testing.assert_close(out, reference(x, 2.0), rtol=1e-5, atol=1e-5)
    assert len(graphed._qm_graphs) == 1 and graphed._qm_graphs[next(iter(graphed._qm_graphs))] is not None
    assert outputs[0].data_ptr() != outputs[1].data_ptr()  # the caller's copies, not the graph's output
    for name, buffer in reference.bn.state_dict().items():
        torch.testing.assert_close(graphed.bn.state_dict()[name], buffer, rtol=1e-6, atol=1e-6)
    assert int(graphed.bn.num_batches_tracked) == 4


PROBLEM = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        return torch.relu(self.fc(x)).sum(dim=-1)


def get_inputs():
    return [torch.randn(8, 16)]


def get_init_inputs():
    return []
'''


def test_a_rendered_candidate_replays_its_forward_and_runs_it_plainly_off_the_gpu(tmp_path):
    """The graph step on a schedule of vendor calls only (a launch-bound forward need not have our
    kernels): rendered, its forward goes through ``_qm_graphed``; on the CPU that runs the forward as it is."""
    from qimeng.kernels.engine.capture import capture
    from qimeng.kernels.engine.render import render_schedule
    from qimeng.kernels.engine.steps import Schedule

    namespace: dict = {}
    exec(compile(PROBLEM, "<problem>", "exec"), namespace)
    model = namespace["Model"]()
    x = torch.randn(8, 16)
    graph = capture(model, [x])
    made = render_schedule(PROBLEM, namespace["Model"], graph, Schedule(cuda_graph=True), "cuda")
    assert "one CUDA graph" in made.note and "return _qm_graphed(self, _qm_args)" in made.source
    path = tmp_path / "model_new.py"
    path.write_text(made.source)
    spec = importlib.util.spec_from_file_location("model_new_graphed", path)
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)  # Triton's @jit helpers need a file
    new = generated.ModelNew()
    new.load_state_dict(model.state_dict())
    reference = (torch.relu(x.double() @ model.fc.weight.double().T + model.fc.bias.double())).sum(dim=-1)
    torch.testing.assert_close(new(x).double(), reference, rtol=1e-5, atol=1e-5)
