"""Seed annotation job: raw documents (JSONL) -> annotated seed records (JSONL) for fine-tuning the refiners.

    python -m jobs.annotate_seed [--conf conf.yaml] input=docs.jsonl output=out/seed.jsonl \\
        endpoint.base_url=https://api.example.com/v1 endpoint.model=meta-llama/Meta-Llama-3-70B-Instruct \\
        endpoint.api_key_env=ANNOTATOR_API_KEY endpoint.max_concurrency=16

Every input line is a JSON object with the text under ``text_field`` (and an id under ``id_field``;
the line number when absent); ``.jsonl.gz`` works too. Each output line is one record of
``prox_spark.annotate.annotate_documents`` (``id, text, doc_program, chunk_program, edu_score,
format_score, status, reason, detail, notes, removed_fraction, chunks``). Documents are sent in batches
of ``batch_docs``; progress is printed after every batch and a summary at the end (requests asked,
answered from the cache, retried and failed per reason; documents per status and reason).

Answers are cached in ``endpoint.cache_path`` (default ``<output>.cache.jsonl``), so a rerun after a
crash or a failure asks only what is missing. The output is written to ``<output>.partial`` and renamed
when complete. Exit status: 0, or 1 when some documents failed for transport reasons (rerun to retry
them), 2 on a configuration or input error.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, TextIO

from prox_spark.annotate import AnnotateSettings, AnnotatorClient, ClientConfig, annotate_documents, approx_tokens
from prox_spark.config import ConfigError, load_config


@dataclass(frozen=True)
class AnnotateSeedConfig:
    #: JSONL (or .jsonl.gz) of documents
    input: str = ""
    #: annotated seed JSONL
    output: str = ""
    id_field: str = "id"
    text_field: str = "text"
    #: stop after this many documents (0: all)
    limit: int = 0
    #: documents annotated together (their requests run concurrently)
    batch_docs: int = 64
    #: tokenizer.json of the chunk refining model, for chunk budgets in its tokens ("" : ~4 chars a token)
    tokenizer: str = ""
    endpoint: ClientConfig = field(default_factory=ClientConfig)
    labels: AnnotateSettings = field(default_factory=AnnotateSettings)


@dataclass
class JobSummary:
    docs: int = 0
    bad_input_lines: int = 0
    statuses: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    client: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, records: list[dict[str, Any]]) -> None:
        for record in records:
            self.docs += 1
            self.statuses[record["status"]] += 1
            if record["reason"]:
                self.reasons[(record["status"], record["reason"])] += 1
            if record["doc_program"]:
                self.labels[record["doc_program"]] += 1

    def render(self) -> str:
        client = self.client
        lines = [
            f"documents:      {self.docs}  ({self.bad_input_lines} unreadable input lines skipped)",
            "status:         " + "  ".join(f"{k}={v}" for k, v in sorted(self.statuses.items())),
            "labels:         " + "  ".join(f"{k}={v}" for k, v in sorted(self.labels.items())),
            f"requests:       asked {client.get('answered', 0)}  cached {client.get('cached', 0)}  "
            f"http attempts {client.get('http_attempts', 0)}  retries {client.get('retries', 0)}",
            "retried:        " + _counts(client.get("retried", {})),
            "failed requests:" + " " + _counts(client.get("failed", {})),
            "documents not ok, per reason:",
            *[f"  {n:>6}  {status}  {reason}" for (status, reason), n in self.reasons.most_common()],
            f"time:           {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    return "  ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_documents(config: AnnotateSeedConfig, summary: JobSummary, log: TextIO) -> Iterator[tuple[Any, Any]]:
    """(id, text) per readable input line; unreadable lines are counted and named on ``log``."""
    path = Path(config.input)
    count = 0
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                summary.bad_input_lines += 1
                print(f"[annotate_seed] {path}:{number}: skipped, {exc}", file=log)
                continue
            yield obj.get(config.id_field, number), obj.get(config.text_field)
            count += 1
            if config.limit and count >= config.limit:
                return


def _batches(items: Iterator[tuple[Any, Any]], size: int) -> Iterator[list[tuple[Any, Any]]]:
    batch: list[tuple[Any, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count_tokens(config: AnnotateSeedConfig) -> Callable[[str], int]:
    if not config.tokenizer:
        return approx_tokens
    from tokenizers import Tokenizer  # noqa: PLC0415 - optional, only with a tokenizer file

    from prox_spark.chunking import token_counter

    return token_counter(Tokenizer.from_file(config.tokenizer))


def run(config: AnnotateSeedConfig, *, client: AnnotatorClient | None = None, log: TextIO = sys.stdout) -> JobSummary:
    """Annotate ``config.input`` into ``config.output``; ``client`` overrides the one built from the config."""
    if not config.input or not config.output:
        raise ConfigError("input and output must be set (input=docs.jsonl output=seed.jsonl)")
    if not Path(config.input).is_file():
        raise ConfigError(f"input: file not found: {config.input}")
    if config.batch_docs < 1:
        raise ConfigError(f"batch_docs: must be >= 1, got {config.batch_docs}")
    output = Path(config.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    endpoint = config.endpoint
    if not endpoint.cache_path:
        endpoint = replace(endpoint, cache_path=str(output) + ".cache.jsonl")
    own_client = client is None
    if client is None:
        client = AnnotatorClient(endpoint)
        if endpoint.api_key_env and not client.has_api_key:
            print(f"[annotate_seed] note: ${endpoint.api_key_env} is not set, sending no API key", file=log)
    count_tokens = _count_tokens(config)
    summary = JobSummary()
    started = time.monotonic()
    partial = output.with_name(output.name + ".partial")
    try:
        cached_at_start = len(client.cache) if client.cache is not None else 0
        print(
            f"[annotate_seed] {config.input} -> {output}  model {endpoint.model} at {endpoint.base_url}  "
            f"cache {client.cache.path if client.cache is not None else 'off'} ({cached_at_start} answers)",
            file=log,
        )
        # backslashreplace: a lone surrogate in a text is written as the JSON escape "\udXXX" (valid JSON)
        with open(partial, "w", encoding="utf-8", errors="backslashreplace") as out:
            for batch in _batches(read_documents(config, summary, log), config.batch_docs):
                records = annotate_documents(
                    [text for _, text in batch],
                    client,
                    ids=[doc_id for doc_id, _ in batch],
                    settings=config.labels,
                    count_tokens=count_tokens,
                )
                for record in records:
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                out.flush()
                summary.add(records)
                stats = client.stats.snapshot()
                print(
                    f"[annotate_seed] docs {summary.docs}  ok {summary.statuses['ok']}  review {summary.statuses['review']}  "
                    f"invalid {summary.statuses['invalid']}  failed {summary.statuses['failed']}  |  asked {stats['answered']}  "
                    f"cached {stats['cached']}  retries {stats['retries']}  {time.monotonic() - started:.0f} s",
                    file=log,
                    flush=True,
                )
        os.replace(partial, output)
    finally:
        summary.client = client.stats.snapshot()
        summary.seconds = time.monotonic() - started
        if own_client:
            client.close()
    print(summary.render(), file=log)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobs.annotate_seed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--conf", default=None, help="YAML config (keys of AnnotateSeedConfig)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. endpoint.model=NAME")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.conf, args.overrides, cls=AnnotateSeedConfig)
        summary = run(config)
    except ConfigError as exc:
        print(f"[annotate_seed] configuration error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"[annotate_seed] error: {exc}", file=sys.stderr)
        return 2
    if summary.statuses["failed"]:
        print(
            f"[annotate_seed] {summary.statuses['failed']} documents failed on requests; rerun to retry them "
            "(every answer so far is cached)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
