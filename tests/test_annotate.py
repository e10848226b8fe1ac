"""Seed annotation: prompts, the chat-completions client against a local stand-in server, labels and merging.

The stand-in server (``FakeLLM``) is a ``ThreadingHTTPServer`` on 127.0.0.1 with a random port, started and
stopped by each test through the ``llm`` fixture; it answers ``POST /chat/completions`` from a script and
refuses to serve more than ``max_requests`` requests. All client tests go through ``AnnotatorClient``
itself (real HTTP), with short timeouts and a recording ``sleep`` where backoff would otherwise wait.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from prox_spark.annotate import (
    CHUNK_KINDS,
    AnnotateSettings,
    AnnotatorClient,
    ClientConfig,
    Completion,
    Request,
    ResponseCache,
    annotate_documents,
    check_program,
    check_score,
    chunk_messages,
    doc_program,
    keep_doc,
    merge_programs,
    merge_ranges,
    parse_retry_after,
    score_messages,
)
from prox_spark.annotate import prompts as prompts_module
from prox_spark.annotate.labels import quote
from prox_spark.chunking import numbered_lines
from prox_spark.programs import Normalize, execute, parse

# --------------------------------------------------------------------------------------------------
# The stand-in server
# --------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    content: str | None = "ok"
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw_body: bytes | None = None


Responder = Callable[[str, int], Reply]  # (user content, attempt number for that content from 1) -> Reply


class FakeLLM:
    """OpenAI-compatible stand-in: scripted answers, counts requests and the most requests in flight."""

    def __init__(self, responder: Responder, *, max_requests: int = 300) -> None:
        self.responder = responder
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.attempts: Counter = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                self._in_flight = True
                try:
                    self._serve()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    self._leave()

            def _leave(self):
                """The request is no longer in flight: called before its reply is written, since a client that
                has read a reply may send its next request before this thread returns."""
                if self._in_flight:
                    self._in_flight = False
                    with fake.lock:
                        fake.in_flight -= 1

            def _serve(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with fake.lock:
                    over = len(fake.requests) >= fake.max_requests
                    if not over:
                        fake.requests.append(body)
                        fake.headers.append(dict(self.headers))
                        content = body["messages"][-1]["content"]
                        fake.attempts[content] += 1
                        attempt = fake.attempts[content]
                if over:
                    return self._send(Reply(status=503, raw_body=b"request budget of the test server spent"))
                if not self.path.endswith("/chat/completions"):
                    return self._send(Reply(status=404, raw_body=b"not found"))
                self._send(fake.responder(content, attempt))

            def _send(self, reply: Reply):
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw_body is not None:
                    data = reply.raw_body
                else:
                    data = json.dumps(
                        {
                            "id": "x",
                            "object": "chat.completion",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": reply.content},
                                    "finish_reason": reply.finish_reason,
                                }
                            ],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
                        }
                    ).encode()
                self._leave()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # quiet on client disconnects
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def start(self) -> "FakeLLM":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def llm():
    """``llm(responder, max_requests=...)`` starts a stand-in server; all are stopped after the test."""
    servers: list[FakeLLM] = []

    def start(responder: Responder, **kwargs) -> FakeLLM:
        server = FakeLLM(responder, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class RecordingSleep:
    """Stands in for ``time.sleep``: records the delays and waits only a token amount."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self.lock:
            self.delays.append(seconds)
        time.sleep(min(seconds, 0.01))


def make_client(server: FakeLLM, tmp_path: Path | None = None, *, sleep=None, api_key: str | None = "test-key", **overrides):
    fields = dict(
        base_url=server.base_url,
        model="annotator-test",
        timeout_s=5.0,
        connect_timeout_s=2.0,
        max_concurrency=4,
        max_attempts=4,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
        cache_path=str(tmp_path / "cache.jsonl") if tmp_path is not None else "",
    )
    fields.update(overrides)
    return AnnotatorClient(ClientConfig(**fields), api_key=api_key, sleep=sleep or RecordingSleep())


# --------------------------------------------------------------------------------------------------
# A scripted annotator for whole documents
# --------------------------------------------------------------------------------------------------

TASK_TEXT = {kind: prompts_module._TASKS[kind] for kind in CHUNK_KINDS}


def prompt_kind(content: str) -> str:
    if content.rstrip().endswith("Educational score: <total points>"):
        return "edu"
    if content.rstrip().endswith("Extraction Quality Score: <total points>"):
        return "format"
    for kind, task in TASK_TEXT.items():
        if task in content:
            return kind
    raise AssertionError("unknown prompt")


