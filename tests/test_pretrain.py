"""The pre-training job: exact packing, resumable sharded stream, pinned Delta reads, identical resume, e2e."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from prox_spark.config import ConfigError, load_config
from prox_spark.pretrain import (
    Cursor,
    DataError,
    DeltaSource,
    PackedDataset,
    Packer,
    TextSource,
    eval_blocks,
    make_encoder,
    open_table,
)
from prox_spark.pretrain.data import epoch_plan, shard_segments

deltalake = pytest.importorskip("deltalake")
from deltalake import write_deltalake  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EOS = -1  # the fake encoder's EOS: never equal to a real token of the generated streams


def fake_encode(texts: list[str]) -> list[np.ndarray]:
    """Texts are space-separated integers: tokens are those integers, EOS appended."""
    return [np.asarray([int(t) for t in text.split()] + [EOS], dtype=np.int64) for text in texts]


def numbered_docs(lengths: list[int]) -> list[str]:
    """Documents whose tokens are consecutive integers (0-length docs are empty texts = dropped rows)."""
    docs, counter = [], 0
    for n in lengths:
        docs.append(" ".join(str(counter + i) for i in range(n)))
        counter += n
    return docs


def stream_of(docs: list[str]) -> np.ndarray:
    parts = [fake_encode([d])[0] for d in docs if d]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------------------------------ packing


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=30), st.integers(2, 33))
def test_packing_is_exact(lengths, block_len):
    docs = numbered_docs(lengths)
    segments = [(0, i, 0, tokens) for i, tokens in enumerate(fake_encode([d for d in docs if d]))]
    packer = Packer(segments, block_len)
    blocks = [block for block, _ in packer]
    assert all(len(b) == block_len for b in blocks)
    assert len(packer.tail) < block_len
    # disjoint blocks: blocks + tail, concatenated, are exactly the documents + EOS, nothing lost or repeated
    rebuilt = np.concatenate([*blocks, packer.tail]) if blocks else packer.tail
    np.testing.assert_array_equal(rebuilt, stream_of(docs))
    assert packer.tokens_in == len(stream_of(docs)) == len(blocks) * block_len + len(packer.tail)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=25), st.integers(2, 17), st.integers(2, 5))
def test_shuffled_windows_are_permutations_of_the_packed_blocks(lengths, block_len, window):
    docs = numbered_docs(lengths)
    if len(stream_of(docs)) < block_len:
        return
    plain = list(PackedDataset(TextSource(docs), lambda: fake_encode, block_len - 1, epochs=1).blocks(0))
    shuffled = list(
        PackedDataset(TextSource(docs), lambda: fake_encode, block_len - 1, shuffle_buffer=window, seed=3, epochs=1).blocks(0)
    )
    assert len(plain) == len(shuffled)
    for start in range(0, len(plain), window):  # each window holds the same blocks, in some order
        a = sorted(tuple(b.tolist()) for b, _ in plain[start : start + window])
        b = sorted(tuple(b.tolist()) for b, _ in shuffled[start : start + window])
        assert a == b


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=20),
    st.integers(2, 12),
    st.integers(1, 4),
    st.integers(0, 60),
    st.integers(0, 3),
)
def test_resume_from_any_cursor_continues_identically(lengths, block_len, window, cut, seed):
    docs = numbered_docs(lengths)
    if len(stream_of(docs)) < block_len:
        return
    dataset = PackedDataset(TextSource(docs), lambda: fake_encode, block_len - 1, shuffle_buffer=window, seed=seed, epochs=3)
    full = list(dataset.blocks(0))
    cut = min(cut, len(full))
    cursor = full[cut - 1][1] if cut else Cursor()
    resumed = list(dataset.blocks(0, cursor))
    assert [b.tolist() for b, _ in resumed] == [b.tolist() for b, _ in full[cut:]]
    assert [c for _, c in resumed] == [c for _, c in full[cut:]]


class FilesSource:
    """In-memory multi-file source (file f = list of texts) for sharding tests."""

    def __init__(self, files: list[list[str]]):
        self.files = files

    def num_files(self) -> int:
        return len(self.files)

    def rows(self, file, start, stride, offset):
        rows = [r for r in range(start, len(self.files[file])) if self.files[file][r] and r % stride == offset]
        if rows:
            yield np.asarray(rows), [self.files[file][r] for r in rows]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 7), min_size=1, max_size=7), st.integers(1, 6), st.integers(0, 2), st.booleans())
def test_shards_partition_the_documents(rows_per_file, n_shards, epoch, shuffle):
    files = [[f"{f * 100 + r}" for r in range(n)] for f, n in enumerate(rows_per_file)]
    source = FilesSource(files)
    seen = []
    for shard in range(n_shards):
        plan = epoch_plan(source.num_files(), epoch, shard, n_shards, seed=5, shuffle=shuffle)
        seen += [int(tokens[0]) for _, _, _, tokens in shard_segments(source, fake_encode, plan, Cursor(epoch))]
    assert sorted(seen) == sorted(int(t) for f in files for t in f)  # every document exactly once


def test_dataset_shards_by_rank_and_worker():
    docs = numbered_docs([5] * 40)
    blocks = {}
    for rank in range(2):
        ds = PackedDataset(TextSource(docs), lambda: fake_encode, 5, rank=rank, world_size=2, num_workers=2, epochs=1)
        for worker in range(2):
            shard = ds.shard_of_worker(worker)
            blocks[shard] = [b for b, _ in ds.blocks(shard)]
    assert sorted(blocks) == [0, 1, 2, 3]
    tokens = np.concatenate([b for bs in blocks.values() for b in bs])
    assert len(set(tokens[tokens != EOS].tolist())) == len(tokens[tokens != EOS])  # no token on two shards


def test_too_small_shard_is_an_error_not_a_hang():
    ds = PackedDataset(TextSource(["1 2 3"]), lambda: fake_encode, 16)
    with pytest.raises(DataError, match="no complete block"):
        next(iter(ds.blocks(0)))


def test_eval_blocks_score_every_token():
    docs = numbered_docs([7, 3, 9])
    blocks = eval_blocks(docs, fake_encode, 5)
    np.testing.assert_array_equal(np.concatenate(blocks), stream_of(docs))
    assert all(len(b) == 6 for b in blocks[:-1]) and 2 <= len(blocks[-1]) <= 6


# -------------------------------------------------------------------------------------------- Delta


def refined_rows(texts, kept=None, **extra):
    n = len(texts)
    return pa.table(
        {
            "run_id": ["r1"] * n,
            "shard": [f"s{i % 2}" for i in range(n)],
            "doc_id": [f"d{i}" for i in range(n)],
            "text": texts,
            "kept": kept if kept is not None else [True] * n,
            "drop_reason": [None] * n,
            "words_before": [len((t or "").split()) for t in texts],
            **extra,
        }
    )


def read_all(snapshot) -> list[str]:
    source = DeltaSource(snapshot, read_batch_rows=3)
    return [t for f in range(source.num_files()) for _, texts in source.rows(f, 0, 1, 0) for t in texts]


def test_pinned_version_after_the_table_moved_on(tmp_path):
    path = str(tmp_path / "refined")
    write_deltalake(path, refined_rows(["v0 a", "v0 b", "v0 c"]), partition_by=["shard"])
    write_deltalake(path, refined_rows(["v1 d"]), mode="append")
    write_deltalake(path, refined_rows(["v2 e", "v2 f"]), mode="overwrite")
    v0 = open_table(path, 0)
    assert v0.version == 0 and sorted(read_all(v0)) == ["v0 a", "v0 b", "v0 c"]
    assert sorted(read_all(open_table(path, 1))) == ["v0 a", "v0 b", "v0 c", "v1 d"]
    latest = open_table(path)  # "latest" is resolved once ...
    assert latest.version == 2
    write_deltalake(path, refined_rows(["v3 g"]), mode="append")
    assert sorted(read_all(latest)) == ["v2 e", "v2 f"]  # ... and stays pinned while the table moves on
    assert open_table(path, -1).version == 3
    assert [f.uri for f in latest.files] == sorted(f.uri for f in latest.files)


def test_dropped_rows_are_filtered(tmp_path):
    path = str(tmp_path / "refined")
    texts = ["keep one", "", "dropped", None, "keep two", "null kept", "keep three"]
    kept = [True, True, False, True, True, None, True]
    write_deltalake(path, refined_rows(texts, kept))
    assert read_all(open_table(path)) == ["keep one", "keep two", "keep three"]


def test_reader_reads_only_text_and_kept_and_resumes_mid_file(tmp_path):
    path = str(tmp_path / "refined")
    texts = [f"doc {i}" for i in range(20)]
    write_deltalake(path, refined_rows(texts, [i % 3 != 0 for i in range(20)]))
    source = DeltaSource(open_table(path), read_batch_rows=4)
    rows = [r for batch, _ in source.rows(0, 7, 1, 0) for r in batch.tolist()]
    assert rows == [r for r in range(7, 20) if r % 3 != 0]


def test_missing_table_and_bad_versions_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no Delta table"):
        open_table(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="data.table is empty"):
        open_table("")
    path = str(tmp_path / "refined")
    write_deltalake(path, refined_rows(["a"]))
    write_deltalake(path, refined_rows(["b"]), mode="append")
    with pytest.raises(DataError, match=r"version 7 does not exist \(latest is 1\)"):
        open_table(path, 7)
    with pytest.raises(DataError, match="version must be >= 0"):
        open_table(path, -3)
    with pytest.raises(DataError, match="no column 'body'"):
        open_table(path, text_column="body")
    by_kept = str(tmp_path / "by_kept")
    write_deltalake(by_kept, refined_rows(["a", "b"]), partition_by=["kept"])
    with pytest.raises(DataError, match="partition column"):
        open_table(by_kept)


# ------------------------------------------------------------------------------------------ training


@pytest.fixture(scope="module")
def tokenizer_file(tmp_path_factory):
    from prox_spark.models import save_tokenizer, train_tokenizer

    texts = [json.loads(line)["text"] for line in (REPO / "prox_spark/resources/sample_corpus.jsonl").open()]
    return str(save_tokenizer(train_tokenizer(texts, 400), tmp_path_factory.mktemp("tok")))


def test_encoder_strips_bos_and_appends_eos(tokenizer_file):
    """prox-reference.md §5.7: documents are tokenized with BOS stripped and EOS appended."""
    from prox_spark.models import BOS, EOS as EOS_TOKEN, load_tokenizer

    tokenizer = load_tokenizer(tokenizer_file)
    bos, eos = tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS_TOKEN)
    assert tokenizer.encode("Hello world").ids[0] == bos  # the tokenizer's own default adds BOS ...
    ids = make_encoder(tokenizer.to_str(), eos)(["Hello world", "é ✓"])
    for text, tokens in zip(["Hello world", "é ✓"], ids):
        assert tokens.tolist() == tokenizer.encode(text, add_special_tokens=False).ids + [eos]  # ... the job does not
        assert bos not in tokens.tolist()


def tiny_conf(tmp_path, table, tokenizer, *overrides):
    from prox_spark.pretrain.settings import PretrainConfig

    base = [
        f"out_dir={tmp_path / 'out'}",
        f"data.table={table}",
        f"data.tokenizer={tokenizer}",
        "data.run_id=r1",
        "data.block_size=32",
        "train.batch_size=2",
        "train.device=cpu",
        "train.threads=1",
        "train.log_interval=1",
        "optim.warmup_steps=2",
        "checkpoint.interval=0",
        "save_model=false",
    ]
    return load_config(None, [*base, *overrides], cls=PretrainConfig)


def test_resume_continues_identically(tmp_path, tokenizer_file):
    """6 steps straight == 3 steps, stop, resume for 3: same losses and weights (2 workers, shuffle, epochs)."""
    from prox_spark.pretrain.train import train

    table = str(tmp_path / "refined")
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    texts = [" ".join(words[(i + j) % 10] for j in range(8 + i % 7)) for i in range(6)]
    write_deltalake(table, refined_rows(texts))
    common = ["data.num_workers=2", "data.shuffle_buffer=3", "train.max_steps=6", "data.seed=7"]
    straight = train(tiny_conf(tmp_path / "a", table, tokenizer_file, *common))
    first = train(tiny_conf(tmp_path / "b", table, tokenizer_file, *common, "train.stop_at=3"))
    assert first.metrics["steps"] == 3 and not first.metrics["finished"]
    state = torch.load(tmp_path / "b/out/checkpoints/step-00000003.pt", weights_only=True)
    assert state["data"]["table_version"] == 0 and state["data"]["micro_batches"] == 3
    resumed = train(tiny_conf(tmp_path / "b", table, tokenizer_file, *common))
    final = torch.load(tmp_path / "b/out/checkpoints/step-00000006.pt", weights_only=True)
    assert all(c[0] >= 1 for c in final["data"]["cursors"].values())  # the resumed part crossed an epoch end
    losses = lambda r: [p["loss"] for p in r.metrics["loss_curve"]]  # noqa: E731
    assert losses(resumed) == losses(straight) and len(losses(straight)) == 6
    for (name, p), q in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(p, q), name
    assert resumed.metrics["tokens_seen"] == straight.metrics["tokens_seen"] == 6 * 2 * 32
    # the data position only carries over unchanged
    with pytest.raises(ConfigError, match="num_workers was 2, now 1"):
        train(tiny_conf(tmp_path / "b", table, tokenizer_file, *common, "data.num_workers=1", "train.max_steps=6"))


def test_resume_keeps_the_checkpoint_table_version(tmp_path, tokenizer_file):
    from prox_spark.pretrain.train import train

    table = str(tmp_path / "refined")
    write_deltalake(table, refined_rows([f"first version text number {i} " * 3 for i in range(12)]))
    train(tiny_conf(tmp_path, table, tokenizer_file, "train.max_steps=4", "train.stop_at=2"))
    write_deltalake(table, refined_rows(["completely different " * 5] * 12), mode="overwrite")
    result = train(tiny_conf(tmp_path, table, tokenizer_file, "train.max_steps=4"))
    assert result.metrics["table_version"] == 0  # latest is 1 now, the run stays on its pinned version
    with pytest.raises(ConfigError, match="differs from the checkpoint's table version"):
        train(tiny_conf(tmp_path, table, tokenizer_file, "train.max_steps=4", "data.version=1"))


def test_job_errors_name_the_problem(tmp_path, tokenizer_file, capsys):
    from prox_spark.jobs.pretrain import main

    conf = tmp_path / "c.yaml"
    conf.write_text(f"data: {{table: {tmp_path / 'missing'}, tokenizer: {tokenizer_file}}}\n")
    assert main(["--conf", str(conf), f"out_dir={tmp_path}", "train.device=cpu"]) == 2
    assert "no Delta table" in capsys.readouterr().err
    assert main(["--conf", str(conf), "train.max_step=3"]) == 2
    assert "train.max_step: unknown key" in capsys.readouterr().err


@pytest.mark.slow
def test_tiny_run_lowers_the_loss(tmp_path, tokenizer_file, capsys, caplog):
    """The local YAML, through the CLI, on a repetitive corpus: loss and held-out ppl go down."""
    from prox_spark.jobs.pretrain import main

    caplog.set_level("INFO", logger="prox_spark.pretrain")
    table = str(tmp_path / "refined")
    sentence = "the cat sat on the mat and the dog sat on the log. "
    texts = [sentence * (3 + i % 4) for i in range(40)]
    write_deltalake(table, refined_rows(texts + ["dropped " * 20], [True] * 40 + [False]))
    (tmp_path / "heldout.jsonl").write_text(json.dumps({"text": sentence * 4}) + "\n")
    code = main(
        [
            "--conf", str(REPO / "conf/pretrain_local.yaml"),
            f"out_dir={tmp_path / 'out'}", f"data.table={table}", f"data.tokenizer={tokenizer_file}", "data.run_id=r1",
            "data.block_size=64", "train.max_steps=40", "optim.lr=0.01", "optim.min_lr=0.001",
            f"eval.path={tmp_path / 'heldout.jsonl'}", "eval.interval=10", "checkpoint.interval=20",
        ]
    )
    assert code == 0, capsys.readouterr()
    metrics = json.loads((tmp_path / "out/metrics.json").read_text())
    curve = [p["loss"] for p in metrics["loss_curve"]]
    assert len(curve) == 40 and np.mean(curve[-5:]) < 0.5 * np.mean(curve[:5])
    assert metrics["eval"][-1]["ppl"] < 0.2 * metrics["eval"][0]["ppl"] and metrics["final_eval_ppl"] < 10
    assert metrics["table_version"] == 0 and metrics["table"].rstrip("/").endswith("refined")
    assert metrics["tokens_seen"] == 40 * 4 * 64
    assert (tmp_path / "out/model/config.json").is_file() and (tmp_path / "out/model/tokenizer.json").is_file()
    assert "step 10/40" in caplog.text and "eval step 40" in caplog.text
    assert "40 steps" in capsys.readouterr().out


@pytest.mark.slow
def test_ddp_two_ranks_on_cpu(tmp_path, tokenizer_file):
    """torchrun-style DDP (gloo): both ranks train, the loss curve is the mean across ranks."""
    table = str(tmp_path / "refined")
    write_deltalake(table, refined_rows([f"document {i} " + "word " * (10 + i) for i in range(30)]))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "jobs.pretrain",
        "--conf", str(REPO / "conf/pretrain_local.yaml"), f"out_dir={tmp_path / 'out'}", f"data.table={table}",
        f"data.tokenizer={tokenizer_file}", "data.run_id=r1", "data.block_size=32", "train.max_steps=3", "eval.path=", "checkpoint.interval=2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    launcher = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
    try:
        stdout, stderr = launcher.communicate(timeout=300)
    finally:  # the ranks are the launcher's children: never leave them running
        if launcher.poll() is None:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
    assert launcher.returncode == 0, stdout[-3000:] + stderr[-3000:]
    metrics = json.loads((tmp_path / "out/metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps"] == 3 and metrics["tokens_seen"] == 3 * 4 * 2 * 32
    state = torch.load(tmp_path / "out/checkpoints/step-00000003.pt", weights_only=True)
    assert sorted(state["data"]["cursors"]) == [0, 1]  # both ranks' data positions are in the checkpoint


@pytest.mark.spark
@pytest.mark.slow
def test_spark_written_table_with_deletion_vectors_and_column_mapping(spark, tmp_path):
    """The refine job's real writer: Spark + Delta, partitioned, deletion vectors, column mapping by name."""
    path = str(tmp_path / "refined")
    shards = ["gs://bucket/crawl 1/part:0.jsonl.gz", "plain%25"]  # Spark escapes these in partition folder names
    rows = [("r1", shards[i % 2], f"d{i}", f"text {i}" if i != 5 else "", i % 4 != 0) for i in range(12)]
    df = spark.createDataFrame(rows, "run_id string, shard string, doc_id string, text string, kept boolean")
    df.coalesce(1).createOrReplaceTempView("pretrain_test_rows")
    spark.sql(
        f"CREATE TABLE delta.`{path}` USING delta PARTITIONED BY (shard) "
        "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true', 'delta.columnMapping.mode' = 'name') "
        "AS SELECT * FROM pretrain_test_rows"
    )
    spark.sql(f"DELETE FROM delta.`{path}` WHERE doc_id IN ('d2', 'd3')")
    expected_v0 = sorted(f"text {i}" for i in range(12) if i % 4 != 0 and i != 5)
    latest = open_table(path)
    assert latest.version == 1 and any(f.keep is not None for f in latest.files)
    assert latest.text_column != "text"  # physical name under column mapping
    assert sorted(read_all(latest)) == [t for t in expected_v0 if t not in ("text 2", "text 3")]
    assert sorted(read_all(open_table(path, 0))) == expected_v0
