"""The ``qimeng optimize`` command: progress with rich, exit status 2 for a malformed problem."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from qimeng.core.verdict import BadInput


def optimize_command(problem: Path, out: Path, *, device: str, budget: float, precision: str,
                     small: bool | None, use_store: bool, dynamic: tuple[str, ...] = (), static: bool = False) -> int:
    from qimeng.kernels.store import Store
    from qimeng.kernels.engine.optimize import optimize
    from qimeng.kernels.engine.dynamic_dims import parse_spec
    from qimeng.kernels.engine.steps import PRECISIONS

    console = Console(stderr=True)
    if precision not in PRECISIONS:
        console.print(f"error: --precision must be one of {', '.join(PRECISIONS)}")
        return 2
    if not problem.is_file():
        console.print(f"error: {problem}: no such problem file")
        return 2
    try:
        for spec in dynamic:
            parse_spec(spec)
    except BadInput as exc:
        console.print(f"error: {exc}", markup=False)
        return 2
    store = Store.open() if use_store else None
    try:
        with console.status(f"optimizing {problem.name} on {device}") as status:
            def log(message: str) -> None:
                console.print(message, markup=False, highlight=False)
                status.update(message[:100])

            result = optimize(problem, out, device=device, budget_s=budget, precision=precision, small=small,
                              store=store, dynamic=dynamic, static=static, log=log)
    except BadInput as exc:
        console.print(f"error: {exc}", markup=False)
        return 2
    finally:
        if store is not None:
            store.close()
    summary = f"wrote {result.out_dir}/model_new.py and report.md ({result.status}, {result.kernels} kernels"
    if result.speedup is not None:
        summary += f", {result.speedup:.2f}x vs eager"
    if result.speedup_compile is not None:
        summary += f", {result.speedup_compile:.2f}x vs torch.compile"
    console.print(summary + f", {result.wall_s:.1f} s)", markup=False)
    return 0
