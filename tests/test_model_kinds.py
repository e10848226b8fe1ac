"""A model kind is one entry of the registry (``prox_spark.pipeline.model_kinds.MODEL_KINDS``): what a run accepts,
checks, loads and asks for programs comes from looking the kind up there, so a new kind needs its module, its
registry entry and its name in the ``model_kinds`` of each stage it writes for, nothing else.

The registry's own kinds are checked against the stages; then a kind made up here (``tagger``: it removes each
page's first line) is registered for the chunk stage and goes through the config, preflight, loading and a refine
pass like the real ones. It is a real extension of the registry, not a stand-in for a part of the pipeline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from prox_spark.clean import load_models
from prox_spark.config import BUNDLED_KIND, ConfigError, bundled_model_dir, load_config, stage_model_paths
from prox_spark.inference import ModelLoadError
from prox_spark.lines import removed_ranges, render_program
from prox_spark.pipeline import RefineSettings, load_stage_model, refine_batch, run_stages, verify_stage_model
from prox_spark.pipeline.model_kinds import MODEL_KINDS, ModelKind, kind_of
from prox_spark.pipeline.model_stages import ChunkProgram
from prox_spark.pipeline.stages import STAGES, ChunkStage, ModelStage
from prox_spark.udfs.preflight import preflight

MODEL_STAGES = tuple(stage for stage in STAGES if isinstance(stage, ModelStage))
PROSE = [
    "The committee reviewed the proposal in detail and agreed to fund the project for two more years.",
    "Researchers at the station have measured the river's temperature every morning since the spring of 1998.",
    "Their data show that the water warms a little earlier each year, which affects when the fish arrive.",
    "Local farmers say the change is visible in their fields as well, where the first frost now comes later.",
]
PAGE = "\n".join(["Home | News | Contact", *PROSE])


def test_every_stage_takes_registered_kinds_that_write_its_programs():
    assert all(name == kind.name for name, kind in MODEL_KINDS.items())
    assert len({kind.model_type for kind in MODEL_KINDS.values()}) == len(MODEL_KINDS)  # kind_of is unambiguous
    assert len({kind.manifest_name for kind in MODEL_KINDS.values()}) == len(MODEL_KINDS)
    for stage in MODEL_STAGES:
        assert stage.model_kinds, stage.name
        for kind in stage.model_kinds:
            assert stage.name in MODEL_KINDS[kind].writers, (stage.name, kind)
    for stage, kind in BUNDLED_KIND.items():  # an empty config serves a kind the stage takes, shipped for it
        assert kind in next(s for s in MODEL_STAGES if s.name == stage).model_kinds
        assert bundled_model_dir(stage, kind).is_dir()


@pytest.mark.parametrize("stage", [stage.name for stage in MODEL_STAGES])
@pytest.mark.parametrize("kind", sorted(MODEL_KINDS))
def test_the_config_takes_exactly_the_registered_kinds_a_stage_lists(stage, kind):
    overrides = [f"models.{stage}.kind={kind}", f"models.{stage}.path=/models/{stage}"]
    stage_kinds = next(s for s in MODEL_STAGES if s.name == stage).model_kinds
    if kind in stage_kinds:
        assert load_config(None, overrides).models.stage(stage).kind == kind
    else:
        writes = " and ".join(s.name for s in MODEL_STAGES if kind in s.model_kinds)
        with pytest.raises(ConfigError, match=rf"^models\.{stage}\.kind must be .*\({MODEL_KINDS[kind].label} writes {writes} programs\)"):
            load_config(None, overrides)


def test_an_unregistered_kind_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"^models\.chunk\.kind must be one of 'generative', 'lines', got 'tagger'$"):
        load_config(None, ["models.chunk.kind=tagger"])
    with pytest.raises(ValueError, match=r"model kind must be one of \('generative', 'lines'\), got 'tagger'"):
        load_stage_model(tmp_path, "tagger")
    with pytest.raises(TypeError, match="no model kind serves a TaggerModel"):
        kind_of(TaggerModel("t", 1))


# --- a kind made up here, registered for the chunk stage --------------------------------------------------------

TAGGER_MANIFEST = "prox_tagger_model.json"


@dataclass(frozen=True)
class TaggerModel:
    model_id: str
    #: how many leading lines of a page it removes
    head_lines: int


def tagger_chunk_programs(model: TaggerModel, texts: list[str], settings: RefineSettings) -> list[list[ChunkProgram]]:
    """One program per page, as the line refiner writes them: the page's first ``head_lines`` lines removed."""
    out: list[list[ChunkProgram]] = []
    for text in texts:
        if not text.strip():
            out.append([])
            continue
        lines = text.count("\n") + 1
        program = render_program(removed_ranges([i >= model.head_lines for i in range(lines)]))
        out.append([ChunkProgram(0, 0, lines - 1, program, lines, 0.0, program_lines=program.count("\n") + 1)])
    return out


