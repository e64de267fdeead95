"""The LLM policy against a real local OpenAI-protocol server: valid JSON steps are applied; malformed or
invalid proposals are rejected with their reason and asked again exactly once."""

from __future__ import annotations

import json

from fake_openai_server import FakeOpenAIServer

from qimeng.kernels.engine.policies.llm import propose, step_schema
from qimeng.kernels.engine.steps import STEP_TYPES, FusePointwise, LowerOps, Schedule
from qimeng.llm.client import LLMClient
from qimeng.settings import LLMSettings

NODES = ["relu", "mul", "sum_1"]
ORDER = {n: i for i, n in enumerate(NODES)}
GRAPH = "relu = aten.relu(x)\nmul = aten.mul(relu, 2)\nsum_1 = aten.sum(mul, [1])"
VALID = ('Plan:\n```json\n{"steps": [{"kind": "lower_ops", "nodes": ["relu", "mul"]}, '
         '{"kind": "fuse_pointwise", "producer": "relu", "consumer": "mul"}]}\n```')


def client(url: str) -> LLMClient:
    return LLMClient(LLMSettings(base_url=url, model="fake", backoff_s=0.01, timeout_s=5.0))


def test_valid_steps_are_applied_and_the_request_carries_graph_schedule_and_vocabulary() -> None:
    with FakeOpenAIServer([VALID]) as server:
        proposal = propose(client(server.url), GRAPH, NODES, ORDER, Schedule())
    assert proposal.accepted and proposal.rejections == []
    assert proposal.steps == [LowerOps(("relu", "mul")), FusePointwise("relu", "mul")]
    assert proposal.schedule.groups == (("relu", "mul"),)  # hand-applied: both nodes in one kernel
    asked = server.requests[0]["messages"][-1]["content"]
    assert GRAPH in asked and all(f'"{kind}"' in asked for kind in STEP_TYPES)


def test_malformed_json_is_rejected_with_its_reason_and_asked_again_once() -> None:
    with FakeOpenAIServer(['{"steps": [ {"kind": "lower_ops", nodes: ["relu"]} ]}', VALID]) as server:
        proposal = propose(client(server.url), GRAPH, NODES, ORDER, Schedule())
    assert proposal.accepted and len(server.requests) == 2
    assert len(proposal.rejections) == 1 and "not valid JSON" in proposal.rejections[0]
    assert proposal.rejections[0] in server.requests[1]["messages"][-1]["content"]


def test_two_invalid_proposals_are_rejected_and_no_third_request_is_made() -> None:
    unknown_node = json.dumps({"steps": [{"kind": "fuse_pointwise", "producer": "relu", "consumer": "tanh"}]})
    not_applicable = json.dumps({"steps": [{"kind": "reduction_strategy", "kernel": "sum_1", "strategy": "online"}]})
    with FakeOpenAIServer([unknown_node, not_applicable, VALID]) as server:
        proposal = propose(client(server.url), GRAPH, NODES, ORDER, Schedule())
    assert not proposal.accepted and proposal.steps == [] and len(server.requests) == 2
    assert "nodes not in the graph: tanh" in proposal.rejections[0]
    assert "sum_1 is not in a kernel" in proposal.rejections[1]


def test_bad_kind_field_and_value_are_each_named() -> None:
    cases = [({"kind": "vectorize_all"}, "unknown step kind 'vectorize_all'"),
             ({"kind": "lower_ops", "nodes": ["relu"], "fast": True}, "unknown ['fast']"),
             ({"kind": "precision", "policy": "fp8"}, "policy must be one of strict, tf32, bf16"),
             ({"kind": "block_config", "kernel": "relu", "config": {"block_p": -4}}, "non-negative integers")]
    answers = [json.dumps({"steps": [step]}) for step, _ in cases]
    with FakeOpenAIServer(answers) as server:
        first = propose(client(server.url), GRAPH, NODES, ORDER, Schedule())
        second = propose(client(server.url), GRAPH, NODES, ORDER, Schedule())
    reasons = first.rejections + second.rejections
    assert len(reasons) == 4 and all(why in got for (_, why), got in zip(cases, reasons))


def test_the_schema_names_every_step_kind_and_limits_node_fields_to_the_graph() -> None:
    schema = step_schema(NODES)
    kinds = schema["properties"]["steps"]["items"]["oneOf"]
    assert sorted(k["properties"]["kind"]["const"] for k in kinds) == sorted(STEP_TYPES)
    fuse = next(k for k in kinds if k["title"] == "fuse_pointwise")
    assert fuse["required"] == ["kind", "producer", "consumer"] and fuse["properties"]["producer"]["enum"] == NODES
    lower = next(k for k in kinds if k["title"] == "lower_ops")
    assert lower["properties"]["nodes"] == {"type": "array", "items": {"type": "string", "enum": NODES}, "minItems": 1}


def test_a_code_region_request_is_accepted_only_on_a_pytorch_call_of_the_plan() -> None:
    ask = json.dumps({"steps": [{"kind": "code_region", "node": "sum_1"}]})
    wrong = json.dumps({"steps": [{"kind": "code_region", "node": "relu"}]})
    with FakeOpenAIServer([wrong, ask]) as server:
        proposal = propose(client(server.url), GRAPH, NODES, ORDER, Schedule(), codable=["sum_1"])
    assert proposal.accepted and proposal.steps == [] and proposal.regions == ["sum_1"]
    assert "naming a PyTorch call of the current plan (sum_1)" in proposal.rejections[0]
    assert '"code_region"' in server.requests[0]["messages"][-1]["content"]
    assert "code_region" not in json.dumps(step_schema(NODES))  # offered only when the plan has such calls
