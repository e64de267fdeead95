"""DIR/report.md of `qimeng generate`: every sample's answers, verdicts, times and tokens, and what the run cost."""

from __future__ import annotations

from pathlib import Path

from qimeng.kernels.generate.run import GenerateOptions, GenerateResult
from qimeng.llm.client import Usage
from qimeng.settings import LLMSettings


def write_report(path: Path, problem: Path, result: GenerateResult, options: GenerateOptions,
                 llm: LLMSettings, usage: Usage, *, replay: bool, run: str | None = None) -> None:
    """Write report.md. The API key is not among the things it is given."""
    lines = [f"# qimeng generate: {problem.name}", "",
             f"- model: `{llm.model}` at `{llm.base_url or '(replay)'}`"
             + (" (replayed from the cache)" if replay else ""),
             f"- temperature {llm.temperature:g}, max tokens {llm.max_tokens}, "
             f"seeds {llm.seed}..{llm.seed + options.samples - 1}",
             f"- samples {options.samples}, debug rounds up to {options.debug_rounds}, device `{options.eval.device}`"
             + (" (SMALL sizes)" if options.eval.small else ""),
             f"- verified samples: {len({a.sample for a in result.attempts if a.verified})} of {options.samples}",
             f"- requests {usage.requests} (retries {usage.retries}, failed {usage.failures}), cache hits "
             f"{usage.cache_hits}, tokens {usage.prompt_tokens} in / {usage.completion_tokens} out, "
             f"{usage.seconds:.1f} s of requests (summed over concurrent ones), {result.wall_s:.1f} s in all",
             f"- stored in the kernels store as run `{run}`, one evaluation per sample: `qimeng report {run}` "
             "gives pass@k and fast_p" if run else "- not stored (--no-store)", ""]
    if result.best is not None:
        b = result.best
        speed = "not timed" if b.speedup is None else f"{b.speedup:.2f}x vs the reference"
        lines += [f"Best verified: sample {b.sample}, round {b.round} ({speed}); written to `model_new.py`.", ""]
    else:
        lines += ["No sample was verified; no `model_new.py` was written.", ""]
    if options.eval.device == "cpu":
        lines += ["On cpu, Triton runs in its interpreter: speed-ups here say nothing about a GPU.", ""]
    if result.error is not None:
        lines += [f"Stopped: {result.error.message}", ""]
    lines += ["| sample | round | verdict | speed-up | model s | verify s | tokens in / out | cached | reason |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for a in result.attempts:
        speed = "" if a.speedup is None else f"{a.speedup:.2f}"
        reason = " ".join(a.reason.split())[:160].replace("|", "\\|")
        lines.append(f"| {a.sample} | {a.round} | {a.status} | {speed} | {a.llm_s:.1f} | {a.eval_s:.1f} | "
                     f"{a.prompt_tokens} / {a.completion_tokens} | {'yes' if a.cached else 'no'} | {reason} |")
    lines += ["", "Each answer's code is in `samples/sample{S}_round{R}.py`."]
    if not options.insights:
        lines += ["", "Insights were off (--no-insights): no lessons were given, none were distilled."]
    for title, lessons in (("Lessons the prompt carried", result.lessons_used),
                           ("Lessons distilled in this run", result.lessons_learnt)):
        if lessons:
            lines += ["", f"{title}:", *(f"- {lesson}" for lesson in lessons)]
    path.write_text("\n".join(lines) + "\n")
