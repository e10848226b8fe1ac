"""OpenAI-compatible chat-completions client for seed annotation, plus strict checks of the answers.

``AnnotatorClient`` sends ``POST {base_url}/chat/completions`` with ``model``, ``messages``,
``temperature`` (0: greedy) and ``max_tokens``; the bearer key is read from the environment variable
named in the config (no header when it is unset, for local vLLM/llama.cpp servers) and never logged.

- **Concurrency**: ``complete_many`` runs requests on a thread pool, and a semaphore holds the number of
  requests in flight at ``max_concurrency`` whoever calls.
- **Retries**: 429, any 5xx, timeouts, connection errors and unreadable 200 bodies are retried up to
  ``max_attempts`` in all, with exponential backoff and jitter. A ``Retry-After`` header (seconds or an
  HTTP date, capped at ``max_retry_after_s``) sets the least wait, and a 429 pauses every worker, not
  only the one that got it. Other 4xx fail at once.
- **Timeout**: ``timeout_s`` bounds each read/write of one attempt (httpx semantics), ``connect_timeout_s``
  the connection.
- **Cache**: every 200 answer is appended to a JSONL file keyed by ``sha256(model + messages + params)``
  before it is returned, so a rerun (or a resumed crash) never asks twice. Answers are cached *before*
  validation: tightening a check later re-checks without re-asking. Failures are not cached.

The checks (``check_score``, ``check_program``) turn an answer into a value or a named reason. A program
is never evaluated: each line of the ```python``` block is read by the strict-dialect parser.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from prox_spark.annotate.prompts import SCORE_LABELS, ScoreKind
from prox_spark.programs import OpStatus, RemoveAllLines, parse

Messages = Sequence[dict[str, str]]


@dataclass(frozen=True)
class ClientConfig:
    """Endpoint, model and limits of the annotator (the ``endpoint`` section of the job config)."""

    #: everything before ``/chat/completions``, e.g. ``https://api.example.com/v1``
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""
    #: name of the environment variable holding the API key ("" or unset: no Authorization header)
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    #: default ``max_tokens``; a request may ask for its own
    max_tokens: int = 1024
    #: per-attempt read/write timeout in seconds
    timeout_s: float = 120.0
    connect_timeout_s: float = 10.0
    #: requests in flight at once
    max_concurrency: int = 8
    #: attempts per request in all (1: no retry)
    max_attempts: int = 6
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    #: a server's Retry-After longer than this is cut to this
    max_retry_after_s: float = 300.0
    #: JSONL answer cache ("" = no cache)
    cache_path: str = ""

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {self.max_concurrency}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            raise ValueError("timeouts must be > 0")
        if self.backoff_base_s < 0 or self.backoff_max_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("backoff and retry-after limits must be >= 0")


@dataclass(frozen=True)
class Request:
    """One chat-completions request; ``max_tokens`` None means the config's default."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int | None = None

    @staticmethod
    def of(messages: Messages, max_tokens: int | None = None) -> "Request":
        return Request(tuple(dict(m) for m in messages), max_tokens)


@dataclass(frozen=True)
class Completion:
    """What came back for one request: the answer text, or the reason it could not be had."""

    key: str
    content: str | None
    finish_reason: str | None = None
    #: answered from the cache (no request sent)
    cached: bool = False
    #: HTTP attempts made for it (0 when cached)
    attempts: int = 0
    #: None on success, else a short code: ``http_429``, ``http_500``, ``http_401``, ``timeout``,
    #: ``connection_error``, ``bad_response``
    error: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class ClientStats:
    """Counters of one client (thread-safe through the client's lock)."""

    #: requests answered by the server (fresh answers)
    answered: int = 0
    #: requests answered from the cache
    cached: int = 0
    #: HTTP attempts sent, retries included
    http_attempts: int = 0
    retries: int = 0
    #: requests that failed for good, per error code
    failed: Counter = field(default_factory=Counter)
    #: attempts that were retried, per error code
    retried: Counter = field(default_factory=Counter)

    def snapshot(self) -> dict[str, Any]:
        return {
            "answered": self.answered,
            "cached": self.cached,
            "http_attempts": self.http_attempts,
            "retries": self.retries,
            "failed": dict(self.failed),
            "retried": dict(self.retried),
        }


