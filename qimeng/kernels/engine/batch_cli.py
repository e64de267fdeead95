"""``qimeng optimize DIR --out OUTDIR``: the batch form's options, summary line and exit status."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.markup import escape

from qimeng.core.verdict import BadInput


def optimize_dir_command(problems_dir: Path, out: Path, *, device: str, budget: float, precision: str,
                         small: bool | None, use_store: bool, executor: str, ray_address: str,
                         workers: int | None, jobs_per_gpu: int) -> int:
    """Returns the exit status: 0 every problem done, 1 some failed in the engine (run again to retry),
    2 bad input (a malformed problem included), 130 interrupted."""
    from qimeng.core.executor import device_slots
    from qimeng.core.ray_executor import RayUnavailable, cluster_executor
    from qimeng.kernels.engine.batch import BatchOptions, optimize_dir
    from qimeng.kernels.engine.steps import PRECISIONS
    from qimeng.kernels.store import Store
    from qimeng.settings import Settings

    console = Console(stderr=True)
    store = None
    try:
        if precision not in PRECISIONS:
            raise BadInput(f"--precision must be one of {', '.join(PRECISIONS)}")
        settings = Settings.from_env()
        if executor == "local":
            device_slots(device, workers, jobs_per_gpu)  # fail early on a bad --device/--workers/--jobs-per-gpu
        if not problems_dir.is_dir():
            raise BadInput(f"{problems_dir}: the problems directory does not exist")
        pool = cluster_executor(executor, device, ray_address, settings.ray_retries, workers, jobs_per_gpu)
        store = Store.open(settings) if use_store else None
        device = pool.device if pool is not None else device  # under Ray, --device auto is what the cluster has
        summary = optimize_dir(problems_dir, out, BatchOptions(device, budget, precision, small), store=store,
                               executor=pool, workers=workers, jobs_per_gpu=jobs_per_gpu, settings=settings)
    except (BadInput, ValueError, RayUnavailable) as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: finished problems are kept; run the same command to continue")
        return 130
    finally:
        if store is not None:
            store.close()
    for name, message in summary.bad_problems.items():
        console.print(f"[red]bad problem[/red] {escape(name)}: {escape(message)}")
    for name, message in summary.errors.items():
        console.print(f"[red]engine error[/red] {escape(name)}: {escape(message)}")
    tally = ", ".join(f"{status} {count}" for status, count in sorted(summary.statuses.items()))
    console.print(f"{summary.optimized} problem(s) optimized into {escape(str(out))}, {summary.skipped} already "
                  f"done, of {summary.total}" + (f" ({tally})" if tally else ""))
    if summary.bad_problems:
        return 2
    return 1 if summary.errors else 0
