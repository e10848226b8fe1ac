"""All stages in one Python pass per partition: the core (``run_stages``) against ``refine_batch``, and the
Spark glue (``udfs.stage_pass``: the stages, then the core's row builder) against the core on the same
documents, with the committed default models."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from prox_spark.pipeline import RefineSettings, Serving, StageModel, refine_batch, run_stages, staged_columns
from prox_spark.pipeline.rows import ROWS_SCHEMA, stage_model_ids, table_rows

MODELS = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "models"
SAMPLE = Path(__file__).resolve().parents[1] / "prox_spark" / "resources" / "sample_corpus.jsonl"
SETTINGS = RefineSettings(max_chunk_tokens=128, clip_chunk_programs=True)


@pytest.fixture(scope="module")
def models() -> dict[str, StageModel]:
    return {stage: StageModel.load(MODELS / stage, provider="cpu") for stage in ("doc", "chunk")}


@pytest.fixture(scope="module")
def texts() -> list:
    """The bundled pages, plus a blank and a missing text (neither may reach a model)."""
    pages = [json.loads(line)["text"] for line in SAMPLE.read_text(encoding="utf-8").splitlines()[:12]]
    return pages + ["   ", None]


def test_staged_columns_follow_stage_order():
    assert staged_columns(("chunk", "doc", "rules")) == (
        "rules_exec", "doc", "doc_exec", "chunks", "chunk_program", "chunk_exec"
    )
    assert staged_columns(("doc",)) == ("doc", "doc_exec")
    with pytest.raises(ValueError, match="paragraph"):
        staged_columns(("doc", "paragraph"))


def test_run_stages_agrees_with_refine_batch(models, texts):
    """Each document's last stage result is what ``refine_batch`` (``prox-spark clean``) decides."""
    columns = run_stages(texts, ("doc", "chunk"), SETTINGS, models=models)
    documents, _ = refine_batch(list(range(len(texts))), texts, models, SETTINGS)
    doc_exec, chunk_exec = columns["doc_exec"], columns["chunk_exec"]
    assert doc_exec["kept"].any() and (~doc_exec["kept"]).any()  # both paths are exercised
    for i, row in documents.iterrows():
        final = chunk_exec.iloc[i] if doc_exec["kept"].iloc[i] else doc_exec.iloc[i]
        assert (final["text"], bool(final["kept"])) == (row["text"], bool(row["kept"]))
        assert columns["doc"]["program"].iloc[i] == row["doc_program"]
        if doc_exec["kept"].iloc[i]:
            assert columns["chunk_program"].iloc[i] == row["chunk_program"]
        else:  # a dropped document reaches the chunk stage as "": no chunk, no model call
            assert columns["chunks"].iloc[i] == [] and columns["chunk_program"].iloc[i] == ""
    assert columns["doc"]["prompt_tokens"].iloc[-2:].tolist() == [0, 0]  # blank and missing: no model call


def test_rules_stage_feeds_the_doc_stage_what_it_kept(models, texts):
    columns = run_stages(texts, ("rules", "doc"), SETTINGS, rules_preset="gopher", models={"doc": models["doc"]})
    rules, doc = columns["rules_exec"], columns["doc"]
    assert (~rules["kept"]).any()
    assert (doc["prompt_tokens"][~rules["kept"]] == 0).all()
    assert (doc["prompt_tokens"][rules["kept"]] > 0).all()


