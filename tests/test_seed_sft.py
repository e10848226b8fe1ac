"""Seed data derivation (programs executed against their clean text), splits, a short SFT run, the
evaluation metrics on hand-made predictions, and the default models shipped in prox_spark/resources/models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prox_spark.programs import execute, parse
from prox_spark.programs.ops import OpStatus
from prox_spark.training.evaluate import evaluate_cleaning, snippet_scores
from prox_spark.training.refiner_metrics import (
    F1,
    binary_f1,
    chunk_metrics,
    doc_f1,
    doc_metrics,
    line_f1,
    program_errors,
    removed_lines,
)
from prox_spark.training.seed import SeedExample, derive_page, doc_examples, doc_label, split_of
from prox_spark.training.seed_labels import LineLabel, heuristic_clean_text, label_lines
from prox_spark.training.seed_programs import KEEP_CHUNK

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = REPO / "prox_spark" / "resources" / "models"

ONE_TOKEN_PER_LINE = lambda line: 1  # noqa: E731  (chunk budgets in lines, for hand-made pages)

ARTICLE = [
    "The council approved the new cycling lanes on Tuesday after a long debate.",
    "Construction starts in spring and should be finished before the summer holidays.",
    "Residents can comment on the plans at the town hall until the end of the month.",
]
NOISY = "\n".join(
    [
        "Home | News | Sport | Contact",  # 0 menu
        "Login",  # 1 menu
        "",  # 2 blank between removed lines
        "Cycling lanes approved",  # 3 title (short, a whole clean line)
        ARTICLE[0],  # 4
        "",  # 5 blank between kept lines
        ARTICLE[1],  # 6
        "Advertisement " + ARTICLE[2],  # 7 inline boilerplate prefix
        "Share on Facebook",  # 8
        "Copyright 2024 Town Times",  # 9
    ]
)
CLEAN = "\n".join(["Cycling lanes approved", *ARTICLE])


def run(text: str, program: str) -> str:
    return execute(text, program, stage="chunk", dialect="reference").text


# --- seed derivation -------------------------------------------------------------------------------


def test_labels_of_a_hand_made_page():
    labels = label_lines(NOISY, CLEAN)
    assert [lb.action for lb in labels] == [
        "remove", "remove", "blank", "keep", "keep", "blank", "keep", "keep", "remove", "remove"
    ]
    assert labels[7].normalize == ("Advertisement ",) and labels[7].why == "partial"
    assert labels[3].why == "reference"


def test_derived_program_executes_to_the_clean_lines():
    page = derive_page("p1", NOISY, CLEAN, ONE_TOKEN_PER_LINE, 100)
    assert page.verified, page.detail
    assert page.program == "\n".join(
        [
            "remove_lines(line_start=0, line_end=1)",  # blank line 2 borders a kept line: it stays
            'normalize(source_str="Advertisement ", target_str="")',
            "remove_lines(line_start=8, line_end=9)",
        ]
    )
    assert run(NOISY, page.program) == "\n".join(["", "Cycling lanes approved", ARTICLE[0], "", ARTICLE[1], ARTICLE[2]])


def test_chunks_use_global_line_numbers_and_keep_chunk():
    # 3 lines per chunk: [0-2] [3-5] [6-8] [9]; blank line 2 ends its chunk after removed lines: it goes
    page = derive_page("p1", NOISY, CLEAN, ONE_TOKEN_PER_LINE, 3)
    programs = [seed.program for seed in page.chunks]
    assert programs == [
        "remove_lines(line_start=0, line_end=2)",
        KEEP_CHUNK,
        'normalize(source_str="Advertisement ", target_str="")\nremove_lines(line_start=8, line_end=8)',
        "remove_lines(line_start=9, line_end=9)",
    ]
    assert [seed.removed_lines for seed in page.chunks] == [(0, 1, 2), (), (8,), (9,)]
    assert page.verified
    assert run(NOISY, page.program) == "\n".join(["Cycling lanes approved", ARTICLE[0], "", ARTICLE[1], ARTICLE[2]])


def test_normalize_only_for_sources_the_reference_parser_reads_back():
    for prefix in ("Ad, sponsored: ", 'Say "hi" ', "Menu) ", "a=b "):
        noisy = "Home\n" + prefix + ARTICLE[0] + "\n" + ARTICLE[1]
        labels = label_lines(noisy, "\n".join(ARTICLE))
        assert labels[1] == LineLabel("keep", (), "partial"), prefix  # kept whole: no normalize
        page = derive_page("p", noisy, "\n".join(ARTICLE), ONE_TOKEN_PER_LINE, 100)
        assert page.verified and "normalize" not in page.program
    # a source that occurs twice in the page would be replaced twice (the executor's replace is global)
    noisy = "Advertisement " + ARTICLE[0] + "\nAdvertisement " + ARTICLE[1]
    assert all(lb.normalize == () for lb in label_lines(noisy, "\n".join(ARTICLE)))


def test_snippets_override_the_reference():
    labels = label_lines(NOISY, CLEAN, must_keep=["Share on"], must_remove=["Cycling lanes"])
    assert labels[8] == LineLabel("keep", why="must_keep")
    assert labels[3] == LineLabel("remove", why="must_remove")


def test_short_lines_must_match_a_whole_clean_line():
    # "Contact" occurs inside the article, but a short line counts only as a whole clean line
    clean = "Contact the council before Friday to share your view on the cycling lanes."
    labels = label_lines("Contact\n" + clean, clean)
    assert [lb.action for lb in labels] == ["remove", "keep"]


def test_page_whose_program_leaves_too_little_is_the_executors_drop():
    noisy = "\n".join(f"menu entry {i}" for i in range(30)) + "\nOnly this."
    page = derive_page("tiny", noisy, "Only this.", ONE_TOKEN_PER_LINE, 100)
    assert page.verified and "kept_fraction_too_low" in page.detail


def test_heuristic_reference_keeps_prose_lines():
    text = "Home | About | Blog | Contact\n" + ARTICLE[0] + "\nShort line\n" + ARTICLE[1]
    assert heuristic_clean_text(text) == ARTICLE[0] + "\n" + ARTICLE[1]


LINE = st.tuples(st.sampled_from(["keep", "remove", "blank"]), st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=30), st.integers(1, 6))
def test_any_labelling_gives_a_program_that_executes_to_it(spec, budget):
    """Random pages: kept lines are unique sentences, removed lines unique menu words; the derived
    program, run by the reference executor, keeps exactly the kept lines."""
    lines, kept = [], []
    for i, (action, width) in enumerate(spec):
        if action == "blank":
            lines.append(" " * width)
        elif action == "keep":
            lines.append(f"Sentence number {i} tells a complete story about item {i} in detail.")
            kept.append(lines[-1])
        else:
            lines.append(f"menu{i}")
    noisy = "\n".join(lines)
    page = derive_page("h", noisy, "\n".join(kept), ONE_TOKEN_PER_LINE, budget)
    assert page.verified, page.detail
    removed = set(page.removed_lines)
    assert all(lines[n] in ("menu" + str(n),) or not lines[n].strip() for n in removed)
    survivors = [line for n, line in enumerate(lines) if n not in removed]
    assert [s for s in survivors if s.strip()] == kept
    result = execute(noisy, page.program, stage="chunk", dialect="reference")
    assert result.errors == 0
    if result.kept:
        assert result.text == "\n".join(survivors)


# --- doc labels and splits -------------------------------------------------------------------------


def test_doc_examples_and_labels():
    records = [{"id": "a", "text": "good text", "label": 1}, {"text": "bad text", "label": "drop"}]
    examples = list(doc_examples(records, source="mine"))
    assert [e.target for e in examples] == ["keep_doc()", "drop_doc()"]
    assert examples[0].prompt == "<doc>\ngood text\n</doc>\n<program>\n"
    assert examples[1].id and examples[1].split in ("train", "validation", "test")
    assert SeedExample.from_record(json.loads(json.dumps(examples[0].as_record()))) == examples[0]
    assert [doc_label(v) for v in (True, 0, "keep", "0", "drop_doc()")] == [True, False, True, False, False]
    with pytest.raises(ValueError):
        doc_label(3)
    with pytest.raises(ValueError):
        list(doc_examples([{"text": "x"}], source="bad"))


def test_split_is_deterministic_and_proportional():
    ids = [f"page-{i}" for i in range(4000)]
    first = [split_of(i) for i in ids]
    assert first == [split_of(i) for i in ids]
    counts = {s: first.count(s) for s in ("train", "validation", "test")}
    assert 0.77 < counts["train"] / 4000 < 0.83 and 0.08 < counts["test"] / 4000 < 0.12
    # pinned: a changed hash or salt would silently move pages between splits
    assert [split_of(i) for i in ("die-partei.net.luebeck.html", "dclm-0000", "page-1")] == ["train", "train", "train"]
    assert sum(split_of(i, salt="other") != s for i, s in zip(ids, first)) > 400


# --- metrics on hand-made predictions --------------------------------------------------------------


def test_doc_f1_by_hand():
    gold = ["keep_doc()", "keep_doc()", "drop_doc()", "drop_doc()", "keep_doc()"]
    pred = ["keep_doc()", "drop_doc()", "keep_doc()", "drop_doc()", "garbage"]  # garbage keeps (no "drop")
    scores = doc_f1(gold, pred)
    assert (scores.tp, scores.fp, scores.fn, scores.tn) == (2, 1, 1, 1)
    assert scores.precision == pytest.approx(2 / 3) and scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)
    metrics = doc_metrics(gold, pred)
    assert metrics["accuracy"] == pytest.approx(3 / 5) and metrics["malformed_rate"] == pytest.approx(1 / 5)
    assert binary_f1([False], [False]).f1 == 0.0


def test_line_f1_exact_match_and_failures_by_hand():
    gold = ["remove_lines(line_start=0, line_end=3)", "keep_chunk()", "remove_lines(line_start=10, line_end=11)"]
    pred = [
        "remove_lines(line_start=2, line_end=5)",  # TP 2,3  FP 4,5  FN 0,1
        "keep_chunk()",
        "remove_lines(10, 11)\nremove_lines(line_start=10, line_end=99)",  # positional: parse error; 10-19 clipped, FP 12-19, range error
    ]
    sets = [removed_lines(p, 20) for p in pred]
    assert sets == [{2, 3, 4, 5}, set(), set(range(10, 20))]
    scores = line_f1([removed_lines(g, 20) for g in gold], sets)
    assert (scores.tp, scores.fp, scores.fn) == (4, 10, 2)
    assert scores.f1 == pytest.approx(2 * (4 / 14) * (4 / 6) / (4 / 14 + 4 / 6))
    assert [program_errors(p, 20) for p in pred] == [0, 0, 2]
    metrics = chunk_metrics(gold, pred, [20, 20, 20])
    assert metrics["exact_match"] == pytest.approx(1 / 3)
    assert metrics["execution_failure_rate"] == pytest.approx(1 / 3)
    assert removed_lines("remove_lines(all=True)", 4) == {0, 1, 2, 3}
    assert F1(0, 0, 0).f1 == 0.0


def test_snippet_scores_by_hand():
    class Page:
        noisy_text = "Menu\nThe story\nFooter"
        must_keep = ("The story", "not in page")
        must_remove = ("Menu", "Footer")

    scores = snippet_scores(["The story\nFooter"], [Page()])
    assert scores["must_keep"] == [1, 1] and scores["must_remove"] == [1, 2]


@pytest.mark.slow
def test_cleaning_evaluation_reports_both_teachers_ceilings(shared_data):
    """The report's cleaning table on a few held-out pages: no cleaning keeps everything, the gold programs
    derived from either teacher are rows beside the models (the ceiling a student of that teacher has)."""
    report = evaluate_cleaning(shared_data, doc_model=DEFAULT_MODELS / "doc", chunk_model=DEFAULT_MODELS / "chunk",
                               chunk_max_tokens=128, max_pages=4)
    rows = {row["name"]: row for row in report["rows"]}
    none = rows["no cleaning"]
    assert (none["must_keep_retained"], none["must_remove_removed"]) == (1.0, 0.0)
    assert "seed programs (teacher lines, no snippets) + executor" in rows
    assert "seed programs from teacher_trafilatura_precision instead (no snippets) + executor" in rows
    assert "doc + chunk models, chunk removals clipped (conf/local.yaml)" in rows
    for row in rows.values():
        assert row["pages"] == 4 and 0.0 <= row["must_keep_retained"] <= 1.0 and 0.0 <= row["must_remove_removed"] <= 1.0
        assert row["must_keep"][1] == none["must_keep"][1] > 0  # every system is scored on the same snippets


# --- SFT -------------------------------------------------------------------------------------------

torch = pytest.importorskip("torch")


def _synthetic_doc_seed(path: Path, n: int = 96) -> None:
    """Keep docs talk about science, drop docs are spam: learnable from one word."""
    rows = []
    for i in range(n):
        keep = i % 2 == 0
        text = (f"The study {i} measured results carefully." if keep else f"BUY CHEAP pills {i} now click here!!!")
        split = "validation" if i % 5 == 0 else "train"  # both classes in validation
        rows.append(
            SeedExample(str(i), "doc", split, text, "", "keep_doc()" if keep else "drop_doc()", {"label": int(keep)}).as_record()
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.mark.slow
def test_short_sft_run_lowers_validation_loss(tmp_path):
    from prox_spark.models import build_model, llama_config, save_tokenizer, train_tokenizer
    from prox_spark.training.sft import SFTConfig, train, validation_loss
    from prox_spark.training.sft_data import encode_examples
    from prox_spark.training.seed import read_seed

    texts = ["The study measured results carefully.", "BUY CHEAP pills now click here!!!"] * 20
    tokenizer = train_tokenizer(texts, 320)
    tokenizer_path = save_tokenizer(tokenizer, tmp_path / "tok")
    seed_file = tmp_path / "doc.jsonl"
    _synthetic_doc_seed(seed_file)
    shape = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=1, max_position_embeddings=256)
    config = SFTConfig(
        kind="doc", seed_file=str(seed_file), tokenizer=str(tokenizer_path), work_dir=str(tmp_path / "work"),
        max_prompt_tokens=64, max_new_tokens=4, max_target_tokens=4, shape="tiny", model=shape, batch_size=8,
        learning_rate=0.005, warmup_steps=4, max_steps=80, eval_every=40, eval_examples=0, eval_max_new_tokens=3, threads=1,
    )
    model_config = llama_config("tiny", tokenizer=tokenizer, **shape)
    items = encode_examples(read_seed(seed_file, "validation"), tokenizer, template="compact", max_prompt_tokens=64, eos_id=model_config.eos_token_id)
    before = validation_loss(build_model(model_config, seed=0), items, model_config.pad_token_id, 16)
    result = train(config)
    assert [h["step"] for h in result.history] == [40, 80]
    assert result.history[-1]["val_loss"] < before * 0.5
    assert result.best_metric == pytest.approx(1.0), result.history  # greedy keep/drop all right
    assert result.calibration["validation_f1"] == pytest.approx(1.0)  # the keep threshold, calibrated
    assert (Path(result.best_dir) / "tokenizer.json").is_file()
    log = json.loads((tmp_path / "work" / "train_log.json").read_text())
    assert log["result"]["best_step"] == result.best_step
    again = train(config)  # same seed, same run
    assert [h["val_loss"] for h in again.history] == pytest.approx([h["val_loss"] for h in result.history], rel=1e-5)


def test_lm_pretraining_lowers_its_loss_and_reads_only_the_train_split(tmp_path):
    from prox_spark.models import build_model, llama_config, save_tokenizer, train_tokenizer
    from prox_spark.training.seed import read_seed
    from prox_spark.training.sft import SFTConfig, lm_pretrain

    texts = ["The study measured results carefully.", "BUY CHEAP pills now click here!!!"] * 20
    tokenizer = train_tokenizer(texts, 320)
    save_tokenizer(tokenizer, tmp_path / "tok")
    seed_file = tmp_path / "doc.jsonl"
    _synthetic_doc_seed(seed_file)
    shape = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=1, num_hidden_layers=1, max_position_embeddings=256)
    model_config = llama_config("tiny", tokenizer=tokenizer, **shape)
    config = SFTConfig(kind="doc", pretrain_steps=40, pretrain_seed_files=[str(seed_file)], pretrain_seq_len=32,
                       pretrain_batch_size=8, warmup_steps=4, seed=0)
    summary = lm_pretrain(build_model(model_config, seed=0), config, tokenizer, model_config.eos_token_id)
    assert summary["last_loss"] < summary["first_loss"] * 0.6, summary
    train_only = sum(len(tokenizer.encode(e.input).ids) + 1 for e in read_seed(seed_file, "train"))
    assert summary["corpus_tokens"] == train_only


# --- the default models ----------------------------------------------------------------------------


def _default_model(kind: str) -> Path:
    path = DEFAULT_MODELS / kind
    if not (path / "prox_model.json").is_file():
        pytest.skip(f"{path} has no exported model (run `make models`)")
    return path


def test_default_models_are_small_and_verified():
    from prox_spark.inference import verify_model_dir

    total = 0
    for kind in ("doc", "chunk"):
        path = _default_model(kind)
        manifest = verify_model_dir(path)
        assert manifest.kind == kind and manifest.prompt_template == "compact" and manifest.precision == "fp32"
        total += sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    assert total <= 20 * 1024 * 1024


@pytest.mark.slow
def test_default_models_write_parseable_programs():
    from importlib import resources

    from prox_spark.training.evaluate import generate_programs, refine_pages

    doc_dir, chunk_dir = _default_model("doc"), _default_model("chunk")
    corpus = resources.files("prox_spark") / "resources" / "sample_corpus.jsonl"
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines()[:6]]
    doc_programs = [p for p, _ in generate_programs(doc_dir, "doc", texts)]
    assert all(p in ("keep_doc()", "drop_doc()") for p in doc_programs), doc_programs
    report = DEFAULT_MODELS / "reports" / "chunk.json"
    chunk_tokens = json.loads(report.read_text())["model"]["chunk_max_tokens"] if report.is_file() else 256
    results = refine_pages(texts, doc_model=None, chunk_model=chunk_dir, chunk_max_tokens=chunk_tokens)
    parsed_lines = [line for r in results for line in parse(r.chunk_program, stage="chunk").lines]
    assert parsed_lines
    readable = [line for line in parsed_lines if line.status is not OpStatus.PARSE_ERROR]
    assert len(readable) >= 0.9 * len(parsed_lines), [line.source_text for line in parsed_lines]
    assert all(line.op is not None for line in readable if line.source_text.strip())