def passage(content: str) -> str:
    """The document (score prompts) or numbered chunk (chunk prompts) inside a prompt."""
    if prompt_kind(content) in ("edu", "format"):
        return content.split("<passage>\n", 1)[1].split("\n</passage>", 1)[0]
    return content.split("Now the text to clean:\n<text>\n", 1)[1].rsplit("\n</text>", 1)[0]


def script_responder(content: str, attempt: int) -> Reply:
    """Answers from markers in the document: ``EDU=n FMT=n`` and ``NAV:/URL:/FOOTER:`` answer overrides."""
    try:
        kind = prompt_kind(content)
    except AssertionError:
        return Reply(content=f"plain answer to {content[:20]}")
    text = passage(content)
    if kind in ("edu", "format"):
        marker = re.search(r"EDU=(\S+) FMT=(\S+)", text)
        value = marker.group(1 if kind == "edu" else 2)
        label = "Educational score" if kind == "edu" else "Extraction Quality Score"
        if value == "none":
            return Reply(content="The page is about cats. I cannot decide.")
        return Reply(content=f"The extract covers a school topic clearly.\n{label}: {value}")
    # chunk prompts: the document carries one line "KIND:<program or MALFORMED>" per kind to answer with
    override = re.search(rf"{kind.upper()}:(.*)", text)
    if override is None:
        return Reply(content="Nothing to do here.\n```python\nuntouch_doc()\n```")
    program = override.group(1).replace("\\n", "\n")
    if program == "NOBLOCK":
        return Reply(content="I would remove line 3.")
    return Reply(content=f"Analysis: see the lines.\n```python\n{program}\n```")


GOOD_DOC = "\n".join(
    [
        "Home | About | Shop",  # 0 nav
        "Fractions for beginners EDU=4 FMT=2",  # 1
        "A fraction names a part of a whole. See https://ex.org/f for pictures.",  # 2
        "Halves, thirds and quarters are the first fractions pupils meet.",  # 3
        "© 2024 Example School  NAV:remove_lines(start=0, end=0)",  # 4
        "Privacy | Terms  URL:normalize(source_str=\" See https://ex.org/f for pictures.\", target_str=\"\")",  # 5
        "FOOTER:remove_lines(start=4, end=5)\\nremove_lines(start=5, end=5)",  # 6
    ]
)
DROPPED_DOC = "Buy cheap watches now EDU=1 FMT=5\nBest prices online."
BORDERLINE_DOC = "How bees make honey EDU=2 FMT=4\nBees collect nectar and store it in the hive."


# --------------------------------------------------------------------------------------------------
# Prompts
# --------------------------------------------------------------------------------------------------


def test_prompts_carry_the_answer_formats_and_the_text():
    doc = "Some {braces} and text"
    edu = score_messages("edu", doc)
    fmt = score_messages("format", doc)
    assert edu[0]["role"] == "user" and doc in edu[0]["content"]
    assert edu[0]["content"].rstrip().endswith("Educational score: <total points>")
    assert fmt[0]["content"].rstrip().endswith("Extraction Quality Score: <total points>")
    numbered = "\n".join(numbered_lines("first\nsecond"))
    for kind in CHUNK_KINDS:
        content = chunk_messages(kind, numbered)[0]["content"]
        assert content.rstrip().endswith(f"<text>\n{numbered}\n</text>")
        for name in ("untouch_doc()", "remove_lines(start: int, end: int)", "normalize(source_str: str"):
            assert name in content
        # every few-shot program is valid in the strict dialect
        for program in prompts_module.example_programs(kind):
            assert check_program(f"```python\n{program}\n```").ok
    with pytest.raises(ValueError):
        score_messages("style", doc)
    with pytest.raises(ValueError):
        chunk_messages("ads", numbered)


