"""The LLM policy (macro thinking): a model proposes the next macro steps as JSON; qimeng validates them.

The model is given the captured graph, the current schedule (with whatever measurements the caller has:
kernel times, roofline bounds) and the step vocabulary as a JSON Schema (from ``steps.STEP_TYPES``).
It answers ``{"steps": [...]}``. A proposal is rejected, with the reason, when it is not JSON, names an
unknown kind, field or graph node, has a value of the wrong type, or cannot be applied to the schedule;
the model is then asked again, once. Accepted steps are only proposals: the search renders, verifies
and times them like the expert's.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Sequence

from qimeng.kernels.engine.steps import (PRECISIONS, STEP_TYPES, STRATEGIES, BlockConfig, KernelConfig, Schedule,
                                         Step, step_from_json)
from qimeng.llm.client import LLMClient, LLMError
from qimeng.llm.prompts import Message, feedback, system, user

STAGE = "llm"
CODE_REGION = "code_region"  # not a schedule step: a request for the micro coder
CODE_REGION_DOC = ("Ask the micro coder (a model) for a Triton kernel replacing one node that is a PyTorch call in "
                   "the current plan; it is verified alone, then in the whole program.")
TASK_KIND = "kernel-plan"  # the insights of this task kind
TASK = "choose macro optimisation steps (fusion, reduction strategy, block configs) for a PyTorch graph"
# Fields of the step kinds that name graph nodes (one name, or a list of names).
NODE_FIELDS = frozenset({"nodes", "producer", "consumer", "reduction", "gemm", "chain", "first", "second", "kernel",
                         "convs"})
_CHOICES = {"strategy": STRATEGIES, "policy": PRECISIONS}
_JSON_BLOCK = re.compile(r"```(?:json)?[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)

SYSTEM = ("You plan optimisations of a PyTorch program lowered to Triton kernels. You choose macro steps only "
          "(which nodes to fuse, reduction strategies, block configurations, precision); qimeng writes, "
          "verifies and times the code.")


@dataclass
class LLMProposal:
    """What the model proposed: the steps (empty when rejected), the schedule they make, and the reasons of
    every rejected answer (at most two answers are asked for)."""

    steps: list[Step]
    schedule: Schedule | None
    rejections: list[str] = field(default_factory=list)
    error: LLMError | None = None  # the request itself failed
    answer_text: str = ""  # the accepted answer
    cached: bool = False  # the accepted answer came from the response cache
    regions: list[str] = field(default_factory=list)  # nodes the answer asks the micro coder for

    @property
    def accepted(self) -> bool:
        return self.schedule is not None


def step_schema(nodes: Sequence[str], codable: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON Schema of an answer: ``{"steps": [...]}``, one subschema per step kind of ``steps.STEP_TYPES``,
    with node fields limited to the graph's ``nodes``, and ``code_region`` when ``codable`` names nodes."""
    kinds = []
    for kind, cls in STEP_TYPES.items():
        hints = typing.get_type_hints(cls)
        fields = {f.name: _field_schema(f.name, hints[f.name], list(nodes)) for f in dataclasses.fields(cls)}
        kinds.append({"title": kind, "description": " ".join((cls.__doc__ or "").split()), "type": "object",
                      "properties": {"kind": {"const": kind}, **fields}, "required": ["kind", *fields],
                      "additionalProperties": False})
    if codable:
        kinds.append({"title": CODE_REGION, "description": CODE_REGION_DOC, "type": "object",
                      "properties": {"kind": {"const": CODE_REGION}, "node": {"type": "string", "enum": list(codable)}},
                      "required": ["kind", "node"], "additionalProperties": False})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "required": ["steps"],
            "properties": {"steps": {"type": "array", "minItems": 1, "items": {"oneOf": kinds}}},
            "additionalProperties": False}


def _field_schema(name: str, hint: Any, nodes: list[str]) -> dict[str, Any]:
    if hint is KernelConfig:
        sizes = {f.name: {"type": "integer", "minimum": 0} for f in dataclasses.fields(KernelConfig)
                 if f.name != "strategy"}
        return {"type": "object", "properties": {"strategy": {"enum": ["auto", *STRATEGIES]}, **sizes},
                "additionalProperties": False}
    if name in NODE_FIELDS:
        node = {"type": "string", "enum": nodes}
        return {"type": "array", "items": node, "minItems": 1} if typing.get_origin(hint) is tuple else node
    if name in _CHOICES:
        return {"enum": list(_CHOICES[name])}
    return {"type": {int: "integer", float: "number", str: "string", bool: "boolean"}.get(hint, "string")}


