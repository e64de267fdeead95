"""The ``qimeng optimize`` command: progress on stderr (rich), the result's line on stdout, exit status 2
for a malformed problem (no ``--out`` directory and no store file left behind)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from rich.console import Console

from qimeng.core.verdict import BadInput
from qimeng.kernels.engine.llm_search import DEFAULT_ROUNDS


def optimize_command(problem: Path, out: Path, *, device: str, budget: float, precision: str,
                     small: bool | None, use_store: bool, llm_url: str | None = None, llm_model: str | None = None,
                     llm_replay: bool = False, insights: bool = True, llm_rounds: int = DEFAULT_ROUNDS,
                     dynamic: tuple[str, ...] = (), static: bool = False) -> int:
    """With no model configured (flags or QIMENG_LLM_* variables) the expert searches alone."""
    from qimeng.kernels.store import command_store
    from qimeng.kernels.engine.llm_search import LLMOptimize
    from qimeng.kernels.engine.optimize import optimize
    from qimeng.kernels.engine.dynamic_dims import parse_spec
    from qimeng.kernels.engine.steps import PRECISIONS
    from qimeng.llm.session import LLMSession, open_session

    console = Console(stderr=True, soft_wrap=True)  # a message stays one line, whatever the terminal's width
    if precision not in PRECISIONS:
        console.print(f"error: --precision must be one of {', '.join(PRECISIONS)}")
        return 2
    if not problem.is_file():
        console.print(f"error: {problem}: no such problem file")
        return 2
    if llm_rounds < 1:
        console.print("error: --llm-rounds must be at least 1")
        return 2
    session = open_session(llm_url=llm_url, llm_model=llm_model, replay=llm_replay, use_store=use_store,
                           insights=insights, required=False)
    if isinstance(session, str):
        console.print(f"error: {session}", markup=False, highlight=False)
        return 2
    llm = LLMOptimize(session.client, session.insights, llm_rounds) if isinstance(session, LLMSession) else None
    try:
        for spec in dynamic:
            parse_spec(spec)
    except BadInput as exc:
        console.print(f"error: {exc}", markup=False)
        return 2
    try:
        with (command_store() if use_store else contextlib.nullcontext()) as store, \
                console.status(f"optimizing {problem.name} on {device}") as status:
            def log(message: str) -> None:
                console.print(message, markup=False, highlight=False)
                status.update(message[:100])

            result = optimize(problem, out, device=device, budget_s=budget, precision=precision, small=small,
                              store=store, llm=llm, dynamic=dynamic, static=static, log=log)
    except BadInput as exc:
        console.print(f"error: {exc}", markup=False)
        return 2
    finally:
        if llm is not None:
            session.close()
    summary = f"wrote {result.out_dir}/model_new.py and report.md ({result.status}, {result.kernels} kernels"
    if result.speedup is not None:
        summary += f", {result.speedup:.2f}x vs eager"
    if result.speedup_compile is not None:
        summary += f", {result.speedup_compile:.2f}x vs torch.compile"
    print(summary + f", {result.wall_s:.1f} s; {result.budget})")
    return 0
