"""Byte-level BPE tokenizer for the project's own refining models: train, save, load, wrap for transformers.

Why these choices:

- **Byte-level**: any document (any script, emoji, stray ``\\r`` or control characters) encodes and
  decodes byte-exactly with no ``<unk>``, so a ``normalize(source_str="...")`` string the model copies
  from its input is the exact string the executor will search for.
- **Single digits** (as the Llama-2 tokenizer of the released refiners does): line numbers cost the
  same few tokens at every magnitude and a model copies ``[123]`` into ``line_start=123`` digit by
  digit instead of memorising 1000 number tokens.
- **Program pieces and prompt markers as added tokens** (``ADDED_TOKENS``): the byte-level
  pre-tokenizer splits at ``_``, ``(``, ``=`` and ``<``, and BPE never merges across those splits, so
  no amount of program text in the training data could make ``remove_lines(line_start=`` shorter
  than 8 tokens. As added tokens each fixed piece of the ProX grammar is one token: a doc-stage
  decision is one token (``keep_doc()`` / ``drop_doc()``), a chunk program is mostly digits and
  copied text, and the ``compact`` prompt frame (``prox_spark.prompts``) costs five tokens. They are
  matched anywhere in the input, so a web page that contains ``keep_doc()`` gets that token too; it
  still decodes to the same bytes.
- **BOS on encode** (a ``<s> $A`` post-processor, as Llama's tokenizer does): ``encode(text)`` with the
  default ``add_special_tokens=True`` adds one BOS, so token budgets counted the reference's way
  (prox-reference.md §2.2) mean the same thing with this tokenizer as with the released models'.

Special tokens have fixed ids: ``<s>`` 0, ``</s>`` 1, ``<pad>`` 2, ``<unk>`` 3. Training is
deterministic: the same texts give the same ``tokenizer.json`` byte for byte (BPE counts are
order-independent; ``seed`` only picks the document sample in ``training_texts``).
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from prox_spark.prompts import COMPACT_MARKERS

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
SPECIAL_TOKENS = (BOS, EOS, PAD, UNK)
TOKENIZER_FILE = "tokenizer.json"

#: fixed pieces of the ProX program grammar (prox-reference.md §1.1), each made a single token
PROGRAM_TOKENS = (
    "keep_doc()",
    "drop_doc()",
    "keep_chunk()",
    "remove_lines(line_start=",
    ", line_end=",
    'normalize(source_str="',
    '", target_str="',
    '", target_str="")',
)
ADDED_TOKENS = PROGRAM_TOKENS + COMPACT_MARKERS

#: where the shared seed texts live under ``data_dir`` and which field holds the text
SHARED_TEXT_FILES = (
    ("cleaning/trafilatura_eval_segments.jsonl.gz", "noisy_text"),
    ("quality/dclm_human_labels.jsonl", "text"),
)


def train_tokenizer(texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts``; ``vocab_size`` includes special and added tokens.

    The vocabulary can come out smaller than ``vocab_size`` when the texts have too few distinct
    pairs; size models by ``tokenizer.get_vocab_size()``.
    """
    reserved = len(SPECIAL_TOKENS) + len(ADDED_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size <= reserved:
        raise ValueError(f"vocab_size must exceed {reserved} (256 bytes + special and added tokens), got {vocab_size}")
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(ADDED_TOKENS),
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.add_tokens([AddedToken(token, normalized=False) for token in ADDED_TOKENS])
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))]
    )
    return tokenizer


def save_tokenizer(tokenizer: Tokenizer, directory: str | Path) -> Path:
    """Write ``tokenizer.json`` into ``directory`` (created if needed) and return its path."""
    path = Path(directory) / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a ``tokenizer.json``; ``path`` may be the file or the directory holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / TOKENIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tokenizer file not found")
    return Tokenizer.from_file(str(path))


def to_transformers(
    tokenizer: Tokenizer, *, padding_side: Literal["left", "right"] = "left", model_max_length: int = 2048
) -> PreTrainedTokenizerFast:
    """Wrap for transformers (training, ``generate``); left padding by default, as batched generation needs.

    ``clean_up_tokenization_spaces`` is off: it would rewrite ``" ."`` to ``"."`` on decode and break
    the byte-exact round trip that ``normalize`` strings rely on. No ``token_type_ids``: LLaMA takes
    none, and ``generate`` rejects them.
    """
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side=padding_side,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],
    )


def shared_texts(data_dir: str | Path) -> Iterator[str]:
    """The shared real web texts (``SHARED_TEXT_FILES``) in file order; read in place, never copied."""
    for relative, field in SHARED_TEXT_FILES:
        path = Path(data_dir) / relative
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as handle:
            for line in handle:
                text = json.loads(line).get(field)
                if isinstance(text, str) and text:
                    yield text


def training_texts(data_dir: str | Path, *, max_docs: int | None = None, seed: int = 0) -> Iterator[str]:
    """Tokenizer training text: the shared web documents, or a seeded sample of ``max_docs`` of them.

    No program text is mixed in: program pieces and prompt markers become single added tokens after
    training (``ADDED_TOKENS``), which no amount of program text could achieve through merges.
    """
    docs = list(shared_texts(data_dir))
    if max_docs is not None and max_docs < len(docs):
        docs = random.Random(seed).sample(docs, max_docs)
    yield from docs
