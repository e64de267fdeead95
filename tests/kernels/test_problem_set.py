"""The project's problem set (problems/<family>/<NN>_<name>.py): format, sizes and sanity of each problem,
and the hand-written candidates in examples/candidates/ checked against their references."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
PROBLEMS_DIR = REPO / "problems"
CANDIDATES_DIR = REPO / "examples" / "candidates"
FAMILIES = {
    "elementwise", "activation", "reduction", "norm", "softmax", "loss",
    "scan", "gemm_epilogue", "conv_epilogue", "attention", "fused",
    "training", "cnn", "recurrent", "transformer", "pooling",
}
MEMORY_BOUND = {"elementwise", "activation", "reduction", "norm", "softmax", "loss", "fused", "scan"}
CNN_FAMILIES = {"conv_epilogue", "cnn"}  # batch 16-128 at full size
POOLING = "pooling"  # a pooling alone reads 1-16 GiB; one after a convolution takes batch 16-128
SEQUENCE_FAMILIES = {"attention", "transformer"}  # sequence 512-4096 at full size
MIN_FULL_BYTES = 2**30  # benchmark scale: the largest input of a memory-bound problem is at least 1 GiB
MAX_SMALL_INPUT_ELEMENTS = 65536
PROBLEMS = sorted(PROBLEMS_DIR.glob("*/[0-9][0-9]_*.py"))


def _problem_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def load(path: Path, small: bool) -> ModuleType:
    """Import a problem file as a fresh module; with ``small`` apply its SMALL overrides to its globals."""
    name = f"_problem_{path.parent.name}_{path.stem}_{'small' if small else 'full'}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if small:
        for key, value in module.SMALL.items():
            assert hasattr(module, key), f"{path}: SMALL overrides unknown global {key!r}"
            setattr(module, key, value)
    return module


def tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in tensors(item)]
    return []


def nbytes(value) -> int:
    return sum(t.numel() * t.element_size() for t in tensors(value))


def run_small(module: ModuleType, input_seed: int):
    torch.manual_seed(0)
    model = module.Model(*module.get_init_inputs())
    torch.manual_seed(input_seed)
    inputs = module.get_inputs()
    with torch.no_grad():
        return inputs, model(*inputs)


def test_problem_set_covers_every_family():
    assert len(PROBLEMS) >= 100, f"only {len(PROBLEMS)} problems"
    found = {path.parent.name for path in PROBLEMS}
    assert found == FAMILIES, f"unexpected or missing families: {found ^ FAMILIES}"
    for family in FAMILIES:
        count = sum(path.parent.name == family for path in PROBLEMS)
        assert count >= 3, f"family {family} has {count} problems"
    numbers = [(path.parent.name, path.stem[:2]) for path in PROBLEMS]
    assert len(numbers) == len(set(numbers)), "two problems of one family share a number"
    stems = [path.stem for path in PROBLEMS]
    assert len(stems) == len(set(stems)), "problem stems must be unique: candidates are named by stem"


def test_docs_table_lists_every_problem():
    table = (REPO / "docs" / "PROBLEMS.md").read_text()
    missing = [_problem_id(path) for path in PROBLEMS if f"| {path.parent.name} | {path.stem} |" not in table]
    assert not missing, f"docs/PROBLEMS.md lacks {missing}: run python scripts/problem_catalog.py > docs/PROBLEMS.md"


@pytest.mark.parametrize("path", PROBLEMS, ids=_problem_id)
def test_problem_has_kernelbench_format(path: Path):
    module = load(path, small=False)
    assert module.__doc__, f"{path}: needs a docstring saying what it computes"
    assert isinstance(module.Model, type) and issubclass(module.Model, torch.nn.Module)
    assert callable(module.get_inputs) and callable(module.get_init_inputs)
    assert isinstance(module.SMALL, dict) and module.SMALL, f"{path}: SMALL is empty"


@pytest.mark.parametrize("path", PROBLEMS, ids=_problem_id)
def test_full_size_is_realistic(path: Path):
    """At full size (meta tensors: nothing allocated) the sizes of today's public suites: the largest input
    of a memory-bound problem is 1-16 GiB, CNNs take batch 16-128, attention sequences are 512-4096 long."""
    module = load(path, small=False)
    with torch.device("meta"):
        model = module.Model(*module.get_init_inputs())
        inputs = module.get_inputs()
        moved = nbytes(inputs)
        largest = max(nbytes(t) for t in tensors(inputs))
        try:
            if path.parent.name != "recurrent":  # recurrent stacks run step by step on meta (minutes)
                with torch.no_grad():
                    moved += nbytes(model(*inputs))
        except (NotImplementedError, RuntimeError):
            assert path.parent.name not in MEMORY_BOUND, f"{path}: meta forward failed"
    small_moved = nbytes(load(path, small=True).get_inputs())
    assert moved > 50 * small_moved, f"{path}: full size is not much larger than SMALL"
    if path.parent.name in MEMORY_BOUND:
        assert MIN_FULL_BYTES <= largest <= 16 * 2**30, f"{path}: largest input {largest / 2**20:.0f} MiB"
    if path.parent.name in CNN_FAMILIES:
        assert 16 <= module.batch_size <= 128, f"{path}: batch {module.batch_size}"
    if path.parent.name == POOLING:
        assert 16 <= module.batch_size <= 128 and (hasattr(module, "in_channels") or MIN_FULL_BYTES <= largest
                                                   <= 16 * 2**30), f"{path}: largest input {largest / 2**20:.0f} MiB"
    if path.parent.name in SEQUENCE_FAMILIES and hasattr(module, "seq_len"):
        assert 512 <= module.seq_len <= 4096, f"{path}: sequence {module.seq_len}"


@pytest.mark.parametrize("path", PROBLEMS, ids=_problem_id)
def test_small_reference_runs_and_depends_on_inputs(path: Path):
    module = load(path, small=True)
    start = time.perf_counter()
    inputs, out_a = run_small(module, input_seed=1)
    elapsed = time.perf_counter() - start
    for tensor in tensors(inputs):
        assert tensor.numel() <= MAX_SMALL_INPUT_ELEMENTS, f"{path}: SMALL input of {tensor.numel()} elements"
    outputs_a = tensors(out_a)
    assert outputs_a, f"{path}: forward returned no tensor"
    for out in outputs_a:
        assert torch.isfinite(out).all(), f"{path}: non-finite output"
    _, out_b = run_small(module, input_seed=2)
    assert any(not torch.equal(a, b) for a, b in zip(outputs_a, tensors(out_b))), f"{path}: output ignores inputs"
    assert elapsed < 2.0, f"{path}: SMALL reference took {elapsed:.2f}s"


# Runs in one fresh interpreter (TRITON_INTERPRET=1): argv[1] = a JSON list of [problem, candidate] paths.
# Prints one JSON line per pair: whether the candidate matches the reference at SMALL size on fresh random
# inputs for 3 seeds, and if not why (the seed that differs, or the exception).
CHECK_CANDIDATES = """
import importlib.util, json, sys, torch

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

