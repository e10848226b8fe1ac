"""What a model kind is: one object that says how a stage's model of that kind is loaded for serving, checked on
the driver, and asked for a stage's programs.

The registry (``prox_spark.pipeline.model_kinds.MODEL_KINDS``) holds one per kind, and everything that loads,
checks or runs a stage's model goes through it: ``load_stage_model``, ``verify_stage_model``, the config's
``models.<stage>.kind`` check and ``ModelPrograms.write`` never name a kind. The code that runs a kind's model
lives in its own package (``prox_spark.lines`` for the line refiner); its kind module adapts it to the pipeline.
Which kinds a stage takes is the stage's (``Stage.model_kinds``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Protocol, Sequence

from prox_spark.inference.manifest import ModelLoadError

if TYPE_CHECKING:
    from prox_spark.pipeline.settings import RefineSettings


class ServedModel(Protocol):
    """What the pipeline asks of every kind's loaded model itself (the rest goes through its kind): the id its
    ``programs`` rows carry."""

    @property
    def model_id(self) -> str: ...


#: how a kind writes one stage's programs: (its loaded model, the texts, the pass's settings) -> one program per
#: text, of the stage's program type (``""`` texts: no model call)
ProgramWriter = Callable[[Any, list[str], "RefineSettings"], Sequence[Any]]


@dataclass(frozen=True)
class BundledModel:
    """A model of a kind shipped as package data for one stage: what an empty ``models.<stage>.path`` serves."""

    #: its folder under ``prox_spark/resources/models``
    folder: str
    #: the ``models`` keys a config leaves out take these values when it serves this model (nested as in YAML):
    #: the settings the model was tested with
    serving: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Serving:
    """How a stage's model is served in this process, whatever its kind: the onnxruntime provider and threads, the
    Spark tasks sharing the process, the CUDA device, and the decoder's prefill size (for a kind with a decoder;
    the others ignore it). Hashable: the per-process model caches key on it."""

    provider: str = "auto"
    intra_op_threads: int = 0
    concurrent_tasks: int = 1
    #: the CUDA device when the model runs on CUDA (ignored on CPU)
    device_id: int = 0
    prefill_tokens: int | None = None


class ModelKind(ABC):
    """One kind of refining model. Subclasses set the class attributes and implement ``load`` and ``check``; an
    instance is registered in ``MODEL_KINDS`` under its ``name``."""

    #: what ``models.<stage>.kind`` says, and what a stage's ``model_kinds`` lists
    name: ClassVar[str]
    #: the kind in a message ("a line refiner"): a directory of this kind met by another kind is named so
    label: ClassVar[str]
    #: the manifest file that marks a directory holding a model of this kind (a directory holds one kind)
    manifest_name: ClassVar[str]
    #: the type ``load`` returns: the registry finds a loaded model's kind by it, so no two kinds share one
    model_type: ClassVar[type]
    #: how it writes each stage's programs, by stage name: every stage that lists the kind has its writer here
    writers: ClassVar[Mapping[str, ProgramWriter]]
    #: its models shipped as package data, by stage name (none: an empty path is an error for it)
    bundled: ClassVar[Mapping[str, BundledModel]] = MappingProxyType({})

    def holds(self, model_dir: str | Path) -> bool:
        """Whether ``model_dir`` holds a model of this kind (its manifest is there)."""
        return (Path(model_dir) / self.manifest_name).is_file()

    @abstractmethod
    def load(self, model_dir: str | Path, serving: Serving) -> ServedModel:
        """This process's model for ``model_dir``, built once per process and ``serving`` (a Spark worker builds it
        for its first batch, not once per batch or task); ``ModelLoadError`` on any problem."""

    @abstractmethod
    def check(self, model_dir: str | Path) -> tuple[str, str, str]:
        """The driver-side check of ``model_dir`` (manifest, checksums, a CPU session of the graph): the stage its
        manifest names, its model id and checksum; ``ModelLoadError`` on any problem."""

    def verify(self, model_dir: str | Path, stage: str) -> tuple[str, str]:
        """``check``, and that the model is ``stage``'s: its (model id, checksum)."""
        found_stage, model_id, checksum = self.check(model_dir)
        if found_stage != stage:
            raise ModelLoadError(f"{model_dir} holds a {found_stage}-stage model")
        return model_id, checksum

    def write_programs(self, stage: str, model: Any, texts: list[str], settings: RefineSettings) -> Sequence[Any]:
        """``stage``'s programs for ``texts``, written by ``model`` (one of this kind) with ``settings``."""
        writer = self.writers.get(stage)
        if writer is None:
            raise ValueError(f"a {self.name} model writes no {stage} programs (it writes {', '.join(self.writers)})")
        return writer(model, texts, settings)