# --------------------------------------------------------------------------------------------------
# Answer checks
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer, kind, value, reason",
    [
        ("Critique.\nEducational score: 3", "edu", 3, ""),
        ("Critique.\n**Educational score:** 5/5", "edu", 5, ""),
        ("Extraction Quality Score: 0", "format", 0, ""),
        ("Critique only.", "edu", None, "no_score"),
        ("Educational score: 9", "edu", None, "score_out_of_range"),
        ("Educational score: -1", "edu", None, "score_out_of_range"),
        ("Educational score: 3.5", "edu", None, "score_not_integer"),
        ("Educational score: 2\nEducational score: 4", "edu", None, "conflicting_scores"),
        ("Educational score: 4", "format", None, "no_score"),
        ("   ", "edu", None, "empty_answer"),
    ],
)
def test_check_score(answer, kind, value, reason):
    checked = check_score(answer, kind)
    assert (checked.value, checked.reason) == (value, reason)


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("Fine.\n```python\nremove_lines(start=1, end=2)\n```", ""),
        ("Fine.\n```python\n# nav bar\nuntouch_doc()\n```", ""),
        ("No block, just remove_lines(start=1, end=2)", "no_code_block"),
        ("```\nremove_lines(start=1, end=2)\n```", "no_code_block"),
        ("```python\nremove_lines(1)\n```\n```python\nuntouch_doc()\n```", "several_code_blocks"),
        ("```python\nremove_lines(start=1, end=\n```", "unparseable_op"),
        ("```python\nremove_lines(start=5, end=2)\n```", "unparseable_op"),
        ("```python\ndelete_everything()\n```", "unparseable_op"),
        ("```python\nimport os; os.system('x')\n```", "unparseable_op"),
        ("```python\nremove_lines(all=True)\n```", "remove_all_lines"),
        ("```python\n# nothing\n```", "empty_program"),
    ],
)
def test_check_program(answer, reason):
    assert check_program(answer).reason == reason


def test_check_rejects_truncated_and_failed_completions():
    truncated = Completion("k", "Educational score: 3", finish_reason="length")
    assert check_score(truncated, "edu").reason == "truncated"
    failed = Completion("k", None, error="http_500", detail="boom")
    assert check_program(failed).reason == "request_failed:http_500"


# --------------------------------------------------------------------------------------------------
# Doc label rule
# --------------------------------------------------------------------------------------------------

LABEL_TABLE = [
    # edu, format, keep
    (0, 5, False),
    (1, 5, False),
    (2, 0, False),
    (2, 3, False),
    (2, 4, True),
    (2, 5, True),
    (3, 0, True),
    (4, 1, True),
    (5, 5, True),
]


@pytest.mark.parametrize("edu, fmt, keep", LABEL_TABLE)
def test_label_table(edu, fmt, keep):
    assert keep_doc(edu, fmt) is keep
    assert doc_program(edu, fmt) == ("keep_doc()" if keep else "drop_doc()")


def test_label_rule_over_every_score_pair():
    for edu in range(6):
        for fmt in range(6):
            assert keep_doc(edu, fmt) == (edu >= 3 or (edu == 2 and fmt >= 4))


@pytest.mark.parametrize("edu, fmt", [(6, 0), (-1, 3), (3, 7), (2.0, 4), (True, 4), (None, 3)])
def test_label_rejects_bad_scores(edu, fmt):
    with pytest.raises(ValueError):
        keep_doc(edu, fmt)


# --------------------------------------------------------------------------------------------------
# Merging chunk programs
# --------------------------------------------------------------------------------------------------


def test_merge_dedupes_merges_ranges_and_drops_untouch():
    merged = merge_programs(
        [
            "remove_lines(start=0, end=1)",  # nav
            'normalize(source_str="http://x.org", target_str="")\nremove_lines(start=8, end=8)',  # url
            "remove_lines(start=1, end=3)\nremove_lines(start=4, end=4)\n"
            'normalize(source_str="http://x.org", target_str="")\nremove_lines(start=0, end=1)',  # footer
            "untouch_doc()",
        ],
        n_lines=20,
    )
    assert merged.removals == [(0, 4), (8, 8)]
    assert merged.normalizations == [("http://x.org", "")]
    assert merged.program == (
        "remove_lines(line_start=0, line_end=4)\nremove_lines(line_start=8, line_end=8)\n"
        'normalize(source_str="http://x.org", target_str="")'
    )
    assert merged.removed_lines == 6 and merged.removed_fraction == pytest.approx(0.3)
    assert not merged.needs_review and not merged.notes


def test_merge_of_only_untouch_is_untouch():
    assert merge_programs(["untouch_doc()", "untouch_doc()", "# none\nuntouch_doc()"]).program == "untouch_doc()"
    assert merge_programs([], noop="keep_chunk").program == "keep_chunk()"


