#!/usr/bin/env python3
"""Seconds of the engine's stages on one problem, without verification or timing (no harness, no GPU).

    python3 scripts/engine_stage_times.py PROBLEM.py [--small] [--device-type cpu|cuda] [--set NAME=VALUE ...]
                                          [--digests FILE] [--generic]

Captures the problem (``optimize.capture_problem``), then walks the expert policy's stages as the search
does (``search.expand``): each stage's proposals (the fusion passes) and the rendering of each candidate
(``render.render_schedule``: plan, templates, ``model_new.py``), and prints one line per stage with its
CPU seconds (the process's, all its threads: on a shared machine less noisy than wall time). ``--set`` overrides the problem's size constants (``--set image_size=8``): the layer count of a
deep network is what the capture, fusion and rendering costs follow, so a small image with every layer is
a proxy of the full problem. ``--digests FILE`` writes each candidate's steps and the sha256 of its
``model_new.py``, one line each: two versions of the engine made the same candidates when their files
are equal. ``--generic`` adds the shape-generic step's rendering of the main line's schedule
(``optimize_dynamic.generic_file``: its captures at other sizes and renders, no verification).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qimeng.core.verdict import BadInput  # noqa: E402
from qimeng.kernels.engine.dynamic_dims import propose as dynamic_dims  # noqa: E402
from qimeng.kernels.engine.optimize import capture_problem  # noqa: E402
from qimeng.kernels.engine.optimize_dynamic import generic_file  # noqa: E402
from qimeng.kernels.engine.policies.expert import ExpertPolicy, node_order  # noqa: E402
from qimeng.kernels.engine.render import render_schedule  # noqa: E402
from qimeng.kernels.engine.steps import Precision, Schedule  # noqa: E402


def resized_copy(problem: Path, overrides: list[str], folder: Path) -> Path:
    """A copy of ``problem`` with ``NAME=VALUE`` assignments appended (read when the problem builds)."""
    lines = []
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise BadInput(f"{problem}: --set {item!r} is not NAME=VALUE")
        lines.append(f"{name} = {value}")
    copy = folder / problem.name
    copy.write_text(problem.read_text().rstrip() + "\n\n" + "\n".join(lines) + "\n")
    return copy


def stage_times(problem: Path, small: bool, device_type: str, digests: list[str],
                generic: bool = False) -> list[tuple[str, float, str]]:
    """(stage, CPU seconds, what it made) of capture, then each policy stage's proposals and renders (and
    the shape-generic step when ``generic``); each candidate's steps and source digest appended to
    ``digests``."""
    rows = []
    t0 = time.process_time()
    prob, graph = capture_problem(problem, small)
    rows.append(("capture", time.process_time() - t0, f"{len(graph.nodes)} nodes"))
    policy = ExpertPolicy()
    order = node_order(graph)
    state = Precision("strict").apply(Schedule(), order)
    source = problem.read_text()
    plan = None
    for stage in policy.stages:
        t0 = time.process_time()
        proposals = policy.propose(graph, state, stage)
        rows.append((f"{stage}: propose", time.process_time() - t0,
                     f"{len(proposals)} proposal(s), {sum(len(p.steps) for p in proposals)} steps"))
        t0 = time.process_time()
        made = [render_schedule(source, prob.model_cls, graph, p.schedule, device_type) for p in proposals]
        rows.append((f"{stage}: render", time.process_time() - t0, "; ".join(m.note for m in made)[:120]))
        for p, m in zip(proposals, made):
            digests.append(json.dumps({"stage": stage, "steps": [s.to_json() for s in p.steps],
                                       "schedule": p.schedule.to_json(),
                                       "source": hashlib.sha256(m.source.encode()).hexdigest()}, sort_keys=True))
        if proposals and stage != "strategy":
            state = proposals[0].schedule
            plan = made[0].plan
    if generic and plan is not None:
        t0 = time.process_time()
        text, kept, notes, _ = generic_file(problem, source, prob.model_cls, plan, state, dynamic_dims(graph.user_args),
                                            small=small, device_type=device_type, captured=graph)
        rows.append(("generic file", time.process_time() - t0,
                     f"dynamic: {', '.join(d.describe() for d in kept)}" if text else "; ".join(notes)[:120]))
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problem", type=Path)
    parser.add_argument("--small", action="store_true", help="the problem's SMALL sizes")
    parser.add_argument("--device-type", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--digests", type=Path, help="write each candidate's steps and source sha256 here")
    parser.add_argument("--generic", action="store_true", help="also the shape-generic step's captures and renders")
    args = parser.parse_args(argv)
    if not args.problem.is_file():
        print(f"{args.problem}: no such problem file", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # CPU seconds of the work itself, not of idle worker threads spinning
    digests: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        try:
            problem = resized_copy(args.problem, args.set, Path(folder)) if args.set else args.problem
            rows = stage_times(problem, args.small, args.device_type, digests, args.generic)
        except BadInput as exc:
            print(exc, file=sys.stderr)
            return 2
        total = 0.0
        for stage, seconds, made in rows:
            total += seconds
            print(f"{stage:22s} {seconds:8.2f} CPU s  {made}")
        print(f"{'total':22s} {total:8.2f} CPU s")
    if args.digests:
        args.digests.write_text("\n".join(digests) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
