"""The ``qimeng generate`` command: configuration checks, the loop, model_new.py and report.md, exit status."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from qimeng.core.verdict import BadInput


def generate_command(problem: Path, out: Path, *, llm_url: str | None, llm_model: str | None, replay: bool,
                     samples: int, debug_rounds: int, device: str, small: bool, timing_trials: int,
                     use_store: bool, insights: bool, run: str | None = None) -> int:
    """0 when a verified sample was written, 1 when none was verified, 2 for bad input or an unusable LLM."""
    from qimeng.kernels.generate.report import write_report
    from qimeng.kernels.generate.run import GenerateOptions, generate
    from qimeng.kernels.generate.store import default_run, record_samples
    from qimeng.kernels.store import Store
    from qimeng.kernels.result import EvalOptions
    from qimeng.llm.session import LLMSession, open_session
    from qimeng.settings import Settings

    console = Console(stderr=True, soft_wrap=True)

    def fail(message: str) -> int:
        console.print(f"error: {message}", markup=False, highlight=False)
        return 2

    if not problem.is_file():
        return fail(f"{problem}: no such problem file")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        return fail(f"unknown device {device!r}: use cpu, cuda or cuda:N")
    if samples < 1 or debug_rounds < 0:
        return fail("--samples must be at least 1 and --debug-rounds at least 0")
    session = open_session(llm_url=llm_url, llm_model=llm_model, replay=replay, use_store=use_store,
                           insights=insights, required=True)
    if not isinstance(session, LLMSession):  # required: never None
        return fail(str(session))
    client, llm = session.client, session.client.settings
    try:
        options = GenerateOptions(samples=samples, debug_rounds=debug_rounds, insights=insights,
                                  eval=EvalOptions(device=device, small=small, timing_trials=timing_trials,
                                                   warmup=min(10, timing_trials),
                                                   timeout_s=Settings.from_env().eval_timeout_s))
        with console.status(f"generating {problem.name} with {llm.model}"):
            result = generate(problem, client, options, session.insights)
    except BadInput as exc:
        return fail(str(exc))
    finally:
        session.close()
    if result.error is not None and not result.attempts:
        return fail(result.error.message)
    out.mkdir(parents=True, exist_ok=True)
    (out / "samples").mkdir(exist_ok=True)
    for a in result.attempts:
        if a.source is not None:
            (out / "samples" / f"sample{a.sample}_round{a.round}.py").write_text(a.source)
    if result.best is not None:
        (out / "model_new.py").write_text(result.best.source or "")
    elif (out / "model_new.py").exists():  # a previous run's: it is not this run's result
        (out / "model_new.py").unlink()
    stored_as = None
    if use_store and result.attempts:
        stored_as = run or default_run(llm.model, device)
        with Store.open() as store:
            record_samples(store, stored_as, problem, result, options, llm.model)
    write_report(out / "report.md", problem, result, options, llm, client.usage, replay=replay, run=stored_as)
    if result.error is not None:
        return fail(result.error.message)
    verified = result.best is not None
    console.print(f"wrote {out}/report.md" + (" and model_new.py" if verified else " (no verified sample)"),
                  markup=False, highlight=False)
    return 0 if verified else 1
