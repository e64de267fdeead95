"""``qimeng optimize`` with and without a model, end to end on the CPU against a real local OpenAI-protocol server.

With --llm-url/--llm-model the model gets the graph, the plan with its measurements and the steps' JSON
Schema; an invalid answer goes back with its reason; a valid one is rendered and verified by the harness
like the expert's, and the report says what became of it. The micro coder then writes the region the
symbolic coder cannot render (scatter_add), verified alone and then in the whole candidate. With no model
configured optimize is unchanged: no request, no LLM stage, the same expert candidates. The key reaches no
file and no store row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "llm"))
from fake_openai_server import FakeOpenAIServer  # noqa: E402

from qimeng.kernels.engine.optimize_cli import optimize_command  # noqa: E402
from test_micro_coder import CORRECT as REGION_CODE  # noqa: E402

PROBLEM = '''
import torch
import torch.nn as nn

rows, cols = 4096, 4096
SMALL = {"rows": 8, "cols": 48}


class Model(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return torch.relu(x * 2.0 + y).scatter_add(1, idx, y)


def get_inputs():
    return [torch.randn(rows, cols), torch.randn(rows, cols), torch.randint(0, cols, (rows, cols))]


def get_init_inputs():
    return []
'''
KEY = "sk-qimeng-planted-4711"
MALFORMED = '```json\n{"steps": [{"kind": "block_config", kernel: "relu"}]}\n```'
VALID = '```json\n{"steps": [{"kind": "block_config", "kernel": "relu", "config": {"block_p": 64}}]}\n```'
LESSON = "Quote every JSON key."
UNKNOWN_NODE = '{"steps": [{"kind": "fuse_pointwise", "producer": "relu", "consumer": "tanh"}]}'
ASK_CODER = '{"steps": [{"kind": "code_region", "node": "scatter_add"}]}'


def _run(root: Path, name: str, monkeypatch: pytest.MonkeyPatch, script: list, configured: bool,
         store: str = "", **flags) -> tuple:
    for var in ("QIMENG_LLM_BASE_URL", "QIMENG_LLM_MODEL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QIMENG_LLM_API_KEY", KEY)
    monkeypatch.setenv("QIMENG_LLM_BACKOFF", "0.01")
    monkeypatch.setenv("QIMENG_STORE", str(root / f"{store or name}.db"))
    problem = root / "scale_add_relu.py"
    problem.write_text(PROBLEM)
    with FakeOpenAIServer(script) as server:
        if configured:
            flags = {"llm_url": server.url, "llm_model": "fake-coder", **flags}
        status = optimize_command(problem, root / name, device="cpu", budget=120, precision="strict", small=True,
                                  use_store=True, **flags)
    return status, server, (root / name / "report.md").read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("optimize_llm")
    with pytest.MonkeyPatch.context() as mp:
        with_llm = _run(root, "with", mp, [MALFORMED, VALID, LESSON, UNKNOWN_NODE, ASK_CODER, REGION_CODE], configured=True)
        without = _run(root, "without", mp, [VALID], configured=False)
        replayed = _run(root, "replay", mp, [], configured=True, store="with", llm_replay=True, insights=False)
    return root, with_llm, without, replayed


def test_the_model_gets_graph_plan_measurements_and_schema_and_its_step_is_verified(runs) -> None:
    _, (status, server, report), _, _ = runs
    # round 1: invalid, fixed, the lesson of the fix; round 2: invalid, then a request for the micro coder;
    # the micro coder's region
    assert status == 0 and len(server.requests) == 6
    first = server.requests[0]["messages"][-1]["content"]
    assert "aten.relu" in first and "Measurements of the current plan" in first
    schema = json.loads(first.split("JSON Schema of the answer (the step vocabulary):\n")[1].split("\n\nPropose")[0])
    kinds = {k["title"]: k for k in schema["properties"]["steps"]["items"]["oneOf"]}
    assert {"block_config", "lower_ops"} <= set(kinds)
    assert kinds["code_region"]["properties"]["node"]["enum"] == ["scatter_add"]  # the plan's one PyTorch call
    assert "verified but not timed" in first  # on the CPU the plan has no timings, and says so
    second = server.requests[1]["messages"][-1]["content"]
    assert second.startswith("Rejected: the answer is not valid JSON")
    assert "not valid JSON" in server.requests[2]["messages"][-1]["content"]  # the lesson's request
    fourth = server.requests[3]["messages"][-1]["content"]
    assert "Earlier proposals in this run:\n- round 1: block_config(kernel=relu" in fourth
    assert "## LLM proposals" in report and "requests 6" in report
    assert "Lessons distilled in this run:\n- Quote every JSON key." in report
    row = next(line for line in report.splitlines() if line.startswith("| 1 | block_config"))
    assert "verified, not timed, kept" in row
    row = next(line for line in report.splitlines() if line.startswith("| 2 | code_region(scatter_add)"))
    assert "nodes not in the graph: tanh" in row and row.endswith("| asks the micro coder for scatter_add |")


def test_the_verified_llm_candidate_is_written_with_its_block_size(runs) -> None:
    root, (_, _, report), _, _ = runs
    trajectory = [line for line in report.splitlines() if line.startswith("| ") and "| llm |" in line]
    assert len(trajectory) == 1 and "| ok |" in trajectory[0] and "| yes |" in trajectory[0]  # accepted
    written = (root / "with" / "model_new.py").read_text()
    # the model's block of 64 is the captured bucket's row (8 x 48 elements); other buckets take the expert's
    assert "_QM_CONFIG_CAPTURED = (64,)" in written and "[(-(-(48 * qm_batch) // _qm_cfg[0]),)]" in written
    assert "BLOCK_P=_qm_cfg[0]" in written
    assert "_QM_CONFIG_CAPTURED = (64,)" not in (root / "without" / "model_new.py").read_text()


def test_the_coded_region_replaces_the_pytorch_call_and_is_verified_in_the_whole_program(runs) -> None:
    root, (_, server, report), _, _ = runs
    asked = server.requests[5]["messages"][-1]["content"]
    assert "torch.ops.aten.scatter_add.default(relu, 1, idx, y)" in asked
    assert "def qm_region_scatter_add(relu, idx, y):" in asked
    coder = [line for line in report.split("## Step trajectory")[1].splitlines() if "| coder |" in line]
    assert len(coder) == 1 and "| ok |" in coder[0] and coder[0].endswith("| yes | written |")
    assert "| scatter_add | aten.scatter_add.default | ok | yes |" in report
    written = (root / "with" / "model_new.py").read_text()
    assert "scatter_add = qm_region_scatter_add(relu, idx, y)" in written and "_QM_CONFIG_CAPTURED = (64,)" in written
    assert "torch.ops.aten.scatter_add" not in written.split("class ModelNew")[1]


def test_without_a_model_optimize_sends_nothing_and_tries_the_same_expert_candidates(runs) -> None:
    root, (_, _, with_report), (status, server, report), _ = runs
    assert status == 0 and server.requests == []
    assert "LLM" not in report and "| llm |" not in report

    def expert_rows(text: str) -> list[list[str]]:  # stage and steps of the trajectory's expert trials
        trajectory = text.split("## Step trajectory")[1].split("## Kept as PyTorch calls")[0]
        return [line.split("|")[2:4] for line in trajectory.splitlines()
                if line.startswith("| ") and line.split("|")[1].strip().isdigit()
                and line.split("|")[2].strip() not in ("llm", "coder")]

    assert expert_rows(report) and expert_rows(report) == expert_rows(with_report)


def test_the_key_is_sent_to_the_server_only(runs) -> None:
    root, (_, server, _), _, _ = runs
    assert all(h["authorization"] == f"Bearer {KEY}" for h in server.headers)
    for path in root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_replay_without_insights_sends_nothing_and_writes_the_same_program(runs) -> None:
    root, _, _, (status, server, report) = runs
    assert status == 0 and server.requests == []  # every request of the first run, from the cache
    assert "requests 0" in report and "cache hits 5" in report  # the lesson's request is not made
    assert (root / "replay" / "model_new.py").read_text() == (root / "with" / "model_new.py").read_text()


def test_half_a_configuration_is_one_line_and_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture) -> None:
    for var in ("QIMENG_LLM_BASE_URL", "QIMENG_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("QIMENG_STORE", str(tmp_path / "store.db"))
    problem = tmp_path / "p.py"
    problem.write_text(PROBLEM)
    status = optimize_command(problem, tmp_path / "out", device="cpu", budget=10, precision="strict", small=True,
                              use_store=True, llm_model="fake-coder")  # a model but no server URL
    assert status == 2 and not (tmp_path / "out").exists()
    assert "no LLM is configured: pass --llm-url URL --llm-model NAME" in capsys.readouterr().err