def test_merge_ranges():
    assert merge_ranges([(5, 6), (0, 2), (3, 3), (10, 12), (11, 11)]) == [(0, 3), (5, 6), (10, 12)]
    assert merge_ranges([]) == []


def test_removal_ratio_guard():
    programs = ["remove_lines(start=0, end=2)", "remove_lines(start=7, end=9)"]
    assert not merge_programs(programs, n_lines=10, max_removed_fraction=0.6).needs_review  # 60% is not > 60%
    flagged = merge_programs(programs, n_lines=10, max_removed_fraction=0.5)
    assert flagged.needs_review and flagged.removed_fraction == pytest.approx(0.6)


def test_merge_checks_ranges_and_sources_against_the_document():
    text = "\n".join(f"line {i} www.a.org" for i in range(10))
    merged = merge_programs(
        [
            "remove_lines(start=3, end=7)",  # shown lines 0-4: clipped to 3-4
            "remove_lines(start=20, end=25)",  # outside: dropped
            'normalize(source_str="www.a.org")\nnormalize(source_str="not there")',
            'normalize(source_str="www.a.org", target_str="[link]")',  # conflicting target: first wins
            'normalize(source_str="line 1", target_str="line 1")',  # no-op
            "remove_lines(start=1",  # unparseable: dropped with a note
        ],
        text=text,
        line_ranges=[(0, 4), (5, 9), (0, 9), (0, 9), (0, 9), (0, 9)],
    )
    assert merged.removals == [(3, 4)]
    assert merged.normalizations == [("www.a.org", "")]
    assert merged.n_lines == 10
    notes = "\n".join(merged.notes)
    for expected in ("clipped to 3-4", "outside lines 5-9", "source not in the text", "second target", "no-op", "unparseable"):
        assert expected in notes


def test_merged_program_parses_strictly_and_executes():
    text = 'Menu | Home\nSay "hi" (c) a=b, c\nbody line with several words in it for the counter\nFooter'
    merged = merge_programs(
        ['normalize(source_str="Say \\"hi\\" (c) a=b, c", target_str="Hello")', "remove_lines(start=0, end=0)", "remove_lines(start=3, end=3)"],
        text=text,
    )
    parsed = parse(merged.program, stage="chunk", dialect="strict")
    assert all(line.status.value == "applied" for line in parsed.lines)
    result = execute(text, merged.program, stage="chunk", dialect="strict")
    assert result.text == "Hello\nbody line with several words in it for the counter"


def test_normalizations_longest_source_first():
    merged = merge_programs(['normalize(source_str="x.org")', 'normalize(source_str="see x.org now")'])
    assert [s for s, _ in merged.normalizations] == ["see x.org now", "x.org"]


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=30), st.text(max_size=10))
def test_quote_round_trips_through_the_strict_parser(source, target):
    # strings with line breaks never come out of the strict parser (they would shift line numbers)
    assume(not any(c in source + target for c in "\r\n"))
    program = f"normalize(source_str={quote(source)}, target_str={quote(target)})"
    [line] = parse(program, stage="chunk", dialect="strict").lines
    assert line.op == Normalize(source, target) or (source.strip() == "" and line.status.value == "skipped")


# --------------------------------------------------------------------------------------------------
# The client against the stand-in server
# --------------------------------------------------------------------------------------------------


def test_normal_answers_through_the_server(llm, tmp_path):
    server = llm(script_responder)
    settings_ = AnnotateSettings(doc_max_tokens=300, chunk_max_tokens=600)
    with make_client(server, tmp_path) as client:
        records = annotate_documents([GOOD_DOC, DROPPED_DOC, BORDERLINE_DOC], client, ids=["a", "b", "c"], settings=settings_)
    good, dropped, borderline = records
    assert (good["id"], good["edu_score"], good["format_score"], good["doc_program"]) == ("a", 4, 2, "keep_doc()")
    assert good["status"] == "ok", good
    assert good["chunk_program"] == (
        "remove_lines(line_start=0, line_end=0)\nremove_lines(line_start=4, line_end=5)\n"
        'normalize(source_str=" See https://ex.org/f for pictures.", target_str="")'
    )
    assert good["removed_fraction"] == pytest.approx(3 / 7)
    assert good["chunks"] == [{"chunk_index": 0, "first_line": 0, "last_line": 6, "program": good["chunk_program"]}]
    assert (dropped["doc_program"], dropped["chunk_program"], dropped["status"]) == ("drop_doc()", None, "ok")
    assert (borderline["doc_program"], borderline["chunk_program"]) == ("keep_doc()", "untouch_doc()")
    # 2 score requests per doc, 3 chunk requests per kept one-chunk doc
    assert server.count == 2 * 3 + 3 * 2
    body = server.requests[0]
    assert body["model"] == "annotator-test" and body["temperature"] == 0.0
    assert {r["max_tokens"] for r in server.requests} == {300, 600}
    assert all(h.get("Authorization") == "Bearer test-key" for h in server.headers)


