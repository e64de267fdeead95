"""The generate loop: N samples from the model, each verified by the harness; a failed sample gets the
harness's verdict back for up to K debug rounds; the best verified sample is kept."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from qimeng.kernels.generate.prompt import NO_CODE, TASK, TASK_KIND, fix_request, task_messages
from qimeng.kernels.harness.evaluate import evaluate_many
from qimeng.kernels.result import EvalOptions, EvalResult
from qimeng.llm.client import Completion, LLMClient, LLMError
from qimeng.llm.insights import InsightStore, distill, lessons_text
from qimeng.llm.prompts import Message, feedback, last_code_block

NO_CODE_STATUS = "no_code"  # the answer had no python block: never reached the harness
LLM_ERROR_STATUS = "llm_error"  # the request failed (timeout, 429 after every retry, ...)


@dataclass(frozen=True)
class GenerateOptions:
    samples: int = 1
    debug_rounds: int = 2
    insights: bool = True  # add stored lessons to the prompt, and distil new ones (--no-insights: off)
    eval: EvalOptions = field(default_factory=EvalOptions)


@dataclass
class Attempt:
    """One answer of one sample in one round, and its verdict."""

    sample: int
    round: int
    status: str  # a harness Status value, NO_CODE_STATUS or LLM_ERROR_STATUS
    reason: str = ""
    speedup: float | None = None
    llm_s: float = 0.0
    eval_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    source: str | None = None  # the code taken from the answer
    result: EvalResult | None = None  # the harness's, when the code reached it

    @property
    def verified(self) -> bool:
        return self.status == "ok"


@dataclass
class GenerateResult:
    attempts: list[Attempt]
    best: Attempt | None
    error: LLMError | None = None  # a fatal client error that stopped the run
    wall_s: float = 0.0
    lessons_used: list[str] = field(default_factory=list)  # lessons the prompt carried
    lessons_learnt: list[str] = field(default_factory=list)  # lessons distilled in this run


def generate(problem: Path, client: LLMClient, options: GenerateOptions,
             insights: InsightStore | None = None) -> GenerateResult:
    """Run the loop. BadInput (from the harness) for a malformed problem; every other failure is a value."""
    started = time.monotonic()
    target = options.eval.device.split(":")[0]
    use_insights = options.insights and insights is not None
    used = insights.lessons(TASK_KIND, target, client.settings.model) if use_insights else []
    base = task_messages(Path(problem).read_text(), options.eval.device, lessons_text(used))
    conversations: dict[int, list[Message]] = {s: list(base) for s in range(options.samples)}
    attempts: list[Attempt] = []
    learnt: list[str] = []
    last_failure: dict[int, str] = {}
    for round_ in range(options.debug_rounds + 1):
        active = sorted(conversations)
        if not active:
            break
        seeds = [client.settings.seed + s for s in active]
        answers = client.complete_many([conversations[s] for s in active], seeds)
        fatal = next((a for a in answers if isinstance(a, LLMError) and a.fatal), None)
        if fatal is not None:
            return GenerateResult(attempts, _best(attempts), fatal, time.monotonic() - started, used, learnt)
        to_verify: list[tuple[int, Attempt, Completion]] = []
        for sample, answer in zip(active, answers):
            if isinstance(answer, LLMError):
                attempts.append(Attempt(sample, round_, LLM_ERROR_STATUS, answer.message))
                del conversations[sample]
                continue
            attempt = Attempt(sample, round_, NO_CODE_STATUS, NO_CODE, llm_s=answer.seconds,
                              prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
                              cached=answer.cached, source=last_code_block(answer.text))
            attempts.append(attempt)
            if attempt.source is not None:
                to_verify.append((sample, attempt, answer))
            else:
                last_failure[sample] = f"{NO_CODE_STATUS}: {NO_CODE}"
                conversations[sample] = feedback(conversations[sample], answer.text,
                                                 fix_request(NO_CODE_STATUS, NO_CODE))
        _verify(problem, to_verify, options.eval)
        for sample, attempt, answer in to_verify:
            if attempt.verified:
                del conversations[sample]
                if use_insights and sample in last_failure:
                    learnt += _learn(client, insights, target, last_failure[sample], attempt.source or "", sample)
            else:
                last_failure[sample] = f"{attempt.status}: {attempt.reason}"
                conversations[sample] = feedback(conversations[sample], answer.text,
                                                 fix_request(attempt.status, attempt.reason))
    return GenerateResult(attempts, _best(attempts), None, time.monotonic() - started, used, learnt)


def _learn(client: LLMClient, insights: InsightStore, target: str, failure: str, fix: str, sample: int) -> list[str]:
    """Distil and keep the lesson of one failed-then-fixed sample (none when the request fails, or when its
    answer is a cached one, already kept)."""
    lesson = distill(client, TASK, failure, fix, seed=client.settings.seed + sample)
    if not isinstance(lesson, str) or not lesson:
        return []
    insights.add(TASK_KIND, target, client.settings.model, lesson)
    return [lesson]


def _verify(problem: Path, items: list[tuple[int, Attempt, Completion]], options: EvalOptions) -> None:
    """Evaluate the round's code in as few sandboxed workers as is safe; fill in each attempt's verdict."""
    if not items:
        return
    last = [time.monotonic()]

    def arrived(index: int, result) -> None:
        now = time.monotonic()
        items[index][1].eval_s, last[0] = now - last[0], now

    results = evaluate_many(problem, [a.source for _, a, _ in items], options, on_result=arrived)
    for (_, attempt, _), result in zip(items, results):
        attempt.status, attempt.reason, attempt.speedup = result.status.value, result.reason, result.speedup
        attempt.result = result


def _best(attempts: list[Attempt]) -> Attempt | None:
    """The verified attempt with the highest speed-up (an untimed one counts as slowest); the first on ties."""
    verified = [a for a in attempts if a.verified]
    return max(verified, key=lambda a: -1.0 if a.speedup is None else a.speedup, default=None)
