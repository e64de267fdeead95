"""Prints docs/PROBLEMS.md: one table row per problem with its full-size bytes and FLOPs.

Sizes come from meta tensors (nothing is allocated); FLOPs are those torch's FlopCounterMode counts
(matmul, conv, attention); memory-bound problems show "-".  Run: python scripts/problem_catalog.py > docs/PROBLEMS.md
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"
HEADER = """# The problem set

{count} problems of our own in KernelBench format (`class Model`, `get_inputs()`, `get_init_inputs()`), one file each
under `problems/<family>/<NN>_<name>.py`. Each file also has `SMALL`, a dict of overrides of its size constants for
CPU tests (every input at most 64K elements); the constants as written are the full size, the size of today's
public benchmark suites: in the memory-bound families (elementwise, activation, reduction, norm, softmax, loss,
fused, scan, and `pooling` alone) the largest input is 1 to 8 GiB, CNNs (and poolings after convolutions) take
batch 16-128, attention sequences are 512-4096 long.
Families `training` (batch norm with batch statistics, dropout 0), `cnn` (ResNet, DenseNet, Inception style),
`recurrent` (LSTM/GRU/RNN cells and stacks) and `transformer` (ViT, MiniGPT blocks) are meant to be run as
built, in training mode. Float32 unless the name says otherwise. Tests: `tests/kernels/test_problem_set.py`. Hand-written candidates
(`class ModelNew`) for six problems are in `examples/candidates/<stem>.py`.

Bytes = inputs + outputs + parameters/buffers at full size; GFLOP = what `torch.utils.flop_counter` counts
(matmul, conv, attention), "-" where it counts none (memory-bound). Regenerate: `python scripts/problem_catalog.py > docs/PROBLEMS.md`.

| family | problem | computes | bytes | GFLOP |
|---|---|---|---:|---:|
"""


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"_catalog_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nbytes(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (list, tuple)):
        return sum(nbytes(item) for item in value)
    return 0


def human(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit != "GiB" else f"{count:.2f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def row(path: Path) -> str:
    module = load(path)
    with torch.device("meta"), torch.no_grad():
        model = module.Model(*module.get_init_inputs()).eval()  # same sizes; no running-stat update on meta
        inputs = module.get_inputs()
        counter = FlopCounterMode(display=False)
        with counter:
            output = model(*inputs)
    state = list(model.parameters()) + list(model.buffers())
    moved = nbytes(inputs) + nbytes(output) + nbytes(state)
    flops = counter.get_total_flops()
    gflop = f"{flops / 1e9:,.1f}" if flops else "-"
    summary = module.__doc__.strip().splitlines()[0].replace("|", "\\|")
    return f"| {path.parent.name} | {path.stem} | {summary} | {human(moved)} | {gflop} |"


def main() -> None:
    paths = sorted(PROBLEMS_DIR.glob("*/[0-9][0-9]_*.py"))
    print(HEADER.format(count=len(paths)) + "\n".join(row(path) for path in paths))


if __name__ == "__main__":
    main()
