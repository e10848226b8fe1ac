"""The cleaning pages as in-distribution keep_doc() examples (issue #5): labels, the held-out guard, mixing."""

from __future__ import annotations

import gzip
import json
from itertools import count, islice
from pathlib import Path

import pytest

from prox_spark.training.seed import (
    DOC_CLEANING_FILE,
    DOC_FILE,
    KEEP_DOC,
    SeedExample,
    build_seed,
    cleaning_keep_examples,
    read_seed,
    split_of,
)
from prox_spark.training.seed_sources import CleaningPage
from prox_spark.training.sft import SFTConfig, extra_train_examples

NOISY = "Home | About\nThe council approved the new cycling lanes on Tuesday.\nCopyright 2024"


def _ids(split: str, n: int) -> list[str]:
    """The first ``n`` ids ``page-<i>`` that ``split_of`` puts into ``split``."""
    return list(islice((i for i in (f"page-{k}" for k in count()) if split_of(i) == split), n))


def _page(page_id: str, url: str = "", must_keep: tuple[str, ...] = ("cycling lanes",)) -> CleaningPage:
    return CleaningPage(page_id, url or f"https://example.org/{page_id}", NOISY, "", "teacher", "trafilatura_eval", must_keep)


def test_train_pages_with_snippets_become_keep_examples_and_held_out_ones_never_do():
    train, validation, test = _ids("train", 4), _ids("validation", 2), _ids("test", 2)
    pages = [_page(i) for i in train[:2] + validation + test]
    pages.append(_page(train[2], must_keep=()))  # no human-marked content: no label
    pages.append(_page(train[3], url=f"https://example.org/{test[0]}"))  # a held-out page under another id
    examples = list(cleaning_keep_examples(pages))
    assert [e.id for e in examples] == train[:2]
    assert all(e.target == KEEP_DOC and e.kind == "doc" and e.split == "train" for e in examples)
    assert examples[0].input == NOISY and examples[0].prompt == f"<doc>\n{NOISY}\n</doc>\n<program>\n"
    assert examples[0].meta["label"] == 1


def test_build_seed_writes_only_train_pages_and_leaves_doc_jsonl_alone(tmp_path):
    ids = _ids("train", 3) + _ids("validation", 2) + _ids("test", 3)
    data = tmp_path / "data"
    (data / "cleaning").mkdir(parents=True)
    records = [{"id": i, "url": f"https://example.org/{i}", "noisy_text": NOISY, "teacher_trafilatura": NOISY.split("\n")[1],
                "must_keep": ["cycling lanes"], "must_remove": ["Copyright"]} for i in ids]
    with gzip.open(data / "cleaning" / "trafilatura_eval_segments.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r) + "\n" for r in records)
    stats = build_seed(data, tmp_path / "seed", lambda line: 1, max_chunk_tokens=8)
    written = read_seed(tmp_path / "seed" / DOC_CLEANING_FILE)
    assert sorted(e.id for e in written) == sorted(_ids("train", 3)) and stats.doc_cleaning_examples == 3
    assert not {e.id for e in written} & set(_ids("validation", 2) + _ids("test", 3))
    assert (tmp_path / "seed" / DOC_FILE).read_text() == ""  # no DCLM labels here; cleaning pages stay out


def _seed_file(path: Path, ids_by_split: dict[str, list[str]]) -> Path:
    rows = [SeedExample(i, "doc", split, "text " + i, "", KEEP_DOC).as_record() for split, ids in ids_by_split.items() for i in ids]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_extra_train_examples_are_a_seeded_sample_of_the_train_split(tmp_path):
    path = _seed_file(tmp_path / "extra.jsonl", {"train": [f"t{i}" for i in range(20)], "validation": ["v0"], "test": ["x0"]})
    config = SFTConfig(kind="doc", extra_train_file=str(path), extra_train_examples=5, seed=3)
    first = [e.id for e in extra_train_examples(config)]
    assert len(set(first)) == 5 and all(i.startswith("t") for i in first)
    assert [e.id for e in extra_train_examples(config)] == first  # same seed, same sample
    assert [e.id for e in extra_train_examples(SFTConfig(kind="doc", extra_train_file=str(path), extra_train_examples=5, seed=4))] != first
    everything = extra_train_examples(SFTConfig(kind="doc", extra_train_file=str(path), extra_train_examples=-1))
    assert sorted(e.id for e in everything) == sorted(f"t{i}" for i in range(20))
    assert extra_train_examples(SFTConfig(kind="doc", extra_train_file=str(path))) == []  # off by default
    assert extra_train_examples(SFTConfig(kind="chunk", extra_train_file=str(path), extra_train_examples=-1)) == []
    with pytest.raises(ValueError, match="extra_train_file"):
        extra_train_examples(SFTConfig(kind="doc", extra_train_examples=3))