class _Failure(Exception):
    def __init__(self, code: str, detail: str = "", retry_after: float | None = None, retryable: bool = True):
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after
        self.retryable = retryable


def cache_key(model: str, messages: Messages, params: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of model, messages and sampling params."""
    # ASCII escapes: a lone surrogate in a document cannot break the hash (or the request body)
    payload = json.dumps(
        {"model": model, "messages": list(messages), "params": params},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Append-only JSONL cache: one ``{"key", "content", "finish_reason", ...}`` object per line.

    Only an index (key -> offset, length) stays in memory; answers are read back with ``pread``. Each
    record is appended with a single ``write`` on an ``O_APPEND`` descriptor under a lock, so lines never
    interleave. A line torn by a crash is skipped on load (and cut off from the next append by a newline).
    When a key occurs twice (two processes raced) the first line wins.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._index: dict[str, tuple[int, int]] = {}
        self.bad_lines = 0
        self._load()

    def _load(self) -> None:
        size = os.fstat(self._fd).st_size
        offset = 0
        with open(self.path, "rb") as handle:
            for raw in handle:
                length = len(raw)
                if raw.endswith(b"\n"):
                    try:
                        key = json.loads(raw)["key"]
                        if not isinstance(key, str):
                            raise TypeError("key")
                        self._index.setdefault(key, (offset, length))
                    except (ValueError, KeyError, TypeError):
                        self.bad_lines += 1
                else:
                    self.bad_lines += 1  # torn last line
                offset += length
        if size and os.pread(self._fd, 1, size - 1) != b"\n":
            os.write(self._fd, b"\n")

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> dict[str, Any] | None:
        where = self._index.get(key)
        if where is None:
            return None
        offset, length = where
        return json.loads(os.pread(self._fd, length, offset))

    def put(self, key: str, record: dict[str, Any]) -> None:
        # a lone surrogate becomes the text "\udXXX": still a valid JSON escape, so the line reads back
        data = (json.dumps({"key": key, **record}, ensure_ascii=False) + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            if key in self._index:
                return
            offset = os.lseek(self._fd, 0, os.SEEK_END)
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._index[key] = (offset, len(data))

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now_ts = time.time() if now is None else now
    return max(0.0, when.timestamp() - now_ts)


class AnnotatorClient:
    """Cached, retrying, concurrency-limited chat-completions client. Use as a context manager or ``close()``.

    ``transport``, ``sleep`` and ``rng`` are for tests (an httpx transport, the sleep function, a
    ``random.Random``); ``api_key`` overrides the environment.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not config.model:
            raise ValueError("ClientConfig.model is empty: name the annotator model")
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        key = api_key if api_key is not None else (os.environ.get(config.api_key_env, "") if config.api_key_env else "")
        self.has_api_key = bool(key)
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s),
            limits=httpx.Limits(max_connections=config.max_concurrency, max_keepalive_connections=config.max_concurrency),
            transport=transport,
        )
        self._slots = threading.BoundedSemaphore(config.max_concurrency)
        self._pool = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="annotator")
        self._lock = threading.Lock()
        self._pause_until = 0.0
        self._waited = threading.local()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.stats = ClientStats()
        self.cache = ResponseCache(config.cache_path) if config.cache_path else None

    # -- public ---------------------------------------------------------------------------------

    def params(self, max_tokens: int | None = None) -> dict[str, Any]:
        """Sampling params sent with (and hashed into the cache key of) a request."""
        return {"temperature": self.config.temperature, "max_tokens": max_tokens or self.config.max_tokens}

    def key(self, request: Request) -> str:
        return cache_key(self.config.model, request.messages, self.params(request.max_tokens))

    def complete(self, messages: Messages | Request, *, max_tokens: int | None = None) -> Completion:
        """One request: from the cache if there, else asked (with retries) and cached."""
        request = messages if isinstance(messages, Request) else Request.of(messages, max_tokens)
        params = self.params(request.max_tokens)
        key = cache_key(self.config.model, request.messages, params)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                with self._lock:
                    self.stats.cached += 1
                return Completion(key, hit.get("content"), hit.get("finish_reason"), cached=True)
        payload = {"model": self.config.model, "messages": list(request.messages), **params}
        attempts = 0
        failure: _Failure | None = None
        for attempt in range(1, self.config.max_attempts + 1):
            attempts = attempt
            try:
                content, finish_reason, usage = self._attempt(payload)
            except _Failure as exc:
                failure = exc
                if not exc.retryable or attempt == self.config.max_attempts:
                    break
                delay = self._backoff(attempt, exc.retry_after)
                with self._lock:
                    self.stats.retries += 1
                    self.stats.retried[exc.code] += 1
                    if exc.code == "http_429":
                        # rate limited: every worker holds off, this one included (in _wait_for_pause)
                        self._pause_until = max(self._pause_until, time.monotonic() + delay)
                        delay = 0.0
                if delay > 0:
                    self._sleep(delay)
                continue
            if self.cache is not None:
                self.cache.put(
                    key,
                    {
                        "model": self.config.model,
                        "content": content,
                        "finish_reason": finish_reason,
                        "usage": usage,
                        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    },
                )
            with self._lock:
                self.stats.answered += 1
            return Completion(key, content, finish_reason, cached=False, attempts=attempt)
        assert failure is not None
        with self._lock:
            self.stats.failed[failure.code] += 1
        detail = failure.detail + (f" (after {attempts} attempts)" if failure.retryable else "")
        return Completion(key, None, None, cached=False, attempts=attempts, error=failure.code, detail=detail.strip())

    def complete_many(self, requests: Sequence[Messages | Request]) -> list[Completion]:
        """All ``requests`` on the thread pool, results in input order."""
        if not requests:
            return []
        return list(self._pool.map(self.complete, requests))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._http.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> "AnnotatorClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with equal jitter; never shorter than the server's (capped) Retry-After."""
        base = min(self.config.backoff_max_s, self.config.backoff_base_s * (2 ** (attempt - 1)))
        delay = base / 2 + self._rng.uniform(0, base / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.max_retry_after_s))
        return delay

    def _wait_for_pause(self) -> None:
        """Hold off while a 429 pause runs; each thread waits out a given pause once."""
        with self._lock:
            until = self._pause_until
            remaining = until - time.monotonic()
        if remaining > 0 and getattr(self._waited, "until", 0.0) < until:
            self._waited.until = until
            self._sleep(remaining)

    def _attempt(self, payload: dict[str, Any]) -> tuple[str | None, str | None, Any]:
        self._wait_for_pause()
        with self._slots:
            with self._lock:
                self.stats.http_attempts += 1
            try:
                # serialized here with ASCII escapes (httpx would encode UTF-8 and fail on lone surrogates)
                response = self._http.post(self.url, content=json.dumps(payload).encode("ascii"))
            except httpx.TimeoutException as exc:
                raise _Failure("timeout", type(exc).__name__) from None
            except httpx.TransportError as exc:
                raise _Failure("connection_error", f"{type(exc).__name__}: {exc}"[:200]) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Failure(f"http_{status}", _snippet(response), parse_retry_after(response.headers.get("retry-after")))
        if status != 200:
            raise _Failure(f"http_{status}", _snippet(response), retryable=False)
        try:
            body = response.json()
            choice = body["choices"][0]
            content = choice["message"].get("content")
            finish_reason = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise _Failure("bad_response", _snippet(response)) from None
        if content is not None and not isinstance(content, str):
            raise _Failure("bad_response", "message.content is not a string")
        return content, finish_reason, body.get("usage") if isinstance(body, dict) else None


