"""Shared by the GPU probes: a problem's reference and a generated ModelNew, built alike on CUDA.

    from model_pair import load_model_pair   (scripts/ is on sys.path when a probe runs)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qimeng.kernels.harness.problem import import_file, load_problem  # noqa: E402


@dataclass
class ModelPair:
    module: ModuleType  # the imported model_new.py
    reference: Any  # Model, seed 0, on CUDA, in the mode asked for (as built: training mode)
    candidate: Any  # ModelNew with the reference's state_dict
    inputs: list  # inputs of seed 1, on CUDA


def load_model_pair(problem_path: Path, model_new_path: Path, mode: str = "train") -> ModelPair:
    """``mode``: "train" leaves both modules as their constructors made them (as benchmark suites and the
    harness call them); "eval" calls ``.eval()`` on both."""
    problem = load_problem(problem_path)
    module = import_file(model_new_path, "model_new")
    reference = problem.build(problem.model_cls, 0, "cuda", mode=mode)
    candidate = problem.build(module.ModelNew, 0, "cuda", mode=mode)
    candidate.load_state_dict(reference.state_dict())
    return ModelPair(module, reference, candidate, problem.inputs(1, "cuda"))