@pytest.mark.spark
def test_spark_pass_equals_the_core_in_one_python_node(spark, models, texts):
    """Three Arrow batches in one task give the rows the core gives on the same three batches (greedy
    decoding is deterministic per batch), and the plan has a single Python node: the stages no longer
    cross the JVM/Python boundary once each."""
    from prox_spark.udfs.stage_pass import stage_documents
    from prox_spark.udfs.worker_models import StageModelSettings

    rows = [(f"d{i}", text, i) for i, text in enumerate(texts)]
    docs = spark.createDataFrame(rows, "doc_id string, text string, record_index long").coalesce(1)
    stages = ("rules", "doc", "chunk")
    model_ids = stage_model_ids("c4", {"doc": "doc-model", "chunk": "chunk-model"})
    staged = stage_documents(
        docs, stages, SETTINGS, model_ids=model_ids, rules_preset="c4",
        models={stage: StageModelSettings(str(MODELS / stage), serving=Serving(provider="cpu")) for stage in ("doc", "chunk")},
    )
    plan = staged._jdf.queryExecution().executedPlan().toString()
    assert plan.count("MapInArrow") == 1 and "ArrowEvalPython" not in plan, plan
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "5")
    try:
        got = sorted(staged.collect(), key=lambda row: row.record_index)
    finally:
        spark.conf.unset("spark.sql.execution.arrow.maxRecordsPerBatch")
    assert got[0].__fields__ == ["doc_id", "text", "record_index", *ROWS_SCHEMA.names]
    assert [row.text for row in got] == texts  # the document's own columns pass through untouched
    for first in range(0, len(texts), 5):
        want = run_stages(texts[first : first + 5], stages, SETTINGS, rules_preset="c4", models=models)
        # every stage column reaches the rows: each stage's program and result, each chunk's line range
        want_rows = table_rows(want, stages, model_ids)
        batch = got[first : first + 5]
        for name in ROWS_SCHEMA.names:
            spark_values = [_as_python(row[name]) for row in batch]
            assert _comparable(spark_values) == _comparable(want_rows.column(name).to_pylist()), name
    assert {p["stage"] for row in got for p in _as_python(row.programs)} == set(stages)


def _as_python(value):
    """A Spark value as plain Python (Rows as dicts, arrays as lists)."""
    if hasattr(value, "asDict"):
        return value.asDict(recursive=True)
    if isinstance(value, list):
        return [_as_python(v) for v in value]
    return value


