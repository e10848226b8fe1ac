"""Seed annotation through an OpenAI-compatible endpoint with the ProX prompts (prox-reference.md §3).

Needs ``httpx`` (the ``train`` extra). Public API:

- prompts: ``score_messages(kind, text)`` (kind ``edu`` / ``format``), ``chunk_messages(kind, numbered)``
  (kind ``nav`` / ``url`` / ``footer``), ``SCORE_KINDS``, ``CHUNK_KINDS``, ``SCORE_LABELS``;
- client: ``ClientConfig``, ``AnnotatorClient`` (``complete``, ``complete_many``, ``stats``), ``Request``,
  ``Completion``, ``ResponseCache``, ``cache_key``; answer checks ``check_score``, ``check_program``
  returning ``Checked`` (value or reason code);
- labels: ``keep_doc(edu, fmt)``, ``doc_program(edu, fmt)``, ``merge_programs(...)`` -> ``MergedProgram``,
  ``merge_ranges``, ``AnnotateSettings``, ``annotate_documents(texts, client, ...)`` -> records with
  ``RECORD_KEYS``, ``summarize(records)``.

Entry point: ``python -m jobs.annotate_seed``.
"""

from prox_spark.annotate.client import (
    AnnotatorClient,
    Checked,
    ClientConfig,
    ClientStats,
    Completion,
    Request,
    ResponseCache,
    cache_key,
    check_program,
    check_score,
    parse_retry_after,
)
from prox_spark.annotate.labels import (
    DEFAULT_MAX_REMOVED_FRACTION,
    DROP_DOC,
    KEEP_DOC,
    RECORD_KEYS,
    STATUSES,
    AnnotateSettings,
    MergedProgram,
    annotate_documents,
    approx_tokens,
    doc_program,
    keep_doc,
    merge_programs,
    merge_ranges,
    summarize,
)
from prox_spark.annotate.prompts import (
    CHUNK_KINDS,
    SCORE_KINDS,
    SCORE_LABELS,
    chunk_messages,
    chunk_prompt,
    score_messages,
    score_prompt,
)

__all__ = [
    "CHUNK_KINDS",
    "DEFAULT_MAX_REMOVED_FRACTION",
    "DROP_DOC",
    "KEEP_DOC",
    "RECORD_KEYS",
    "SCORE_KINDS",
    "SCORE_LABELS",
    "STATUSES",
    "AnnotateSettings",
    "AnnotatorClient",
    "Checked",
    "ClientConfig",
    "ClientStats",
    "Completion",
    "MergedProgram",
    "Request",
    "ResponseCache",
    "annotate_documents",
    "approx_tokens",
    "cache_key",
    "check_program",
    "check_score",
    "chunk_messages",
    "chunk_prompt",
    "doc_program",
    "keep_doc",
    "merge_programs",
    "merge_ranges",
    "parse_retry_after",
    "score_messages",
    "score_prompt",
    "summarize",
]
