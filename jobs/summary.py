"""The end-of-run summary: counts read back from the Delta tables, the balance check, a printed table."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.side_by_side import run_concurrently
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
    """The run's counts read back from the Delta tables (what landed, not what was computed), the three
    tables read side by side; ``balanced`` compares them with the records the shard commits say were read."""
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

    def records_read():
        return read_table(spark, output, SHARDS).filter(of_run).agg(F.coalesce(F.sum("records_read"), F.lit(0))).first()[0]

    read = run_concurrently(spark, {"refined": refined_groups, "quarantine": quarantine_reasons, "read": records_read})
    groups = read["refined"]
    dropped = sorted(((g["drop_reason"], int(g["docs"])) for g in groups if not g["kept"]), key=lambda r: -r[1])
    q_reasons = sorted(((r["reason"], int(r["count"])) for r in read["quarantine"]), key=lambda r: -r[1])
    return RunSummary(
        run_id=run_id,
        shards=shards,
        records_read=int(read["read"]),
        kept=sum(int(g["docs"]) for g in groups if g["kept"]),
        dropped=sum(count for _, count in dropped),
        quarantined=sum(count for _, count in q_reasons),
        words_before=sum(int(g["words_before"] or 0) for g in groups),
        words_after=sum(int(g["words_after"] or 0) for g in groups if g["kept"]),
        drop_reasons=dropped,
        quarantine_reasons=q_reasons,
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
