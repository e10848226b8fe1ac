"""The guard_overrides audit over a real Delta programs table: each guard's rewrites are counted under its
own name, with their share of the stage's programs, and programs no guard touched are not."""

from __future__ import annotations

from prox_spark.udfs import audit
from prox_spark.udfs.tables import PROGRAMS
from prox_spark.config import OutputConfig


def program_row(doc_id: str, stage: str, model_program: str | None = None, clipped_ops: int = 0) -> dict:
    row = {c.name: None for c in PROGRAMS.columns}
    program = "keep_doc()" if stage == "doc" else "remove_lines(line_start=3, line_end=9)"
    row.update(run_id="r1", shard="s0", doc_id=doc_id, stage=stage, program=program, errors=0,
               clipped_ops=clipped_ops, model_program=model_program)
    return row


def test_each_guard_is_counted_under_its_name(spark, tmp_path):
    rows = [
        program_row("a", "doc", model_program="drop_doc()"),  # main-text guard kept it
        program_row("b", "doc"),
        program_row("c", "doc"),
        program_row("d", "doc"),
        program_row("a", "chunk", model_program="remove_lines(line_start=3, line_end=5)"),  # a page cut
        program_row("b", "chunk", model_program="remove_lines(line_start=3, line_end=5)"),
        program_row("c", "chunk", model_program="remove_lines(line_start=0, line_end=99)", clipped_ops=1),
        program_row("d", "chunk"),
    ]
    output = OutputConfig(path=str(tmp_path / "out"))
    spark.createDataFrame(rows, PROGRAMS.schema).write.format("delta").save(f"{output.path}/programs")
    got = [tuple(r) for r in audit.audit_guard_overrides(spark, output).collect()]
    assert got == [
        ("r1", "chunk", "chunk_range_guard", 1, 1, 0.25),
        ("r1", "chunk", "page_cuts", 2, 2, 0.5),
        ("r1", "doc", "main_text_guard", 1, 1, 0.25),
    ]
    assert audit.audit_guard_overrides(spark, output, "another run").count() == 0