def _snippet(response: httpx.Response) -> str:
    try:
        text = response.text
    except Exception:  # undecodable body
        return ""
    return " ".join(text.split())[:200]


# --------------------------------------------------------------------------------------------------
# Answer checks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """An answer after its check: ``value`` (an int score or the program text) or a ``reason`` code."""

    value: Any = None
    reason: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


_SCORE_PATTERNS = {
    kind: re.compile(re.escape(label) + r"[ \t]*[:：]?[ \t*_]*([+-]?\d+(?:[.,]\d+)?)(?:\s*/\s*5)?", re.IGNORECASE)
    for kind, label in SCORE_LABELS.items()
}
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py)[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)


def _answer_problem(completion: Completion) -> Checked | None:
    if not completion.ok:
        return Checked(reason=f"request_failed:{completion.error}", detail=completion.detail)
    if completion.content is None or not completion.content.strip():
        return Checked(reason="empty_answer")
    if completion.finish_reason == "length":
        return Checked(reason="truncated", detail="the answer hit max_tokens")
    return None


def check_score(completion: Completion | str, kind: ScoreKind) -> Checked:
    """The 0-5 integer after ``Educational score:`` / ``Extraction Quality Score:``, or why there is none.

    Reasons: ``no_score`` (the line is missing), ``score_not_integer`` (e.g. 3.5), ``score_out_of_range``
    (e.g. 9), ``conflicting_scores`` (the line appears with different values), plus the transport ones.
    """
    if isinstance(completion, str):
        completion = Completion("", completion, "stop")
    problem = _answer_problem(completion)
    if problem is not None:
        return problem
    found = _SCORE_PATTERNS[kind].findall(completion.content or "")
    if not found:
        return Checked(reason="no_score", detail=f"no {SCORE_LABELS[kind]!r} line")
    values = set(found)
    if len(values) > 1:
        return Checked(reason="conflicting_scores", detail=", ".join(sorted(values)))
    text = found[0]
    if not re.fullmatch(r"[+-]?\d+", text):
        return Checked(reason="score_not_integer", detail=text)
    score = int(text)
    if not 0 <= score <= 5:
        return Checked(reason="score_out_of_range", detail=f"{score} is not in 0-5")
    return Checked(value=score)


