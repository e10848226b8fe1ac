"""The audits that need a run's input text, and one document's programs next to its result.

The tables keep only the final text, so the text of removed lines and before/after diffs re-read the run's
input with the job's own reader (``read_input_texts``), from the input path the run recorded in ``runs`` (or
``input_path``), and trust a document only when it still has the word and line counts the run recorded
(``DocumentReport.input_matches``). The table-only audits are ``udfs.audit``, which also re-exports the
names here (``from udfs.audit import sample_reports``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs.audit import AuditError, Output, as_output, audit_doc_results, audit_sql, run_config
from prox_spark.udfs.tables import REFINED, read_table
from prox_spark.text import count_lines

__all__ = [
    "DocumentReport",
    "INPUT_TEXT_VIEW",
    "SAMPLE_KINDS",
    "audit_removed_line_patterns",
    "document_report",
    "read_input_texts",
    "sample_reports",
]

#: the temp view ``audit_removed_line_patterns`` registers over the re-read input, its ``:input_text``
#: (a DataFrame has no name a SQL parameter could hold)
INPUT_TEXT_VIEW = "prox_input_text"


def read_input_texts(
    spark: SparkSession,
    output: Output,
    run_id: str,
    input_path: Optional[str] = None,
    doc_ids: Optional[Iterable[str]] = None,
) -> DataFrame:
    """``(run_id, doc_id, text)`` of the run's input, re-read with the job's reader and the run's input settings.

    ``input_path`` replaces the path the run recorded (the corpus moved, or a subset is enough). With
    ``doc_ids`` only the shards holding those documents are read. The text is the input *now*: callers
    compare it with the counts the run recorded before trusting it (``DocumentReport.input_matches``)."""
    from prox_spark.udfs import refine_plan as plan
    from prox_spark.udfs.input_files import list_input_files

    output = as_output(output)
    config = run_config(spark, output, run_id)
    if input_path:  # a path in place of the recorded input, read with the run's input.format
        config = dataclasses.replace(config, input=dataclasses.replace(config.input, path=input_path, table=""))
    path = config.input.path or config.input.table
    try:
        if config.input.reads_table:  # Spark reads it: any path or table Spark can, its data files are the shards
            files = plan.delta_input_files(spark, config)
        else:
            files = list_input_files(path, spark)
    except Exception as exc:  # FileNotFoundError, or Spark's AnalysisException for a missing table
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditError(f"cannot re-read the input of run {run_id!r} at {path!r}: {first} (pass input_path=...)") from None
    wanted = None if doc_ids is None else sorted(set(doc_ids))
    if wanted is not None:
        shards = {
            row.shard
            for row in read_table(spark, output, REFINED)
            .filter((F.col("run_id") == run_id) & F.col("doc_id").isin(wanted))
            .select("shard").distinct().collect()
        }
        # a shard is its file's full path: a corpus moved since the run (input_path) is matched by file name
        names = {shard.rsplit("@", 1)[0] for shard in shards} if input_path else set()
        files = [f for f in files if plan.shard_of(f) in shards or os.path.basename(f) in names]
    if not files:
        return spark.createDataFrame([], "run_id string, doc_id string, text string")
    if config.input.reads_table:
        records = plan.read_delta_records(spark, config, files)
    else:
        records = plan.read_records(spark, files, config)
    docs, _ = plan.split_records(records)
    if wanted is not None:
        docs = docs.filter(F.col("doc_id").isin(wanted))
    return docs.select(F.lit(run_id).alias("run_id"), "doc_id", "text")


def audit_removed_line_patterns(
    spark: SparkSession,
    output: Output,
    run_id: str,
    input_path: Optional[str] = None,
    limit: Optional[int] = 30,
) -> DataFrame:
    """The most removed line texts, grouped by pattern (digits -> 0, lower case), with an example line.

    Re-reads the whole input of the run (see ``read_input_texts``; pass a narrower ``input_path`` glob to
    sample shards). Documents whose input no longer has the recorded line count are left out."""
    read_input_texts(spark, output, run_id, input_path).createOrReplaceTempView(INPUT_TEXT_VIEW)
    df = audit_sql(spark, output, "removed_line_patterns", run_id=run_id, input_text=INPUT_TEXT_VIEW)
    return df.limit(limit) if limit else df


@dataclass
class DocumentReport:
    """A document's programs next to its result, and a diff against its input when that could be re-read."""

    run_id: str
    doc_id: str
    shard: str
    kept: bool
    drop_stage: Optional[str]
    drop_reason: Optional[str]
    program_ignored: bool
    words_before: int
    words_after: int
    lines_before: int
    lines_after: int
    doc_program: Optional[str]
    chunk_program: Optional[str]
    chunk_ops: list[dict] = field(default_factory=list)
    final_text: str = ""
    input_text: Optional[str] = None

    @property
    def input_matches(self) -> Optional[bool]:
        """Whether the re-read input has the word and line counts the run recorded (None: not read)."""
        if self.input_text is None:
            return None
        return (len(self.input_text.split()), count_lines(self.input_text)) == (self.words_before, self.lines_before)

    @property
    def decision(self) -> str:
        if self.kept:
            return "kept (program ignored: too many errors)" if self.program_ignored else "kept"
        return f"dropped at the {self.drop_stage} stage: {self.drop_reason}"

    def diff(self, context: int = 1) -> str:
        """Unified diff (difflib) of the input text against the final text; '' when the input is unknown."""
        if self.input_text is None:
            return ""
        return "".join(
            difflib.unified_diff(
                _lines(self.input_text), _lines(self.final_text),
                fromfile=f"{self.doc_id} (input)", tofile=f"{self.doc_id} (final)", n=context,
            )
        )

    def render(self, context: int = 1, max_chars: int = 4000) -> str:
        """Programs, line statuses, decision and diff (or final text) as one printable block."""
        out = [
            f"== {self.doc_id}  [{self.shard}]  {self.decision}",
            f"   words {self.words_before} -> {self.words_after}, lines {self.lines_before} -> {self.lines_after}",
            "-- doc program:",
            _indent(self.doc_program or "(none)"),
        ]
        if self.chunk_program is not None:
            out += ["-- chunk programs (in chunk order):", _indent(self.chunk_program or "(empty)")]
            statuses = [f"{op.get('op') or '(none)'}:{op.get('status')}" for op in self.chunk_ops]
            if statuses:
                out.append("-- line statuses: " + ", ".join(statuses))
        if self.input_text is None:
            out += ["-- final text (input not available for a diff):", _indent(self.final_text or "(empty)")]
        elif not self.input_matches:
            out += ["-- input re-read, but it no longer has the recorded word/line counts: no diff",
                    "-- final text:", _indent(self.final_text or "(empty)")]
        else:
            out += ["-- diff input -> final:", self.diff(context) or "   (unchanged)"]
        text = "\n".join(out)
        return text if len(text) <= max_chars else text[:max_chars] + f"\n... ({len(text) - max_chars} more characters)"


