"""What a stage is: one object that names the stage, says what it needs, declares its columns, runs on a batch
and turns its columns into the document's table rows.

``prox_spark.pipeline.stage_pass`` runs the configured stages one after another (the hand-off between them is
written there, once) and ``prox_spark.pipeline.rows.table_rows`` asks each stage a document reached for its
rows; neither names a stage. A stage's module holds everything else about it, and the registry
(``prox_spark.pipeline.stages``) lists the stages in the order a pass runs them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence, Union

import pandas as pd
import pyarrow as pa

from prox_spark.pipeline.settings import RefineSettings
from prox_spark.programs import execute_batch

if TYPE_CHECKING:
    from prox_spark.pipeline.stage_pass import ModelPrograms

#: a struct column as a DataFrame (one column per field, as pandas UDFs return structs), else a Series
StagedColumn = Union[pd.DataFrame, pd.Series]
#: one document's values of a stage's columns, by column name (what ``table_rows`` hands a stage)
StageRecord = Mapping[str, Any]

#: the fields of a program row that belong to a chunk, as a whole-document (rules, doc) row has them
WHOLE_DOCUMENT_ROW = {"chunk_index": None, "first_line": None, "last_line": None, "clipped_ops": 0, "model_program": None}


@dataclass(frozen=True)
class PassContext:
    """What every stage of one pass reads besides its texts: the executor settings and the rule preset."""

    settings: RefineSettings
    rules_preset: str


@dataclass(frozen=True)
class StageRun:
    """A stage's result for a batch: its columns (``Stage.schema``'s names), and per document the text it hands
    to the next stage and whether it kept the document."""

    columns: dict[str, StagedColumn]
    texts: list
    kept: list[bool]


class Stage(ABC):
    """One refining stage. Subclasses set the class attributes and implement ``run``, ``program_rows`` and
    ``refined_program``; a stage whose programs a model writes is a ``ModelStage``."""

    #: the stage's name: in ``pipeline.mode``'s stage lists (``prox_spark.config.PIPELINE_STAGES``), the
    #: ``programs`` table's ``stage``, ``refined.drop_stage``, and the ``<name>_program`` field of the refined row
    name: ClassVar[str]
    #: the model kinds that can write its programs, by their names in ``prox_spark.pipeline.model_kinds.MODEL_KINDS``
    #: (what ``models.<name>.kind`` may say; each kind has its writer for this stage); empty: the stage needs no model
    model_kinds: ClassVar[tuple[str, ...]] = ()
    #: the columns it adds to a staged batch, in order, as Arrow: the one definition of its output
    schema: ClassVar[pa.Schema]

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)

    @property
    def result_column(self) -> str:
        """The column with its per-document result as the executor reports one (``text``, ``kept``, ``outcome``,
        ``reason``, ``words_*``, ``lines_*``, ``ops``): what the row builder reads for every stage."""
        return f"{self.name}_exec"

    @property
    def needs_model(self) -> bool:
        return bool(self.model_kinds)

    @abstractmethod
    def run(self, texts: list, programs: list | None, context: PassContext) -> StageRun:
        """The stage over ``texts`` (what the previous stage kept; ``""`` for a document dropped earlier, None for
        one without text). ``programs``: a model stage's programs, one per text (``ModelStage.empty_program`` where
        the document did not reach it), None for a stage without a model."""

    @abstractmethod
    def program_rows(self, record: StageRecord) -> list[dict[str, Any]]:
        """A document's ``programs`` rows for this stage, from its ``record`` (this stage's columns for it): the
        fields that are the stage's own (``PROGRAM_ROW_ARROW_TYPE`` less ``stage``, ``model_id`` and the
        result fields, ``pipeline.rows.PROGRAM_RESULT_FIELDS``, which the row builder adds)."""

    @abstractmethod
    def refined_program(self, record: StageRecord) -> str | None:
        """The program the document's ``refined`` row shows for this stage (its ``<name>_program`` field)."""


class ModelStage(Stage):
    """A stage whose programs come from a ``ProgramSource``: a model writes them (``write_programs``), or a run
    stored them (``read_stored``, for ``prox-spark apply``)."""

    #: the ``programs`` table columns a stored program of this stage is read back from (``udfs.apply`` collects
    #: them from each of a document's rows of this stage)
    stored_fields: ClassVar[tuple[str, ...]]

    @abstractmethod
    def empty_program(self) -> Any:
        """The program of a document that did not reach the stage (or reached it without one)."""

    @abstractmethod
    def write_programs(self, texts: list[str], models: ModelPrograms) -> Sequence[Any]:
        """One program per text (``""``: no model call), written by this stage's model in ``models`` as its kind
        writes this stage's programs (``models.write``)."""

    @abstractmethod
    def read_stored(self, stored: Sequence[Mapping[str, Any]]) -> Any:
        """A document's program from its stored ``programs`` rows of this stage, their ``stored_fields``, in any
        order (never empty here)."""


def execute(texts: list, programs: list[str], stage: str, settings: RefineSettings) -> pd.DataFrame:
    """The executor over one stage's programs (``settings``' dialect and limits)."""
    return execute_batch(texts, programs, stage=stage, dialect=settings.dialect, config=settings.executor)


def check_record_type(arrow_type: pa.DataType, names: Sequence[str], record: str) -> None:
    """A record's fields are written twice (dataclass, Arrow type) so each reads on its own: fail at import if
    they part (``tests/test_udf_staged.py`` checks the same, and that the tables' Spark types stay)."""
    arrow_names = tuple(field.name for field in arrow_type)
    if arrow_names != tuple(names):
        raise ImportError(f"the Arrow type of {record} names {list(arrow_names)}, the record {list(names)}")
