"""The end-of-run summary: counts read back from the Delta tables, the balance check, a printed table."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.tables import ALL_TABLES, QUARANTINE, REFINED, SHARDS, read_table, table_location
from prox_spark.config import OutputConfig


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

    @property
    def balanced(self) -> bool:
        """Every record read is accounted for: input = kept + dropped + quarantined."""
        return self.records_read == self.kept + self.dropped + self.quarantined


def summarize_run(spark: SparkSession, output: OutputConfig, run_id: str, shards: int) -> RunSummary:
    of_run = F.col("run_id") == run_id
    refined = read_table(spark, output, REFINED).filter(of_run)
    totals = refined.agg(
        F.count("*").alias("docs"),
        F.coalesce(F.sum(F.col("kept").cast("long")), F.lit(0)).alias("kept"),
        F.coalesce(F.sum("words_before"), F.lit(0)).alias("words_before"),
        F.coalesce(F.sum(F.when(F.col("kept"), F.col("words_after"))), F.lit(0)).alias("words_after"),
    ).first()
    reasons = refined.filter(~F.col("kept")).groupBy("drop_reason").count().orderBy(F.desc("count")).collect()
    quarantine = read_table(spark, output, QUARANTINE).filter(of_run)
    q_reasons = quarantine.groupBy("reason").count().orderBy(F.desc("count")).collect()
    read = read_table(spark, output, SHARDS).filter(of_run).agg(F.coalesce(F.sum("records_read"), F.lit(0))).first()[0]
    return RunSummary(
        run_id=run_id,
        shards=shards,
        records_read=int(read),
        kept=int(totals["kept"]),
        dropped=int(totals["docs"] - totals["kept"]),
        quarantined=sum(int(r["count"]) for r in q_reasons),
        words_before=int(totals["words_before"]),
        words_after=int(totals["words_after"]),
        drop_reasons=[(r["drop_reason"], int(r["count"])) for r in reasons],
        quarantine_reasons=[(r["reason"], int(r["count"])) for r in q_reasons],
    )


def print_summary(summary: RunSummary, output: OutputConfig) -> None:
    s = summary
    retained = s.words_after / s.words_before if s.words_before else 0.0
    lines = [
        f"prox-spark refine: run {s.run_id}",
        f"  shards            {s.shards:>10,}",
        f"  records read      {s.records_read:>10,}",
        f"  kept              {s.kept:>10,}",
        f"  dropped           {s.dropped:>10,}",
        f"  quarantined       {s.quarantined:>10,}",
        f"  balance           {'ok' if s.balanced else 'MISMATCH'} (read = kept + dropped + quarantined)",
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