def _comparable(value):
    """Timings left out (they differ run to run), NaN as None (pandas' missing number)."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k != "latency_ms"}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def test_spark_types_name_every_field_of_the_stage_records():
    """The stage records' fields, in Spark as in Arrow (the stage columns no longer reach Spark: their Spark
    types are what their Arrow types convert to)."""
    from dataclasses import fields

    from pyspark.sql.pandas.types import from_arrow_type

    from prox_spark.pipeline.model_stages import ChunkProgram, DocProgram
    from prox_spark.pipeline.stages import STAGE_ARROW_TYPES

    assert from_arrow_type(STAGE_ARROW_TYPES["doc"]).fieldNames() == [f.name for f in fields(DocProgram)]
    assert from_arrow_type(STAGE_ARROW_TYPES["chunks"]).elementType.fieldNames() == [f.name for f in fields(ChunkProgram)]


#: the Spark types the stage columns had in the staging tables, pinned: the derived types must not move them
PINNED_STAGED_TYPES = {
    "rules_exec": "struct<text:string,kept:boolean,outcome:string,reason:string,rule:string,program:string,ops:array<struct<line:bigint,op:string,start:bigint,end:bigint,source:string,target:string,status:string,errors:bigint,detail:string>>,words_before:bigint,words_after:bigint,lines_before:bigint,lines_after:bigint,latency_ms:double>",
    "doc": "struct<program:string,prompt_tokens:bigint,latency_ms:double,truncated:boolean,model_program:string>",
    "doc_exec": "struct<text:string,kept:boolean,outcome:string,reason:string,errors:bigint,n_ops:bigint,words_before:bigint,words_after:bigint,lines_before:bigint,lines_after:bigint,ops:array<struct<line:bigint,op:string,start:bigint,end:bigint,source:string,target:string,status:string,errors:bigint,detail:string>>>",
    "chunks": "array<struct<chunk_index:bigint,first_line:bigint,last_line:bigint,program:string,prompt_tokens:bigint,latency_ms:double,oversize:boolean,truncated:boolean,program_line_offset:bigint,program_lines:bigint,clipped_ops:bigint,model_program:string>>",
    "chunk_program": "string",
    "chunk_exec": "struct<text:string,kept:boolean,outcome:string,reason:string,errors:bigint,n_ops:bigint,words_before:bigint,words_after:bigint,lines_before:bigint,lines_after:bigint,ops:array<struct<line:bigint,op:string,start:bigint,end:bigint,source:string,target:string,status:string,errors:bigint,detail:string>>>",
}


def test_spark_types_are_derived_from_the_stage_arrow_schemas():
    """The Spark types of the stage columns come from the core's Arrow schemas: they cannot drift from them, and
    they stay what they were (pinned here)."""
    from pyspark.sql.pandas.types import from_arrow_type

    from prox_spark.pipeline.stages import STAGE_ARROW_TYPES, STAGE_COLUMNS, STAGE_ORDER, STAGE_SCHEMAS
    from prox_spark.programs import BATCH_COLUMNS
    from prox_spark.programs.batch import EXECUTOR_RESULT_ARROW_TYPE, OP_FIELDS, OPS_ARROW_TYPE
    from prox_spark.udfs.executor import EXECUTOR_RESULT_TYPE, OPS_TYPE

    staged_types = {name: from_arrow_type(arrow) for name, arrow in STAGE_ARROW_TYPES.items()}
    assert tuple(STAGE_SCHEMAS) == STAGE_ORDER
    assert staged_columns(STAGE_ORDER) == tuple(staged_types) == tuple(STAGE_ARROW_TYPES)
    for stage, schema in STAGE_SCHEMAS.items():
        assert STAGE_COLUMNS[stage] == tuple(schema.names)
    assert {name: t.simpleString() for name, t in staged_types.items()} == PINNED_STAGED_TYPES
    assert EXECUTOR_RESULT_TYPE == staged_types["doc_exec"] == staged_types["chunk_exec"]
    assert EXECUTOR_RESULT_TYPE == from_arrow_type(EXECUTOR_RESULT_ARROW_TYPE) and OPS_TYPE == from_arrow_type(OPS_ARROW_TYPE)
    assert tuple(EXECUTOR_RESULT_TYPE.fieldNames()) == BATCH_COLUMNS
    assert tuple(OPS_TYPE.elementType.fieldNames()) == OP_FIELDS


#: the ``refined`` and ``programs`` columns as the existing Delta tables have them, in order, pinned: tables
#: written by any earlier run must keep working (a new output column adds itself here)
PINNED_TABLE_COLUMNS = {
    "refined": [
        ("run_id", "string"), ("shard", "string"), ("doc_id", "string"), ("text", "string"), ("kept", "boolean"),
        ("drop_stage", "string"), ("drop_reason", "string"), ("program_ignored", "boolean"),
        ("words_before", "bigint"), ("words_after", "bigint"), ("lines_before", "bigint"), ("lines_after", "bigint"),
        ("source_file", "string"), ("record_index", "bigint"), ("url", "string"), ("metadata_json", "string"),
    ],
    "programs": [
        ("run_id", "string"), ("shard", "string"), ("doc_id", "string"), ("stage", "string"),
        ("chunk_index", "bigint"), ("first_line", "bigint"), ("last_line", "bigint"), ("model_id", "string"),
        ("program", "string"),
        ("ops", "array<struct<line:bigint,op:string,start:bigint,end:bigint,source:string,target:string,status:string,errors:bigint,detail:string>>"),
        ("errors", "bigint"), ("outcome", "string"), ("reason", "string"), ("words_before", "bigint"),
        ("words_after", "bigint"), ("lines_before", "bigint"), ("lines_after", "bigint"), ("prompt_tokens", "bigint"),
        ("latency_ms", "double"), ("clipped_ops", "bigint"), ("model_program", "string"),
    ],
}


def test_the_row_tables_keep_their_columns():
    """The ``refined`` and ``programs`` columns (name, Spark type, order) stay what the existing tables hold, every
    one nullable, and ``ops`` keeps the executor's type exactly (its nested fields too)."""
    from prox_spark.udfs.executor import OPS_TYPE
    from prox_spark.udfs.tables import PROGRAMS, REFINED

    for table in (REFINED, PROGRAMS):
        assert [(c.name, c.type.simpleString()) for c in table.columns] == PINNED_TABLE_COLUMNS[table.key], table.key
        assert all(field.nullable for field in table.schema.fields), table.key
    assert next(c.type for c in PROGRAMS.columns if c.name == "ops") == OPS_TYPE


