"""The LLM micro coder against a real local OpenAI-protocol server and the real harness (CPU, Triton
interpreter): a region the symbolic coder cannot render (aten.scatter_add) is verified alone, as a
sub-problem, against PyTorch; a failure goes back with the harness's reason, at most K times."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "llm"))
from fake_openai_server import FakeOpenAIServer  # noqa: E402

from qimeng.kernels.engine.capture import capture  # noqa: E402
from qimeng.kernels.engine.emit import emit_model_new  # noqa: E402
from qimeng.kernels.engine.lowering_plan import build_plan  # noqa: E402
from qimeng.kernels.engine.micro_coder import code_region, coder_regions, region_of  # noqa: E402
from qimeng.kernels.engine.policies.expert import node_order  # noqa: E402
from qimeng.kernels.engine.steps import LowerOps, Schedule  # noqa: E402
from qimeng.kernels.result import EvalOptions  # noqa: E402
from qimeng.llm.client import LLMClient  # noqa: E402
from qimeng.settings import LLMSettings  # noqa: E402

KERNEL = '''
import torch
import triton
import triton.language as tl


@triton.jit
def _scatter_add_rows(out_ptr, idx_ptr, src_ptr, out_cols, idx_cols, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    row = offs // idx_cols
    idx = tl.load(idx_ptr + offs, mask=mask, other=0)
    val = tl.load(src_ptr + offs, mask=mask, other=0.0)
    tl.atomic_add(out_ptr + row * out_cols + idx, val, mask=mask)


def qm_region_scatter_add(x, idx, src):
    out = x.contiguous().clone()
    idx, src = idx.contiguous(), src.contiguous()
    n = idx.numel()
    _scatter_add_rows[(triton.cdiv(n, 256),)](out, idx, src, out.shape[1], idx.shape[1], n, BLOCK=256)
    return out
'''
CORRECT = f"Here it is:\n```python\n{KERNEL}```\n"
# a store instead of an atomic add: colliding indices keep one value, not their sum
WRONG = CORRECT.replace("tl.atomic_add(out_ptr + row * out_cols + idx, val, mask=mask)",
                        "tl.store(out_ptr + row * out_cols + idx, val, mask=mask)")
OPTIONS = EvalOptions(device="cpu", correctness_trials=2, timing_trials=0, warmup=0, baselines=("eager",),
                      timeout_s=300.0)


class ScatterAdd(torch.nn.Module):
    def forward(self, x, idx, src):
        return x.scatter_add(1, idx, src) @ torch.ones(48, 4)


@pytest.fixture(scope="module")
def graph():
    return capture(ScatterAdd(), [torch.randn(8, 48), torch.randint(0, 8, (8, 48)), torch.randn(8, 48)])


def region(graph):
    schedule = LowerOps(tuple(n.name for n in graph.nodes)).apply(Schedule(), node_order(graph))
    [node] = coder_regions(build_plan(graph, schedule))
    return region_of(graph, node)


def client(url: str) -> LLMClient:
    return LLMClient(LLMSettings(base_url=url, model="fake-coder", backoff_s=0.01, timeout_s=10.0))


def test_only_regions_without_a_lowering_go_to_the_coder(graph) -> None:
    r = region(graph)  # the GEMM after it stays a vendor call, not a region
    assert r.node.target == "aten.scatter_add.default" and r.params == ["x", "idx", "src"]
    assert [m.dtype for m in r.metas] == ["float32", "int64", "float32"]


def test_correct_code_is_verified_as_a_sub_problem_in_one_request(graph) -> None:
    with FakeOpenAIServer([CORRECT]) as server:
        result = code_region(client(server.url), graph, region(graph), OPTIONS, target="cpu")
    assert [a.status for a in result.attempts] == ["ok"] and len(server.requests) == 1
    assert result.code is not None and "tl.atomic_add" in result.code
    asked = server.requests[0]["messages"][-1]["content"]
    assert "torch.ops.aten.scatter_add.default(x, 1, idx, src)" in asked
    assert "idx: int64 shape [8, 48] strides [48, 1]" in asked and "def qm_region_scatter_add(x, idx, src):" in asked


def test_failing_code_gets_the_harness_reason_back_and_the_fix_is_verified(graph) -> None:
    with FakeOpenAIServer([WRONG, CORRECT]) as server:
        result = code_region(client(server.url), graph, region(graph), OPTIONS, target="cpu")
    assert [a.status for a in result.attempts] == ["incorrect", "ok"] and len(server.requests) == 2
    reason = result.attempts[0].reason
    assert reason and f"failed verification: incorrect: {reason}" in server.requests[1]["messages"][-1]["content"]
    assert server.requests[1]["messages"][-2]["content"] == WRONG  # the conversation goes on from the answer


def test_no_code_block_is_asked_again_k_times_then_given_up(graph) -> None:
    prose = "You could use tl.atomic_add for this."
    with FakeOpenAIServer([prose] * 5) as server:
        result = code_region(client(server.url), graph, region(graph), OPTIONS, debug_rounds=2, target="cpu")
    assert result.code is None and [a.status for a in result.attempts] == ["no_code"] * 3
    assert len(server.requests) == 3  # K = 2 debug rounds after the first answer
    assert "no ```python block" in server.requests[2]["messages"][-1]["content"]


def test_a_coded_region_replaces_the_pytorch_call_in_model_new(graph) -> None:
    r = region(graph)
    schedule = LowerOps(tuple(n.name for n in graph.nodes)).apply(Schedule(), node_order(graph))
    source = emit_model_new("class Model: pass", ScatterAdd, graph, build_plan(graph, schedule), "cpu",
                            regions={r.node.name: (KERNEL, r.function)})
    assert "scatter_add = qm_region_scatter_add(x, idx, src)" in source and "def _scatter_add_rows" in source
    assert "torch.ops.aten.scatter_add" not in source


def test_the_region_code_runs_in_a_worker_that_sees_no_llm_key(graph, monkeypatch) -> None:
    monkeypatch.setenv("QIMENG_LLM_API_KEY", "sk-region-planted")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-planted")
    leaky = ("```python\nimport os\n\n\ndef qm_region_scatter_add(x, idx, src):\n"
             "    seen = sorted(k for k, v in os.environ.items() if 'KEY' in k or 'sk-' in v)\n"
             "    raise RuntimeError(f'planted-marker saw={seen} PATH={\"PATH\" in os.environ}')\n```\n")
    with FakeOpenAIServer([leaky]) as server:
        result = code_region(client(server.url), graph, region(graph), OPTIONS, debug_rounds=0, target="cpu")
    reason = result.attempts[0].reason
    assert result.code is None and "planted-marker saw=[] PATH=True" in reason, reason