def test_api_key_comes_from_the_named_env_var(llm, monkeypatch):
    server = llm(lambda content, attempt: Reply(content="Educational score: 1"))
    monkeypatch.setenv("PROX_TEST_ANNOTATOR_KEY", "from-env")
    config = ClientConfig(base_url=server.base_url, model="m", api_key_env="PROX_TEST_ANNOTATOR_KEY")
    with AnnotatorClient(config) as client:
        assert client.complete([{"role": "user", "content": "hi"}]).ok
    monkeypatch.delenv("PROX_TEST_ANNOTATOR_KEY")
    with AnnotatorClient(config) as client:
        assert not client.has_api_key
        assert client.complete([{"role": "user", "content": "hi again"}]).ok
    assert server.headers[0]["Authorization"] == "Bearer from-env"
    assert "Authorization" not in server.headers[1]


def test_malformed_answers_are_invalid_with_reasons(llm, tmp_path):
    docs = [
        "no score here EDU=none FMT=3",
        "score nine EDU=9 FMT=3",
        "good scores EDU=3 FMT=3\nNAV:NOBLOCK",
        "good scores EDU=3 FMT=3\nURL:remove_lines(start=1, end=\\nuntouch_doc()",
        "format missing EDU=4 FMT=none",
        "   ",
    ]
    server = llm(script_responder)
    with make_client(server, tmp_path) as client:
        records = annotate_documents(docs, client)
    got = [(r["status"], r["reason"]) for r in records]
    assert got == [
        ("invalid", "edu:no_score"),
        ("invalid", "edu:score_out_of_range"),
        ("invalid", "chunk/nav:no_code_block"),
        ("invalid", "chunk/url:unparseable_op"),
        ("invalid", "format:no_score"),
        ("invalid", "empty_text"),
    ]
    assert records[1]["edu_score"] is None and "9" in records[1]["detail"]
    assert records[3]["chunk_program"] is None and "lines 0-1" in records[3]["detail"]
    assert records[4]["edu_score"] == 4 and records[4]["doc_program"] is None
    # invalid docs stop early: no chunk requests for docs whose scores failed, none for the blank one
    assert server.count == 5 * 2 + 2 * 3


def test_slow_answer_times_out_then_retry_succeeds(llm):
    def responder(content, attempt):
        return Reply(content="Educational score: 3", delay=1.0 if attempt == 1 else 0.0)

    server = llm(responder)
    sleep = RecordingSleep()
    with make_client(server, sleep=sleep, timeout_s=0.3, max_attempts=3) as client:
        started = time.monotonic()
        completion = client.complete([{"role": "user", "content": "slow one"}])
        elapsed = time.monotonic() - started
    assert completion.ok and completion.attempts == 2 and completion.content == "Educational score: 3"
    assert client.stats.retried["timeout"] == 1 and client.stats.answered == 1
    assert len(sleep.delays) == 1 and 0.025 <= sleep.delays[0] <= 0.05  # backoff of attempt 1: base/2..base
    assert elapsed < 1.0  # the client did not wait for the slow answer
    assert server.count == 2


def test_429_with_retry_after_then_500_then_success(llm):
    def responder(content, attempt):
        if attempt == 1:
            return Reply(status=429, raw_body=b'{"error": "slow down"}', headers={"Retry-After": "3"})
        if attempt == 2:
            return Reply(status=500, raw_body=b"internal error")
        return Reply(content="Extraction Quality Score: 4")

    server = llm(responder)
    sleep = RecordingSleep()
    with make_client(server, sleep=sleep, max_attempts=4) as client:
        completion = client.complete([{"role": "user", "content": "busy"}])
    assert completion.ok and completion.attempts == 3
    assert check_score(completion, "format").value == 4
    assert client.stats.retried == Counter({"http_429": 1, "http_500": 1})
    # Retry-After honoured (3 s, waited in the shared pause), then exponential backoff for attempt 2
    assert len(sleep.delays) == 2
    assert 2.9 <= sleep.delays[0] <= 3.0
    assert 0.05 <= sleep.delays[1] <= 0.1
    assert server.count == 3


