"""The core's row builder (``prox_spark.pipeline.rows.table_rows``) on crafted programs, without models or Spark:
which stage decides a document's ``refined`` row, which stages it has ``programs`` rows for, and which ops each
chunk row shows. The job's stage pass and ``refine_batch`` both return these rows (``tests/test_udf_staged.py``,
``tests/test_refine_modes.py`` compare them on real runs)."""

from __future__ import annotations

import pytest

from prox_spark.pipeline import RefineSettings
from prox_spark.pipeline.apply import apply_stored_programs
from prox_spark.pipeline.rows import (
    PROGRAM_ROW_ARROW_TYPE,
    PROGRAM_ROW_FIELDS,
    REFINED_ROW_ARROW_TYPE,
    REFINED_ROW_FIELDS,
    REFINED_ROW_ONLY_FIELDS,
    ROWS_SCHEMA,
    stage_model_ids,
    table_rows,
)
from prox_spark.pipeline.stages import STAGE_ORDER

STAGES = ("rules", "doc", "chunk")
PAGE = "\n".join(f"line {i} of the page has several plain words in it for the rules to count here." for i in range(8))
KEEP = {"program": "keep_doc()", "prompt_tokens": 5, "latency_ms": 1.0, "model_program": None}
DROP = {**KEEP, "program": "drop_doc()"}
FIRST = {"chunk_index": 0, "first_line": 0, "last_line": 3, "program": "remove_lines(line_start=1, line_end=1)",
         "prompt_tokens": 9, "latency_ms": 2.0, "clipped_ops": 0, "model_program": None}
SECOND = {"chunk_index": 1, "first_line": 4, "last_line": 7, "prompt_tokens": 11, "latency_ms": 3.0,
          "program": "remove_lines(line_start=5, line_end=5)\nremove_lines(line_start=99, line_end=99)",
          "clipped_ops": 1, "model_program": "remove_lines(line_start=5, line_end=9)"}
EVERYTHING = {**FIRST, "last_line": 7, "program": "remove_lines(line_start=0, line_end=7)"}


@pytest.fixture(scope="module")
def rows() -> tuple[list[dict], list[list[dict]]]:
    """Four documents: blank (the rules drop it), dropped by its doc program, kept with two chunks (stored out
    of order), dropped by its chunk program."""
    staged = apply_stored_programs(
        ["   ", PAGE, PAGE, PAGE], STAGES, RefineSettings(), rules_preset="c4",
        stored={"doc": [None, [DROP], [KEEP], [KEEP]], "chunk": [None, None, [SECOND, FIRST], [EVERYTHING]]},
    )
    assert staged.missing == [None] * 4
    batch = table_rows(staged.columns, STAGES, stage_model_ids("c4", {"doc": "doc-model", "chunk": "chunk-model"}))
    assert batch.schema == ROWS_SCHEMA
    return batch.column("refined").to_pylist(), batch.column("programs").to_pylist()


def _stages(programs: list[dict]) -> list[tuple]:
    return [(p["stage"], p["chunk_index"], p["model_id"]) for p in programs]


def test_the_row_fields_declare_the_rows():
    """Each field is declared once, with the description its table column carries, and the Arrow rows are exactly
    those fields; the ``refined`` row's fields its table leaves out are each stage's program."""
    for declared, arrow_type in ((REFINED_ROW_FIELDS, REFINED_ROW_ARROW_TYPE), (PROGRAM_ROW_FIELDS, PROGRAM_ROW_ARROW_TYPE)):
        assert [(field.name, field.type) for field in arrow_type] == [(field.name, field.type) for field in declared]
        assert len({field.name for field in declared}) == len(declared)
        assert all(field.description.strip() for field in declared)
    assert REFINED_ROW_ONLY_FIELDS == {f"{name}_program" for name in STAGE_ORDER}
    assert REFINED_ROW_ONLY_FIELDS <= {field.name for field in REFINED_ROW_FIELDS}


def test_the_first_stage_that_dropped_decides(rows):
    refined, _ = rows
    assert [(r["kept"], r["drop_stage"], r["drop_reason"]) for r in refined] == [
        (False, "rules", "empty_text"), (False, "doc", "doc_program_drop"), (True, None, None),
        (False, "chunk", "kept_fraction_too_low"),
    ]
    assert [r["text"] == "" for r in refined] == [True, True, False, True]
    kept = refined[2]
    assert kept["lines_before"] == 8 and kept["lines_after"] == 6 and kept["words_before"] == 136
    assert "line 1 " not in kept["text"] and "line 5 " not in kept["text"]


def test_a_stage_program_shows_only_where_the_document_reached_it(rows):
    refined, _ = rows
    assert [(r["rules_program"], r["doc_program"], r["chunk_program"]) for r in refined] == [
        ("drop_doc()", None, None),
        ("keep_doc()", "drop_doc()", None),
        ("keep_doc()", "keep_doc()", FIRST["program"] + "\n" + SECOND["program"]),
        ("keep_doc()", "keep_doc()", EVERYTHING["program"]),
    ]


def test_program_rows_per_stage_reached_and_per_chunk(rows):
    _, programs = rows
    rules, doc = ("rules", None, "rules:c4"), ("doc", None, "doc-model")
    assert [_stages(p) for p in programs] == [
        [rules],
        [rules, doc],
        [rules, doc, ("chunk", 0, "chunk-model"), ("chunk", 1, "chunk-model")],
        [rules, doc, ("chunk", 0, "chunk-model")],
    ]
    whole = programs[2][1]
    assert (whole["prompt_tokens"], whole["clipped_ops"], whole["first_line"], whole["errors"]) == (5, 0, None, 0)
    assert programs[0][0]["prompt_tokens"] is None and programs[0][0]["outcome"] == "dropped"


def test_a_chunk_row_has_its_own_lines_of_the_merged_program(rows):
    _, programs = rows
    first, second = programs[2][2], programs[2][3]
    assert [op["line"] for op in first["ops"]] == [0] and first["errors"] == 0
    assert [op["line"] for op in second["ops"]] == [1, 2]  # lines 1-2 of the merged program are the second chunk's
    assert second["errors"] == sum(op["errors"] for op in second["ops"]) == 1  # the out-of-range removal
    assert (second["first_line"], second["last_line"], second["clipped_ops"], second["model_program"]) == (
        4, 7, 1, SECOND["model_program"])
    assert {first["outcome"], second["outcome"]} == {"kept"}  # the stage's result, on each of its rows


def test_rows_need_a_stage_and_its_columns():
    with pytest.raises(ValueError, match="no stage"):
        table_rows({}, (), {})
    with pytest.raises(ValueError, match="doc_exec"):
        table_rows({}, ("doc",), stage_model_ids("c4", {}))