def extract_code_block(answer: str) -> list[str]:
    """The bodies of the ```python``` blocks of ``answer``."""
    return _CODE_BLOCK.findall(answer)


def check_program(completion: Completion | str) -> Checked:
    """The program of a chunk answer: exactly one ```python``` block whose every line parses (strict dialect).

    Reasons: ``no_code_block``, ``several_code_blocks``, ``empty_program``, ``unparseable_op`` (detail
    names the line and the parser's message), ``remove_all_lines`` (``remove_lines(all=True)`` is not in
    the prompts' vocabulary), plus the transport ones. The value is the block's non-blank lines.
    """
    if isinstance(completion, str):
        completion = Completion("", completion, "stop")
    problem = _answer_problem(completion)
    if problem is not None:
        return problem
    blocks = extract_code_block(completion.content or "")
    if not blocks:
        return Checked(reason="no_code_block")
    if len(blocks) > 1:
        return Checked(reason="several_code_blocks", detail=f"{len(blocks)} python blocks")
    lines = [line.strip() for line in blocks[0].replace("\r\n", "\n").split("\n") if line.strip()]
    program = "\n".join(lines)
    parsed = parse(program, stage="chunk", dialect="strict")
    for line in parsed.lines:
        if line.status is OpStatus.PARSE_ERROR:
            return Checked(reason="unparseable_op", detail=f"{line.source_text.strip()[:120]!r}: {line.detail}")
        if isinstance(line.op, RemoveAllLines):
            return Checked(reason="remove_all_lines", detail=line.source_text.strip()[:120])
    if not any(line.op is not None for line in parsed.lines):
        return Checked(reason="empty_program", detail="no call in the code block")
    return Checked(value=program)