def test_retries_are_bounded_and_client_errors_not_retried(llm):
    def responder(content, attempt):
        if "always broken" in content:
            return Reply(status=503, raw_body=b"down")
        if "bad key" in content:
            return Reply(status=401, raw_body=b'{"error": "invalid api key"}')
        return Reply(status=200, raw_body=b"<html>not json</html>")

    server = llm(responder)
    sleep = RecordingSleep()
    with make_client(server, sleep=sleep, max_attempts=3) as client:
        broken = client.complete([{"role": "user", "content": "always broken"}])
        unauthorized = client.complete([{"role": "user", "content": "bad key"}])
        garbled = client.complete([{"role": "user", "content": "garbled"}])
    assert (broken.error, broken.attempts) == ("http_503", 3)
    assert "after 3 attempts" in broken.detail
    assert (unauthorized.error, unauthorized.attempts) == ("http_401", 1)
    assert "invalid api key" in unauthorized.detail
    assert (garbled.error, garbled.attempts) == ("bad_response", 3)
    assert client.stats.failed == Counter({"http_503": 1, "http_401": 1, "bad_response": 1})
    # backoff doubles, capped at backoff_max_s (0.2): attempts 1, 2 -> ~0.05, ~0.1
    assert all(0.025 <= d <= 0.2 for d in sleep.delays) and len(sleep.delays) == 4
    assert server.count == 3 + 1 + 3
    # failures are not cached (there is no cache here) and surface as failed records
    assert check_score(broken, "edu").reason == "request_failed:http_503"


def test_connection_refused_is_retried_then_failed(llm):
    server = llm(lambda content, attempt: Reply())
    dead_url = server.base_url
    server.stop()
    config = ClientConfig(base_url=dead_url, model="m", max_attempts=2, backoff_base_s=0.01, timeout_s=1, connect_timeout_s=1)
    with AnnotatorClient(config, sleep=RecordingSleep()) as client:
        completion = client.complete([{"role": "user", "content": "anyone?"}])
    assert completion.error == "connection_error" and completion.attempts == 2


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)


