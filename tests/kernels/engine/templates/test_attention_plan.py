"""The attention template in the engine: what ``attention_match`` recognises (and why it refuses), the
policy's proposals, and model_new.py with the attention unit under the Triton interpreter against the
problem's Model in float64 (one subprocess)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qimeng.kernels.engine.capture import capture
from qimeng.kernels.engine.lowering_plan import build_plan
from qimeng.kernels.engine.policies.expert import ExpertPolicy
from qimeng.kernels.engine.steps import Schedule
from qimeng.kernels.engine.templates.attention_match import attention_of
from qimeng.kernels.engine.templates.attention_plan import variants
from qimeng.kernels.engine.templates.plan import TemplateUnit, with_templates

sys.path.insert(0, str(Path(__file__).parent))
from attention_plan_interp_check import CASES  # noqa: E402


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention_plan")
    script = Path(__file__).with_name("attention_plan_interp_check.py")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(Path(__file__).parents[4]),
           "QIMENG_WORK_DIR": str(root / "work")}
    proc = subprocess.run([sys.executable, str(script), json.dumps(list(CASES))], capture_output=True, text=True,
                          env=env, timeout=400, cwd=root)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(CASES), proc.stderr[-3000:]
    return root, {r["name"]: r for r in lines}


@pytest.mark.parametrize("name", list(CASES))
def test_model_new_with_the_attention_unit_matches_float64(outcomes, name):
    result = outcomes[1][name]
    assert result["ok"], result
    assert result["kernels"] == 0 and result["fallbacks"] == {}  # the softmax kernels went into the unit
    assert not (outcomes[0] / "work" / "templates").exists()  # model_new.py is self-contained


def test_a_mask_made_in_forward_from_a_buffer_is_computed_by_the_unit(outcomes):
    # the mask's nodes were fused into the softmax kernel the unit replaced: it computes them as PyTorch calls
    assert outcomes[1]["hand_buffer_mask_made_in_forward"]["mask_lines"] == ["slice_1", "slice_2", "eq"]


def test_the_notes_say_what_was_recognised(outcomes):
    notes = {name: r["notes"][0] for name, r in outcomes[1].items()}
    assert notes["hand_additive_3d_bmm"].endswith("B=3 H=1 M=21 N=29 D=24, additive mask")
    assert "H=4/2 kv" in notes["sdpa_gqa_bool_mask"] and notes["sdpa_gqa_bool_mask"].startswith("tf32x3")
    assert notes["sdpa_additive_bf16_policy"].startswith("bf16")


class _Hand(torch.nn.Module):
    def __init__(self, tail: str = "causal"):
        super().__init__()
        self.tail = tail

    def forward(self, q, k, v):
        s = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
        if self.tail == "causal":
            s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
        elif self.tail == "scores_mask":  # the mask reads the scores: they are read outside the attention
            s = s.masked_fill(s > 1.0, float("-inf"))
        elif self.tail == "self_add":
            s = s + s
        elif self.tail == "two_masks":
            s = s.masked_fill(q[..., :1] > 0, float("-inf")) + q[..., :1]
        p = torch.softmax(s, dim=-1)
        if self.tail == "dropout":
            p = F.dropout(p, 0.5, training=True)
        return p @ v, (s if self.tail == "scores_out" else q)


def _anchor(graph):
    return next(n for n in reversed(graph.nodes) if n.target == "aten.bmm.default")


def _qkv(m=13, n=13):
    return [torch.randn(2, 2, m, 8), torch.randn(2, 2, n, 8), torch.randn(2, 2, n, 8)]


def test_a_constant_triangular_mask_becomes_causal_and_its_kernel_goes_into_the_unit():
    graph = capture(_Hand(), _qkv())
    att = attention_of(graph, _anchor(graph))
    assert att.causal and att.mask is None and att.scale == pytest.approx(1 / math.sqrt(8))
    policy = ExpertPolicy()
    state = policy.main_line(graph, Schedule(), through="layout")  # the stages before templates
    proposals = policy.propose(graph, state, "templates")
    first = {s.node: s.variant for s in proposals[0].steps}
    assert first[_anchor(graph).name] == "tf32x3" and {s.variant for s in proposals[1].steps} == {"ieee"}
    plan = with_templates(graph, build_plan(graph, state), proposals[0].schedule, "cpu")
    units = [u for u in plan.units if isinstance(u, TemplateUnit)]
    assert len(units) == 1 and not plan.kernels and "causal" in units[0].note
    assert "torch.ops.aten" not in "\n".join(units[0].lines)  # the mask's nodes are not computed at all


@pytest.mark.parametrize("tail, why", [("scores_mask", "is read elsewhere"), ("two_masks", "two masks"),
                                       ("dropout", "no softmax before"), ("self_add", "the scores themselves"),
                                       ("scores_out", "is read elsewhere")])
def test_what_is_not_one_attention_is_refused_with_its_reason(tail, why):
    graph = capture(_Hand(tail), _qkv())
    assert why in attention_of(graph, _anchor(graph))


class _Sdpa(torch.nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **self.kwargs)


def test_sdpa_stays_one_node_and_its_arguments_are_read():
    q, k, v = _qkv(7, 9)
    graph = capture(_Sdpa(dropout_p=0.0, scale=0.5), [q, k[:, :1], v[:, :1]])
    (node,) = [n for n in graph.nodes if "attention" in n.target]
    assert node.target == "aten.scaled_dot_product_attention.default"
    assert "query heads" in attention_of(graph, node)  # 2 and 1 heads without enable_gqa
    graph = capture(_Sdpa(scale=0.5, enable_gqa=True), [q, k[:, :1], v[:, :1]])
    att = attention_of(graph, graph.nodes[-1])
    assert att.sizes == (2, 2, 1, 7, 9, 8) and att.scale == 0.5 and not att.empty_nan
    assert variants("strict", att) == ["tf32x3", "ieee"] and variants("strict", att, {8: "ieee"}) == ["ieee"]
    half = capture(_Sdpa(), [t.to(torch.bfloat16) for t in (q, k, v)])
    assert variants("strict", attention_of(half, half.nodes[-1])) == ["bf16"]
    big = capture(_Sdpa(), [torch.randn(1, 1, 4, 320)] * 3)
    assert "at most 256" in attention_of(big, big.nodes[-1])


def test_attention_units_are_tuned_through_template_config_steps():
    from qimeng.kernels.engine.steps import TemplateConfig
    from qimeng.kernels.engine.templates.attention import AttentionConfig, curated_configs, default_config
    from qimeng.kernels.engine.tuning import template_trials

    graph = capture(_Hand(), _qkv())  # the bmm form: its anchor is a bmm, tuned as attention, not as a GEMM
    policy = ExpertPolicy()
    state = policy.main_line(graph, Schedule(), through="layout")
    schedule = policy.propose(graph, state, "templates")[0].schedule
    plan = with_templates(graph, build_plan(graph, state), schedule, "cpu")
    [unit] = [u for u in plan.units if isinstance(u, TemplateUnit)]
    default = default_config(8, "strict").launch()
    assert unit.configs == ((f"{unit.node.name}/tf32x3", default), (f"{unit.node.name}/tf32", default))
    [(node, key, steps)] = template_trials(graph, plan, schedule, "cpu")
    assert node == unit.node.name and key.startswith("attention ") and "2x2x2x13x13x8 causal=True" in key
    assert 1 <= len(steps) <= 5 and all(len(s.config) == 4 and s.config != default for s in steps)
    assert [AttentionConfig(*s.config) for s in steps] == curated_configs(8, "strict")[1:6]
    tuned = steps[0].apply(schedule, {})
    again = with_templates(graph, build_plan(graph, state), tuned, "cpu")
    [unit] = [u for u in again.units if isinstance(u, TemplateUnit)]
    lines = "\n".join(unit.lines)
    assert repr(steps[0].config) in lines.split("else:")[-1]  # strict's call; TF32's keeps its own tile
    [(_, _, later)] = template_trials(graph, again, tuned, "cpu")
    assert TemplateConfig(node, "tf32x3", steps[0].config) not in later and default in [s.config for s in later]
