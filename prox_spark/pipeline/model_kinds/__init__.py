"""The model kinds, one object each (``base.ModelKind``), and the registry everything that loads, checks or runs a
stage's model looks its kind up in.

A kind's module holds all of it: its name, how its model is loaded for serving and checked on the driver, how it
writes each stage's programs, and the models of it the package ships. ``load_stage_model`` (the workers and
``prox-spark clean``), ``verify_stage_model`` (the job's preflight), ``kind_of`` (``ModelPrograms.write``, the
pass's programs) and the config's ``models.<stage>.kind`` check read ``MODEL_KINDS`` and never name a kind. A new
kind is a module here and its entry in ``MODEL_KINDS``, plus its own package of model code (as
``prox_spark.lines`` is the line refiner's) and its name in the ``model_kinds`` of each stage it writes for.
"""

from __future__ import annotations

from pathlib import Path

from prox_spark.inference.manifest import ModelLoadError
from prox_spark.pipeline.model_kinds.base import ModelKind, ServedModel, Serving
from prox_spark.pipeline.model_kinds.generative import GenerativeKind
from prox_spark.pipeline.model_kinds.lines import LinesKind

#: every model kind, by name
MODEL_KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (GenerativeKind(), LinesKind())}


def model_kind(name: str) -> ModelKind:
    """The kind named ``name``; an unknown name fails naming the known ones."""
    kind = MODEL_KINDS.get(name)
    if kind is None:
        raise ValueError(f"model kind must be one of {tuple(MODEL_KINDS)}, got {name!r}")
    return kind


def kind_of(model: ServedModel) -> ModelKind:
    """The kind whose ``load`` built ``model`` (by its type: each kind's ``model_type`` is its own)."""
    for kind in MODEL_KINDS.values():
        if type(model) is kind.model_type:
            return kind
    raise TypeError(f"no model kind serves a {type(model).__name__} (the kinds are {tuple(MODEL_KINDS)})")


def load_stage_model(
    model_dir: str | Path,
    kind: str,
    serving: Serving = Serving(),
) -> ServedModel:
    """This process's model for a stage, of the configured ``kind`` (``ModelKind.load``); ``ModelLoadError`` on
    any problem, including a directory that holds another kind."""
    found = model_kind(kind)
    _refuse_other_kinds(model_dir, found, "<stage>")
    return found.load(model_dir, serving)


def verify_stage_model(model_dir: str | Path, kind: str, stage: str) -> tuple[str, str]:
    """Driver-side check before any Spark stage: the directory holds a working ``kind`` model for ``stage``
    (``ModelKind.verify``). Returns its (model id, checksum)."""
    found = model_kind(kind)
    _refuse_other_kinds(model_dir, found, stage)
    return found.verify(model_dir, stage)


def _refuse_other_kinds(model_dir: str | Path, kind: ModelKind, stage: str) -> None:
    """A stage pointed at a directory of another kind fails naming the key to change."""
    for other in MODEL_KINDS.values():
        if other is not kind and other.holds(model_dir):
            raise ModelLoadError(
                f"{model_dir}: holds {other.label} ({other.manifest_name}): set models.{stage}.kind: {other.name}"
            )


__all__ = ["MODEL_KINDS", "ModelKind", "ServedModel", "kind_of", "Serving", "load_stage_model", "model_kind", "verify_stage_model"]
