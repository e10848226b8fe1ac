"""The end-of-run summary: counts read back from the Delta tables, the checks a run must pass, a printed table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from prox_spark.udfs.side_by_side import run_concurrently
from prox_spark.udfs.tables import ALL_TABLES, QUARANTINE, REFINED, SHARDS, read_table, table_location
from prox_spark.config import OutputConfig, RefineConfig


@dataclass
class RunSummary:
    run_id: str
    shards: int
    records_read: int
    kept: int
    dropped: int
    quarantined: int
    words_before: int
    words_after: int
    drop_reasons: list[tuple[str, int]] = field(default_factory=list)
    quarantine_reasons: list[tuple[str, int]] = field(default_factory=list)
    #: input files of the run's listing that have no shard commit (their records were never written)
    uncommitted_files: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        """Every listed file was committed and every record read is accounted for:
        input = kept + dropped + quarantined."""
        return not self.uncommitted_files and self.records_read == self.kept + self.dropped + self.quarantined

    @property
    def quarantined_fraction(self) -> float:
        return self.quarantined / self.records_read if self.records_read else 0.0


def summarize_run(spark: SparkSession, output: OutputConfig, run_id: str, listing: Mapping[str, str]) -> RunSummary:
    """The run's counts read back from the Delta tables (what landed, not what was computed), the tables
    read side by side; ``balanced`` compares them with the records the shard commits say were read, and
    the shard commits with the run's own input listing (``listing``: shard -> input file): a listed file
    without a commit is named in ``uncommitted_files``."""
    of_run = F.col("run_id") == run_id

    def refined_groups():
        return (
            read_table(spark, output, REFINED).filter(of_run)
            .groupBy("kept", "drop_reason")
            .agg(F.count("*").alias("docs"), F.sum("words_before").alias("words_before"),
                 F.sum("words_after").alias("words_after"))
            .collect()
        )

    def quarantine_reasons():
        return read_table(spark, output, QUARANTINE).filter(of_run).groupBy("reason").count().collect()

    def commits():
        return read_table(spark, output, SHARDS).filter(of_run).select("shard", "records_read").collect()

    read = run_concurrently(spark, {"refined": refined_groups, "quarantine": quarantine_reasons, "commits": commits})
    groups = read["refined"]
    dropped = sorted(((g["drop_reason"], int(g["docs"])) for g in groups if not g["kept"]), key=lambda r: -r[1])
    q_reasons = sorted(((r["reason"], int(r["count"])) for r in read["quarantine"]), key=lambda r: -r[1])
    committed = {row.shard for row in read["commits"]}
    return RunSummary(
        run_id=run_id,
        shards=len(listing),
        records_read=sum(int(row.records_read or 0) for row in read["commits"]),
        kept=sum(int(g["docs"]) for g in groups if g["kept"]),
        dropped=sum(count for _, count in dropped),
        quarantined=sum(count for _, count in q_reasons),
        words_before=sum(int(g["words_before"] or 0) for g in groups),
        words_after=sum(int(g["words_after"] or 0) for g in groups if g["kept"]),
        drop_reasons=dropped,
        quarantine_reasons=q_reasons,
        uncommitted_files=sorted(path for shard, path in listing.items() if shard not in committed),
    )


class RunCheckError(RuntimeError):
    """The run failed its end-of-run checks (input unaccounted for, nothing read, too much quarantined);
    ``summary`` holds its counts."""

    def __init__(self, message: str, summary: RunSummary):
        super().__init__(message)
        self.summary = summary


def run_problems(summary: RunSummary, config: RefineConfig) -> list[str]:
    """Why the run must not count as succeeded (empty: it may): each a sentence naming the numbers."""
    s = summary
    problems = []
    if s.uncommitted_files:
        problems.append(
            f"{len(s.uncommitted_files)} listed input file(s) never committed: " + ", ".join(s.uncommitted_files[:10])
        )
    if s.records_read != s.kept + s.dropped + s.quarantined:
        problems.append(
            f"{s.records_read} records read but {s.kept} kept + {s.dropped} dropped + {s.quarantined} quarantined = "
            f"{s.kept + s.dropped + s.quarantined}"
        )
    if s.records_read == 0:
        problems.append(f"no records read from {s.shards} input file(s) (empty files?)")
    limit = config.input.max_quarantined_fraction
    if s.quarantined_fraction > limit:
        problems.append(
            f"{s.quarantined} of {s.records_read} records quarantined ({s.quarantined_fraction:.1%}), over "
            f"input.max_quarantined_fraction={limit} (top reasons: "
            + ", ".join(f"{reason} {n}" for reason, n in s.quarantine_reasons[:3]) + ")"
        )
    return problems


def print_summary(summary: RunSummary, output: OutputConfig, command: str = "refine") -> None:
    s = summary
    retained = s.words_after / s.words_before if s.words_before else 0.0
    lines = [
        f"prox-spark {command}: run {s.run_id}",
        f"  shards            {s.shards:>10,}",
        f"  records read      {s.records_read:>10,}",
        f"  kept              {s.kept:>10,}",
        f"  dropped           {s.dropped:>10,}",
        f"  quarantined       {s.quarantined:>10,}",
        f"  balance           {'ok' if s.balanced else 'MISMATCH'} (read = kept + dropped + quarantined, "
        f"{s.shards - len(s.uncommitted_files)}/{s.shards} listed files committed)",
        f"  words kept        {s.words_after:>10,} of {s.words_before:,} ({retained:.1%})",
    ]
    if s.drop_reasons:
        lines.append("  top drop reasons  " + ", ".join(f"{r} {n}" for r, n in s.drop_reasons[:5]))
    if s.quarantine_reasons:
        lines.append("  quarantine        " + ", ".join(f"{r} {n}" for r, n in s.quarantine_reasons[:5]))
    lines.append("  tables")
    for spec in ALL_TABLES:
        lines.append(f"    {spec.key:<11s} {table_location(output, spec)}")
    print("\n".join(lines))