class TaggerKind(ModelKind):
    name = "tagger"
    label = "a tagger"
    manifest_name = TAGGER_MANIFEST
    model_type = TaggerModel
    writers = {"chunk": tagger_chunk_programs}

    def load(self, model_dir, serving) -> TaggerModel:
        manifest = json.loads((Path(model_dir) / TAGGER_MANIFEST).read_text())
        return TaggerModel(manifest["model_id"], manifest["head_lines"])

    def check(self, model_dir) -> tuple[str, str, str]:
        path = Path(model_dir) / TAGGER_MANIFEST
        if not path.is_file():
            raise ModelLoadError(f"{path}: tagger manifest not found")
        manifest = json.loads(path.read_text())
        return manifest["stage"], manifest["model_id"], hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tagger(tmp_path, monkeypatch) -> Path:
    """The tagger kind registered and taken by the chunk stage (both undone after the test); its model's folder."""
    monkeypatch.setitem(MODEL_KINDS, "tagger", TaggerKind())
    monkeypatch.setattr(ChunkStage, "model_kinds", (*ChunkStage.model_kinds, "tagger"))
    model_dir = tmp_path / "tagger"
    model_dir.mkdir()
    (model_dir / TAGGER_MANIFEST).write_text(json.dumps({"model_id": "tagger-1", "stage": "chunk", "head_lines": 1}))
    return model_dir


def test_a_registered_kind_is_configured_checked_and_refused_like_the_others(tagger):
    config = load_config(None, ["models.chunk.kind=tagger", f"models.chunk.path={tagger}"])
    assert (config.models.chunk.kind, config.models.chunk.path) == ("tagger", str(tagger))
    with pytest.raises(ConfigError, match=r"^models\.doc\.kind must be 'generative' \(a tagger writes chunk programs\)"):
        load_config(None, ["models.doc.kind=tagger"])
    assert bundled_model_dir("chunk", "tagger") is None  # it ships no model: an empty path serves none
    with pytest.raises(ConfigError, match=r"^models\.chunk\.path: required"):
        stage_model_paths(load_config(None, ["models.chunk.kind=tagger"]))

    checksum = hashlib.sha256((tagger / TAGGER_MANIFEST).read_bytes()).hexdigest()
    assert verify_stage_model(tagger, "tagger", "chunk") == ("tagger-1", checksum)
    with pytest.raises(ModelLoadError, match="holds a chunk-stage model"):
        verify_stage_model(tagger, "tagger", "doc")
    # a directory of another kind names the key to change, whichever kind meets it
    with pytest.raises(ModelLoadError, match=r"holds a tagger \(prox_tagger_model.json\): set models.chunk.kind: tagger"):
        verify_stage_model(tagger, "generative", "chunk")
    with pytest.raises(ModelLoadError, match=r"holds a line refiner .*: set models.chunk.kind: lines"):
        verify_stage_model(bundled_model_dir("chunk", "lines"), "tagger", "chunk")


def test_a_registered_kind_runs_the_chunk_stage_of_a_run(tagger, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": PAGE}) + "\n")
    config = load_config(None, [f"input.path={corpus}", f"output.path={tmp_path / 'o'}", "models.provider=cpu",
                                "models.chunk.kind=tagger", f"models.chunk.path={tagger}"])
    assert preflight(config).model_ids["chunk"] == "tagger-1"
    models = load_models(config)
    assert models["chunk"] == TaggerModel("tagger-1", 1) and kind_of(models["chunk"]) is MODEL_KINDS["tagger"]

    columns = run_stages([PAGE, ""], ("chunk",), models={"chunk": models["chunk"]})
    assert list(columns["chunk_program"]) == ["remove_lines(line_start=0, line_end=0)", ""]  # "": no chunks
    documents, programs = refine_batch(["a", "b"], [PAGE, "   "], {"chunk": models["chunk"]}, stages=("chunk",))
    assert documents["text"][0] == "\n".join(PROSE)
    (row,) = programs.to_dict("records")  # a blank page has no chunk, so no program row
    assert (row["doc_id"], row["stage"], row["model_id"]) == ("a", "chunk", "tagger-1")
    assert (row["program"], row["first_line"], row["last_line"], row["prompt_tokens"]) == (
        "remove_lines(line_start=0, line_end=0)", 0, 4, 5)
    assert [(op["op"], op["start"], op["end"]) for op in row["ops"]] == [("remove_lines", 0, 0)]