def check(index, problem_path, candidate_path):
    problem = load(problem_path, f"problem_{index}")
    for key, value in problem.SMALL.items():
        setattr(problem, key, value)
    candidate = load(candidate_path, f"candidate_{index}")
    for seed in range(3):
        torch.manual_seed(seed)
        reference = problem.Model(*problem.get_init_inputs())
        torch.manual_seed(seed)
        new = candidate.ModelNew(*problem.get_init_inputs())
        torch.manual_seed(1000 + seed)
        inputs = problem.get_inputs()
        with torch.no_grad():
            expected, got = reference(*inputs), new(*inputs)
        ok = got.shape == expected.shape and got.dtype == expected.dtype
        ok = ok and torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
        if not ok:
            return f"seed {seed}: candidate differs from the reference"
    return "match"

for index, (problem_path, candidate_path) in enumerate(json.loads(sys.argv[1])):
    try:
        reason = check(index, problem_path, candidate_path)
    except Exception as exc:  # reported per pair: the test names the failing candidate
        reason = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"candidate": candidate_path, "ok": reason == "match", "reason": reason}), flush=True)
"""
CANDIDATES = sorted(CANDIDATES_DIR.glob("*.py"))
WRONG_MSE = (  # the mean absolute error where the problem asks for the mean squared one
    "import torch\n"
    "class ModelNew(torch.nn.Module):\n"
    "    def forward(self, predictions, targets):\n"
    "        return (predictions - targets).abs().mean()\n"
)


def check_candidates(pairs: list[tuple[Path, Path]]) -> dict[str, dict]:
    """Each (problem, candidate) pair checked in one interpreter subprocess (its start costs more than a
    check): the result line of each candidate, by its path."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", CHECK_CANDIDATES, json.dumps([[str(p), str(c)] for p, c in pairs])],
                          capture_output=True, text=True, env=env, timeout=300)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == len(pairs), proc.stderr[-3000:]
    return {line["candidate"]: line for line in lines}


def problem_of(candidate: Path) -> Path:
    matches = [path for path in PROBLEMS if path.stem == candidate.stem]
    assert len(matches) == 1, f"{candidate}: no problem named {candidate.stem}"
    return matches[0]


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """The hand-written candidates and a wrong one for 01_mse, checked together; the wrong one's path."""
    wrong = tmp_path_factory.mktemp("wrong") / "01_mse.py"
    wrong.write_text(WRONG_MSE)
    return wrong, check_candidates([(problem_of(c), c) for c in CANDIDATES + [wrong]])


def test_candidates_cover_pytorch_and_triton():
    sources = [path.read_text() for path in CANDIDATES]
    assert sum("@triton.jit" in src for src in sources) >= 3
    assert sum("triton" not in src for src in sources) >= 3


@pytest.mark.parametrize("candidate", CANDIDATES, ids=lambda path: path.stem)
def test_candidate_matches_reference(checked: tuple[Path, dict[str, dict]], candidate: Path):
    result = checked[1][str(candidate)]
    assert result["ok"], f"{candidate}: {result['reason']}"


def test_candidate_check_rejects_a_wrong_candidate(checked: tuple[Path, dict[str, dict]]):
    wrong, results = checked
    result = results[str(wrong)]
    assert not result["ok"] and result["reason"] == "seed 0: candidate differs from the reference", result