def test_cache_makes_the_second_run_send_nothing(llm, tmp_path):
    server = llm(script_responder)
    docs = [GOOD_DOC, DROPPED_DOC, BORDERLINE_DOC]
    with make_client(server, tmp_path) as client:
        first = annotate_documents(docs, client)
    sent = server.count
    assert sent == 12 and client.stats.answered == 12 and client.stats.cached == 0
    # a crash mid-append leaves a torn line: it is skipped, and later appends stay readable
    with open(tmp_path / "cache.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"key": "torn", "content": "Educ')
    with make_client(server, tmp_path) as client:
        second = annotate_documents(docs, client)
        assert client.cache.bad_lines == 1 and len(client.cache) == 12
        extra = client.complete([{"role": "user", "content": "new question"}], max_tokens=5)
        assert extra.ok and not extra.cached
    assert second == first
    assert client.stats.cached == 12 and client.stats.answered == 1
    assert server.count == sent + 1
    # and a third client finds everything, the appended answer included
    with make_client(server, tmp_path) as client:
        again = client.complete([{"role": "user", "content": "new question"}], max_tokens=5)
        assert again.cached and again.content == extra.content
    assert server.count == sent + 1
    # different params are a different key
    with make_client(server, tmp_path) as client:
        assert not client.complete([{"role": "user", "content": "new question"}], max_tokens=6).cached


def test_lone_surrogates_survive_request_and_cache(llm, tmp_path):
    server = llm(script_responder)
    messages = [{"role": "user", "content": "odd \ud800 text"}]
    with make_client(server, tmp_path) as client:
        first = client.complete(messages)
    with make_client(server, tmp_path) as client:
        second = client.complete(messages)
    assert first.ok and second.cached and second.content == first.content == "plain answer to odd \ud800 text"
    assert server.count == 1


def test_cache_appends_from_many_threads_stay_whole(tmp_path):
    cache = ResponseCache(tmp_path / "c.jsonl")
    payload = "x" * 5000

    def put(i: int) -> None:
        cache.put(f"k{i}", {"content": f"{i}:{payload}"})

    threads = [threading.Thread(target=put, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cache.close()
    reread = ResponseCache(tmp_path / "c.jsonl")
    assert len(reread) == 40 and reread.bad_lines == 0
    assert reread.get("k17")["content"] == f"17:{payload}"
    reread.close()


def test_concurrency_limit_is_respected(llm):
    server = llm(lambda content, attempt: Reply(content="Educational score: 2", delay=0.15))
    with make_client(server, max_concurrency=3) as client:
        requests = [[{"role": "user", "content": f"question {i}"}] for i in range(12)]
        started = time.monotonic()
        completions = client.complete_many(requests)
        elapsed = time.monotonic() - started
    assert all(c.ok for c in completions)
    assert [c.key for c in completions] == [client.key(client_request) for client_request in map(_req, requests)]
    assert server.count == 12
    assert server.max_in_flight == 3  # ran in parallel, never more than the limit
    assert elapsed >= 4 * 0.15 - 0.05


def _req(messages):
    return Request.of(messages)


def test_review_status_when_too_much_is_removed(llm, tmp_path):
    doc = "\n".join(["Heavy page EDU=3 FMT=3", "a", "b", "c", "NAV:remove_lines(start=0, end=2)", "FOOTER:remove_lines(start=3, end=5)"])
    server = llm(script_responder)
    with make_client(server, tmp_path) as client:
        [record] = annotate_documents([doc], client, settings=AnnotateSettings(max_removed_fraction=0.5))
    assert record["status"] == "review" and record["reason"] == "removed_fraction"
    assert record["chunk_program"] == "remove_lines(line_start=0, line_end=5)"
    assert "6 of 6 lines" in record["detail"]


def test_long_documents_are_chunked_and_programs_stay_global(llm, tmp_path):
    lines = ["Long page EDU=5 FMT=5"] + [f"content line {i} with some words" for i in range(1, 30)]
    lines[25] = "NAV:remove_lines(start=25, end=26)"  # in the second chunk
    lines[3] = "URL:remove_lines(start=2, end=40)"  # runs past its chunk: clipped
    server = llm(script_responder)
    with make_client(server, tmp_path) as client:
        [record] = annotate_documents(
            ["\n".join(lines)], client, settings=AnnotateSettings(max_chunk_tokens=100, max_removed_fraction=1.0)
        )
    chunks = record["chunks"]
    assert len(chunks) >= 2 and chunks[0]["first_line"] == 0 and chunks[-1]["last_line"] == 29
    assert server.count == 2 + 3 * len(chunks)
    first_last = chunks[0]["last_line"]
    assert chunks[0]["program"] == f"remove_lines(line_start=2, line_end={first_last})"
    assert record["chunk_program"].startswith(f"remove_lines(line_start=2, line_end={first_last})")
    assert "remove_lines(line_start=25, line_end=26)" in record["chunk_program"]
    assert any("clipped" in note for note in record["notes"])


# --------------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------------


def test_job_writes_records_and_reruns_from_cache(llm, tmp_path, capsys):
    from prox_spark.jobs.annotate_seed import main

    source = tmp_path / "docs.jsonl"
    rows = [{"id": "g", "text": GOOD_DOC}, {"id": "d", "text": DROPPED_DOC}, {"id": "n", "text": "EDU=none FMT=1"}]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n", encoding="utf-8")
    server = llm(script_responder)
    output = tmp_path / "out" / "seed.jsonl"
    args = [
        f"input={source}",
        f"output={output}",
        f"endpoint.base_url={server.base_url}",
        "endpoint.model=annotator-test",
        "endpoint.api_key_env=PROX_TEST_UNSET_KEY",
        "endpoint.backoff_base_s=0.01",
        "batch_docs=2",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["g", "d", "n"]
    assert [r["status"] for r in records] == ["ok", "ok", "invalid"]
    assert "documents:      3  (1 unreadable input lines skipped)" in out
    assert "asked 9  cached 0" in out and "edu:no_score" in out
    assert (tmp_path / "out" / "seed.jsonl.cache.jsonl").is_file()
    sent = server.count
    assert main(args) == 0
    assert server.count == sent
    assert "asked 0  cached 9" in capsys.readouterr().out
    assert main(["endpoint.model=x", "input=/nonexistent.jsonl", f"output={output}"]) == 2
    assert main([f"input={source}", f"output={output}", "endpoint.max_concurrency=zero"]) == 2