def _lines(text: str) -> list[str]:
    return [line + "\n" for line in text.split("\n")] if text else []


def _indent(text: str) -> str:
    return "\n".join("   " + line for line in text.split("\n"))


def _reports(rows: list[Any], texts: dict[str, str]) -> list[DocumentReport]:
    reports = []
    for row in rows:
        reports.append(
            DocumentReport(
                run_id=row.run_id, doc_id=row.doc_id, shard=row.shard, kept=bool(row.kept),
                drop_stage=row.drop_stage, drop_reason=row.drop_reason, program_ignored=bool(row.program_ignored),
                words_before=int(row.words_before or 0), words_after=int(row.words_after or 0),
                lines_before=int(row.lines_before or 0), lines_after=int(row.lines_after or 0),
                doc_program=row.doc_program, chunk_program=row.chunk_program,
                chunk_ops=[op.asDict() for op in (row.chunk_ops or [])],
                final_text=row.final_text or "", input_text=texts.get(row.doc_id),
            )
        )
    return reports


def _input_texts(spark, output, run_id, input_path, doc_ids, read_input) -> dict[str, str]:
    if not read_input or not doc_ids:
        return {}
    rows = read_input_texts(spark, output, run_id, input_path, doc_ids).collect()
    return {row.doc_id: row.text for row in rows}


def document_report(
    spark: SparkSession,
    output: Output,
    run_id: str,
    doc_id: str,
    input_path: Optional[str] = None,
    read_input: bool = True,
) -> DocumentReport:
    """Programs and result of one document; with ``read_input`` its input is re-read for a diff."""
    rows = audit_doc_results(spark, output, run_id).filter(F.col("doc_id") == doc_id).collect()
    if not rows:
        raise AuditError(f"document {doc_id!r} is not in run {run_id!r}")
    return _reports(rows, _input_texts(spark, output, run_id, input_path, [doc_id], read_input))[0]


SAMPLE_KINDS = ("any", "edited", "dropped", "kept")


def sample_reports(
    spark: SparkSession,
    output: Output,
    run_id: str,
    n: int = 3,
    kind: str = "any",
    seed: int = 0,
    input_path: Optional[str] = None,
    read_input: bool = True,
) -> list[DocumentReport]:
    """``n`` documents of a run (deterministic for a seed) as reports: ``kind`` any, edited (kept with
    fewer words), dropped or kept. With ``read_input`` the input of just their shards is re-read for diffs."""
    if kind not in SAMPLE_KINDS:
        raise AuditError(f"kind must be one of {', '.join(SAMPLE_KINDS)}, got {kind!r}")
    df = audit_doc_results(spark, output, run_id)
    if kind == "edited":
        df = df.filter(F.col("kept") & (F.col("words_after") < F.col("words_before")))
    elif kind == "dropped":
        df = df.filter(~F.col("kept"))
    elif kind == "kept":
        df = df.filter(F.col("kept"))
    rows = df.orderBy(F.xxhash64("doc_id", F.lit(seed)), "doc_id").limit(n).collect()
    texts = _input_texts(spark, output, run_id, input_path, [row.doc_id for row in rows], read_input)
    return _reports(rows, texts)