def test_row_types_are_derived_from_the_core_and_are_the_tables_types():
    """The rows the stage pass returns (``ROW_TYPES``) are the core's Arrow schema in Spark, and each of their
    fields has its table column's type: the job selects them into ``refined`` / ``programs`` unchanged, and the
    job adds only the run, the document's keys and its source columns. Every other column of those tables is a
    field the core declares (``rows.REFINED_ROW_FIELDS`` / ``PROGRAM_ROW_FIELDS``), in the row's order, with the
    field's description as its comment; the refined row's fields the table leaves out are exactly the stages'
    programs (``rows.REFINED_ROW_ONLY_FIELDS``)."""
    from pyspark.sql.pandas.types import from_arrow_type

    from prox_spark.pipeline.rows import PROGRAM_ROW_FIELDS, REFINED_ROW_FIELDS, REFINED_ROW_ONLY_FIELDS
    from prox_spark.udfs.tables import PROGRAMS, REFINED
    from prox_spark.udfs.stage_pass import ROW_TYPES

    assert tuple(ROW_TYPES) == tuple(ROWS_SCHEMA.names) == ("refined", "programs")
    for field in ROWS_SCHEMA:
        assert ROW_TYPES[field.name] == from_arrow_type(field.type), field.name
    job_columns = {
        "refined": {"run_id", "shard", "doc_id", "source_file", "record_index", "url", "metadata_json"},
        "programs": {"run_id", "shard", "doc_id"},
    }
    row_only = {"refined": REFINED_ROW_ONLY_FIELDS, "programs": frozenset()}
    for table, row_type, declared in (
        (REFINED, ROW_TYPES["refined"], REFINED_ROW_FIELDS),
        (PROGRAMS, ROW_TYPES["programs"].elementType, PROGRAM_ROW_FIELDS),
    ):
        assert row_type.fieldNames() == [field.name for field in declared], table.key
        fields = {field.name: field.dataType for field in row_type.fields}
        columns = {column.name: column.type for column in table.columns}
        assert set(columns) - set(fields) == job_columns[table.key], table.key
        for name, data_type in fields.items():
            if name in columns:  # refine_batch's stage programs are not columns of the refined table
                assert data_type == columns[name], (table.key, name)
        assert set(fields) - set(columns) == row_only[table.key], table.key
        from_row = [(c.name, c.comment) for c in table.columns if c.name not in job_columns[table.key]]
        assert from_row == [(f.name, f.description) for f in declared if f.name not in row_only[table.key]], table.key
    assert set(ROW_TYPES["refined"].fieldNames()) - {c.name for c in REFINED.columns} == {
        "rules_program", "doc_program", "chunk_program"
    }


def test_the_core_output_has_the_stage_arrow_schemas(models, texts):
    """What ``run_stages`` returns for every stage converts to exactly its column's Arrow type: no field more,
    none less, none renamed (the dataclasses and the rule rows against ``STAGE_SCHEMAS``)."""
    from dataclasses import fields

    from prox_spark.pipeline.stages import STAGE_ARROW_TYPES, STAGE_ORDER
    from prox_spark.pipeline.stages.chunk import CHUNK_PROGRAM_ARROW_TYPE
    from prox_spark.pipeline.stages.doc import DOC_PROGRAM_ARROW_TYPE
    from prox_spark.pipeline.stages.rules import RULES_RESULT_ARROW_TYPE
    from prox_spark.pipeline.model_stages import ChunkProgram, DocProgram
    from prox_spark.rules import RULES_STAGE_COLUMNS

    assert [f.name for f in DOC_PROGRAM_ARROW_TYPE] == [f.name for f in fields(DocProgram)]
    assert [f.name for f in CHUNK_PROGRAM_ARROW_TYPE] == [f.name for f in fields(ChunkProgram)]
    assert tuple(f.name for f in RULES_RESULT_ARROW_TYPE) == RULES_STAGE_COLUMNS

    columns = run_stages(texts, STAGE_ORDER, SETTINGS, rules_preset="gopher", models=models)
    for name, arrow_type in STAGE_ARROW_TYPES.items():
        column = columns[name]
        if isinstance(column, pd.DataFrame):
            assert list(column.columns) == [f.name for f in arrow_type], name
        else:
            assert all(set(chunk) == {f.name for f in CHUNK_PROGRAM_ARROW_TYPE} for doc in column if name == "chunks" for chunk in doc)
        array = _stage_column_as_arrow(column, arrow_type)
        assert array.type == arrow_type and len(array) == len(texts), name


def _stage_column_as_arrow(column: pd.DataFrame | pd.Series, arrow_type) -> pa.Array:
    """A stage column as Arrow: a DataFrame becomes a struct (one field per column), a Series an array."""
    if isinstance(column, pd.DataFrame):
        table = pa.Table.from_pandas(column, schema=pa.schema(list(arrow_type)), preserve_index=False)
        return table.to_struct_array().combine_chunks()
    return pa.array(column.tolist(), type=arrow_type)
