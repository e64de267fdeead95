"""The ``qimeng llm`` commands: what the LLM client keeps in the store."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def insights() -> None:
    """List the lessons distilled from fixed failures, per task kind, target and model."""
    from qimeng.llm.insights import InsightStore
    from qimeng.settings import Settings

    store = InsightStore(Settings.from_env().store_path)
    try:
        rows = store.all()
    finally:
        store.close()
    if not rows:
        typer.echo("no insights yet: they are distilled when a failing sample is fixed (qimeng generate)")
        return
    for r in rows:
        typer.echo(f"{r.task_kind}\t{r.target}\t{r.model}\tseen {r.seen}\t{r.text}")