def request_messages(graph_text: str, nodes: Sequence[str], schedule: Schedule, measurements: str = "",
                     lessons: str = "", codable: Sequence[str] = ()) -> list[Message]:
    """The request: the graph, the current schedule and what was measured of it, the steps' JSON Schema."""
    return [system(SYSTEM + ("\n\n" + lessons if lessons else "")), user(
        f"Captured graph (core ATen):\n{graph_text}\n\n"
        f"Current schedule (kernel groups by node name, their configs, precision):\n"
        f"{json.dumps(schedule.to_json())}\n\n"
        + (f"Measurements of the current plan:\n{measurements}\n\n" if measurements else "")
        + f"JSON Schema of the answer (the step vocabulary):\n{json.dumps(step_schema(nodes, codable), indent=1)}\n\n"
        "Propose the next steps, applied in order to the current schedule. Answer with one JSON object "
        '{"steps": [{"kind": ..., <fields>}, ...]} '
        "in a fenced ```json block.")]


def parse_steps(answer: str, nodes: Sequence[str], schedule: Schedule, order: dict[str, int],
                codable: Sequence[str] = ()) -> tuple[list[Step], Schedule, list[str]] | str:
    """The steps of an answer, the schedule they make and the nodes it asks the micro coder for (``code_region``
    items, allowed on ``codable`` nodes only), or the reason the answer is rejected."""
    blocks = _JSON_BLOCK.findall(answer)
    text = blocks[-1] if blocks else answer
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    raw = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(raw, list) or not raw:
        return 'the answer must be an object {"steps": [...]} with at least one step'
    steps: list[Step] = []
    regions: list[str] = []
    for i, item in enumerate(raw):
        if isinstance(item, dict) and item.get("kind") == CODE_REGION:
            if set(item) != {"kind", "node"} or item["node"] not in codable:
                return (f"step {i}: code_region takes one field, node, naming a PyTorch call of the current plan "
                        f"({', '.join(codable) or 'there is none'})")
            regions.append(item["node"])
            continue
        problem = _check_step(item, set(nodes))
        if problem:
            return f"step {i}: {problem}"
        steps.append(step_from_json(item))
    for i, step in enumerate(steps):
        try:
            schedule = step.apply(schedule, order)
        except (AssertionError, KeyError) as exc:
            return f"step {i} ({step.kind}) cannot be applied to the schedule: {exc}"
    return steps, schedule, list(dict.fromkeys(regions))


def _check_step(item: Any, nodes: set[str]) -> str:
    if not isinstance(item, dict) or item.get("kind") not in STEP_TYPES:
        kind = item.get("kind") if isinstance(item, dict) else item
        return f"unknown step kind {kind!r} (known: {', '.join(STEP_TYPES)})"
    cls = STEP_TYPES[item["kind"]]
    expected = {f.name for f in dataclasses.fields(cls)}
    given = set(item) - {"kind"}
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        return f"{item['kind']} takes fields {sorted(expected)}" + (f"; missing {missing}" if missing else "") + (
            f"; unknown {extra}" if extra else "")
    for name, value in item.items():
        if name in NODE_FIELDS:
            names = value if isinstance(value, list) else [value]
            if not names or not all(isinstance(n, str) for n in names):
                return f"{name} must name graph nodes"
            unknown = [n for n in names if n not in nodes]
            if unknown:
                return f"{name} names nodes not in the graph: {', '.join(unknown)}"
        if name in _CHOICES and value not in _CHOICES[name]:
            return f"{name} must be one of {', '.join(_CHOICES[name])}, not {value!r}"
    if cls is BlockConfig:
        config = item["config"]
        known = {f.name for f in dataclasses.fields(KernelConfig)}
        if not isinstance(config, dict) or set(config) - known:
            return f"config must be an object with fields among {sorted(known)}"
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for k, v in config.items() if k != "strategy"):
            return "config sizes must be non-negative integers"
        if config.get("strategy", "auto") not in (*STRATEGIES, "auto"):
            return f"config strategy must be one of auto, {', '.join(STRATEGIES)}"
    return ""


def propose(client: LLMClient, graph_text: str, nodes: Sequence[str], order: dict[str, int], schedule: Schedule,
            measurements: str = "", lessons: str = "", seed: int | None = None,
            codable: Sequence[str] = ()) -> LLMProposal:
    """Ask for the next steps; an invalid answer is sent back with its reason, once."""
    conversation = request_messages(graph_text, nodes, schedule, measurements, lessons, codable)
    rejections: list[str] = []
    for _ in range(2):
        answer = client.complete(conversation, seed=seed)
        if isinstance(answer, LLMError):
            return LLMProposal([], None, rejections, answer)
        parsed = parse_steps(answer.text, nodes, schedule, order, codable)
        if not isinstance(parsed, str):
            return LLMProposal(parsed[0], parsed[1], rejections, answer_text=answer.text, cached=answer.cached,
                               regions=parsed[2])
        rejections.append(parsed)
        conversation = feedback(conversation, answer.text,
                                f"Rejected: {parsed}. Answer again with a corrected JSON object in a ```json block.")
    return LLMProposal([], None, rejections)
