"""A chat client for any OpenAI-compatible server, on the ``openai`` SDK (extra ``qimeng[llm]``).

Every request goes through :meth:`LLMClient.complete`: the response cache first, then the server with a
timeout, retries with doubling backoff on 429 and 5xx answers, and at most ``concurrency`` requests in
flight. Failures are values (:class:`LLMError`), never exceptions; :class:`Usage` counts requests,
retries, cache hits, tokens and wall time of the whole run.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

from qimeng.llm.cache import CachedResponse, Messages, ResponseCache
from qimeng.settings import LLMSettings

# LLMError kinds after which no later request can succeed either: a run stops on them (exit 2).
FATAL_KINDS = frozenset({"not_configured", "missing_sdk", "unreachable", "auth", "not_found", "replay_miss"})


@dataclass(frozen=True)
class Completion:
    """One answer: its text, the tokens the server counted, and where it came from."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float  # wall time of the request (retries and backoff included); 0 for a cache hit
    cached: bool


@dataclass(frozen=True)
class LLMError:
    """A request that produced no answer. ``kind`` is one of FATAL_KINDS, or timeout / rate_limited /
    server_error / bad_request / bad_answer (the run may go on)."""

    kind: str
    message: str

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_KINDS


@dataclass
class Usage:
    """What a run cost: requests sent (retries among them), cache hits, failed requests, tokens as the server
    counted them, and seconds of requests (summed: concurrent requests overlap)."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def not_configured_message() -> str:
    return ("no LLM is configured: pass --llm-url URL --llm-model NAME (or set QIMENG_LLM_BASE_URL and "
            "QIMENG_LLM_MODEL; the key, if the server needs one, in QIMENG_LLM_API_KEY or OPENAI_API_KEY); "
            "see docs/LLM.md")


class LLMClient:
    """Chat completions with a cache; ``replay`` answers from the cache alone (a miss is an LLMError)."""

    def __init__(self, settings: LLMSettings, cache: ResponseCache | None = None, *, replay: bool = False) -> None:
        self.settings, self.cache, self.replay = settings, cache, replay
        self.usage = Usage()
        self._slots = threading.BoundedSemaphore(max(1, settings.concurrency))
        self._sdk = None

    def check(self) -> LLMError | None:
        """Why no request can be made with these settings, or None."""
        if self.replay:
            if not self.settings.model:
                return LLMError("not_configured", "--llm-replay needs the model name (--llm-model or QIMENG_LLM_MODEL)")
            if self.cache is None:
                return LLMError("not_configured", "--llm-replay needs the store (it is the response cache)")
            return None
        if not self.settings.configured:
            return LLMError("not_configured", not_configured_message())
        return None

    def complete(self, messages: Messages, *, seed: int | None = None) -> Completion | LLMError:
        """One answer to ``messages`` (a list of {"role", "content"}), from the cache or the server."""
        s = self.settings
        seed = s.seed if seed is None else seed
        problem = self.check()
        if problem is not None:
            return problem
        if self.cache is not None:
            hit = self.cache.get(s.model, messages, s.temperature, seed)
            if hit is not None:
                self.usage.add(cache_hits=1)
                return Completion(hit.text, hit.prompt_tokens, hit.completion_tokens, 0.0, cached=True)
        if self.replay:
            self.usage.add(failures=1)
            return LLMError("replay_miss", f"--llm-replay: no cached answer for this request to model {s.model!r} "
                            f"(temperature {s.temperature}, seed {seed}); run once without --llm-replay")
        with self._slots:
            answer = self._request(messages, seed)
        if isinstance(answer, Completion) and self.cache is not None:
            self.cache.put(s.model, messages, s.temperature, seed,
                           CachedResponse(answer.text, answer.prompt_tokens, answer.completion_tokens))
        return answer

    def complete_many(self, conversations: Sequence[Messages], seeds: Sequence[int]) -> list[Completion | LLMError]:
        """Answers to several conversations, at most ``concurrency`` requests at a time, in order."""
        if len(conversations) <= 1:
            return [self.complete(m, seed=sd) for m, sd in zip(conversations, seeds)]
        with ThreadPoolExecutor(max_workers=max(1, self.settings.concurrency)) as pool:
            return list(pool.map(lambda pair: self.complete(pair[0], seed=pair[1]), zip(conversations, seeds)))

    def _client(self):
        if self._sdk is None:
            import openai

            self._sdk = openai.OpenAI(base_url=self.settings.base_url, api_key=self.settings.api_key or "none",
                                      timeout=self.settings.timeout_s, max_retries=0)
        return self._sdk

    def _request(self, messages: Messages, seed: int) -> Completion | LLMError:
        try:
            import openai
        except ImportError:
            return LLMError("missing_sdk", "the LLM client needs the openai package: pip install 'qimeng[llm]'")
        s = self.settings
        started = time.monotonic()
        attempt = 0
        while True:
            self.usage.add(requests=1)
            try:
                response = self._client().chat.completions.create(
                    model=s.model, messages=list(messages), temperature=s.temperature, max_tokens=s.max_tokens,
                    seed=seed)
                error = None
            except openai.APITimeoutError:
                error = LLMError("timeout", f"{s.base_url}: no answer within {s.timeout_s:g} s")
            except openai.APIConnectionError as exc:
                error = LLMError("unreachable", f"cannot reach the LLM server at {s.base_url} ({_cause(exc)})")
            except openai.AuthenticationError as exc:
                error = LLMError("auth", f"{s.base_url} refused the API key ({exc.status_code}); "
                                 "set QIMENG_LLM_API_KEY or OPENAI_API_KEY")
            except openai.NotFoundError:
                error = LLMError("not_found", f"{s.base_url} has no chat completions endpoint or no model "
                                 f"{s.model!r} (404)")
            except openai.APIStatusError as exc:
                retryable = exc.status_code == 429 or exc.status_code >= 500
                kind = "rate_limited" if exc.status_code == 429 else "server_error" if retryable else "bad_request"
                error = LLMError(kind, f"{s.base_url} answered {exc.status_code}: {_short(exc.message)}")
                if retryable and attempt < s.retries:
                    after = _retry_after(exc)
                    wait = s.backoff_s * 2 ** attempt if after is None else after
                    attempt += 1
                    self.usage.add(retries=1)
                    time.sleep(min(wait, 60.0))
                    continue
            except openai.OpenAIError as exc:  # a malformed answer the SDK could not parse
                error = LLMError("bad_answer", f"{s.base_url}: unreadable answer ({_short(str(exc))})")
            seconds = time.monotonic() - started
            if error is not None:
                self.usage.add(failures=1, seconds=seconds)
                return error
            return self._completion(response, seconds)

    def _completion(self, response, seconds: float) -> Completion | LLMError:
        choices = getattr(response, "choices", None) or []
        text = choices[0].message.content if choices and choices[0].message is not None else None
        if text is None:
            self.usage.add(failures=1, seconds=seconds)
            return LLMError("bad_answer", f"{self.settings.base_url}: the answer has no message content")
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        self.usage.add(prompt_tokens=prompt, completion_tokens=completion, seconds=seconds)
        return Completion(text, prompt, completion, seconds, cached=False)


def _retry_after(exc) -> float | None:
    """The server's Retry-After (seconds), when it sent one."""
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return _short(str(exc) or type(exc).__name__)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
