"""The model stages' programs (``DocProgram``, ``ChunkProgram``), the generative model's writers of them
(documents → doc programs, documents → per-chunk programs: the ``generative`` kind's,
``prox_spark.pipeline.model_kinds.generative``), and the doc stage's main-text guard.

Both writers batch by prompt length (``map_in_length_buckets``): sorting a batch's prompts by length cuts
padding, which is where a prefill-bound stage spends its time. The chunk stage packs all chunks of all
documents in the call into shared batches and regroups them by document in chunk order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Literal, Sequence

from prox_spark.chunking import DEFAULT_MAX_TOKENS, Chunk, chunk_document
from prox_spark.inference import map_in_length_buckets
from prox_spark.lines.cuts import NO_CUTS, PageCuts
from prox_spark.lines.refiner import LineRefiner
from prox_spark.pipeline.guard import clip_to_chunk
from prox_spark.pipeline.generative_model import StageModel

DocMode = Literal["score", "generate"]
DOC_CHOICES = ("keep_doc()", "drop_doc()")
#: tokens the compact/llama2 chunk frame needs around the numbered lines
_FRAME_ALLOWANCE = 64


@dataclass(frozen=True)
class DocProgram:
    program: str
    prompt_tokens: int
    latency_ms: float
    #: the model hit max_new_tokens before EOS (generate mode)
    truncated: bool = False
    #: the model's program when the main-text guard rewrote it (``spare_main_text_pages``), else None
    model_program: str | None = None


@dataclass(frozen=True)
class ChunkProgram:
    chunk_index: int
    first_line: int
    last_line: int
    program: str
    prompt_tokens: int
    latency_ms: float
    #: a single line over the token budget: not sent to the model (the reference's vLLM ignores such prompts)
    oversize: bool = False
    truncated: bool = False
    #: first line of this chunk's program within the document's merged program (see ``merge_programs``)
    program_line_offset: int = 0
    program_lines: int = 1
    #: ``remove_lines`` ops the chunk-range guard narrowed or dropped (``clip=True``; see ``guard``)
    clipped_ops: int = 0
    #: the model's output when a guard rewrote it (``program`` is then what ran: the clipped text, or the
    #: line refiner's program without the page's comment section), else None
    model_program: str | None = None


def merge_programs(chunks: Sequence[ChunkProgram]) -> str:
    """The document's program: chunk programs joined with ``"\\n"`` in chunk order (the reference's merge)."""
    return "\n".join(chunk.program for chunk in chunks)


def write_doc_programs(
    model: StageModel,
    texts: Sequence[str],
    *,
    mode: DocMode = "score",
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    max_batch_tokens: int | None = None,
) -> list[DocProgram]:
    """One doc program per text. Blank texts get an empty program without a model call.

    ``score`` compares ``keep_doc()`` and ``drop_doc()`` in one forward pass and keeps when the logit
    margin keep - drop reaches the manifest's ``doc_keep_threshold`` (calibrated on validation data when
    the model was trained; 0.0 = the argmax); ``generate`` decodes greedily (up to the manifest's
    ``max_new_tokens``) and ignores the threshold. Both give the program text the executor reads.
    """
    results: list[DocProgram | None] = [None] * len(texts)
    work = [(i, model.encode_prompt("doc", text)) for i, text in enumerate(texts) if text and text.strip()]
    for i, text in enumerate(texts):
        if not (text and text.strip()):
            results[i] = DocProgram("", 0, 0.0)
    choices = {choice: model.encode_continuation(choice) for choice in DOC_CHOICES}
    limit = max_new_tokens or model.manifest.max_new_tokens

    def run(batch: list[tuple[int, list[int]]]) -> list[DocProgram]:
        started = time.perf_counter()
        prompts = [ids for _, ids in batch]
        if mode == "score":
            threshold = model.manifest.doc_keep_threshold
            programs = [(DOC_CHOICES[0] if m >= threshold else DOC_CHOICES[1], False) for m in _margins(model, prompts, choices)]
        else:
            programs = [
                (model.decode(g.tokens).strip(" "), not g.stopped_at_eos)
                for g in model.decoder.generate(prompts, limit)
            ]
        each = (time.perf_counter() - started) * 1000 / len(batch)
        return [DocProgram(p, len(ids), each, cut) for (p, cut), ids in zip(programs, prompts)]

    if mode not in ("score", "generate"):
        raise ValueError(f"doc mode must be 'score' or 'generate', got {mode!r}")
    # a batch's memory grows with rows x (prompt + generated tokens): that is what max_batch_tokens caps
    extra = limit if mode == "generate" else 0
    batches = map_in_length_buckets(
        work, batch_size, run, key=lambda item: len(item[1]) + extra, max_batch_tokens=max_batch_tokens
    )
    for (i, _), result in zip(work, batches):
        results[i] = result
    return results  # type: ignore[return-value]


def spare_main_text_pages(
    programs: Sequence[DocProgram], texts: Sequence[str], refiner: LineRefiner, min_words: int, *,
    cuts: PageCuts = NO_CUTS,
) -> list[DocProgram]:
    """The doc programs with ``drop_doc()`` turned into ``keep_doc()`` where the line refiner keeps at least
    ``min_words`` words of the page (0: no guard). The rewritten program keeps the model's in ``model_program``.

    A doc model reads only the page's first tokens, which on a whole web page are often menus and
    headers, so it drops real articles for their boilerplate; the line refiner reads every line and finds
    the article's text. A page it finds none on is still the doc model's to drop. Only pages the doc
    model drops are scored, so the guard costs nothing on the pages it keeps. ``cuts`` count the words
    the chunk stage will keep (after its page cuts), as the line refiner's chunk programs do
    (``model_kinds.lines.write_line_programs``).
    """
    if min_words <= 0:
        return list(programs)
    dropped = [i for i, p in enumerate(programs) if p.program.strip() == DOC_CHOICES[1] and texts[i].strip()]
    spared = list(programs)
    for i, scores in zip(dropped, refiner.keep_scores([texts[i] for i in dropped])):
        keep = refiner.decisions(texts[i], scores.tolist(), cuts=cuts)
        if sum(len(line.split()) for line, kept in zip(texts[i].split("\n"), keep) if kept) >= min_words:
            spared[i] = replace(programs[i], program=DOC_CHOICES[0], model_program=programs[i].program)
    return spared


def doc_keep_margins(model: StageModel, texts: Sequence[str], *, batch_size: int = 16) -> list[float]:
    """Per text, logit(keep_doc) - logit(drop_doc) at the deciding token: what score mode thresholds
    (for calibrating and evaluating that threshold)."""
    choices = {choice: model.encode_continuation(choice) for choice in DOC_CHOICES}
    prompts = [model.encode_prompt("doc", text) for text in texts]
    return map_in_length_buckets(prompts, batch_size, lambda batch: _margins(model, batch, choices), key=len)


def _margins(model: StageModel, prompts: list[list[int]], choices: dict[str, list[int]]) -> list[float]:
    logits = model.decoder.choice_logits(prompts, choices)
    return (logits[:, 0] - logits[:, 1]).tolist()


def chunk_budget(model: StageModel, max_chunk_tokens: int) -> int:
    """Chunk size in tokens: the configured size, capped so a chunk plus its frame fits the model's prompt."""
    return max(1, min(max_chunk_tokens, model.manifest.max_prompt_tokens - _FRAME_ALLOWANCE))


def write_chunk_programs(
    model: StageModel,
    texts: Sequence[str],
    *,
    max_chunk_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    clip: bool = False,
    max_batch_tokens: int | None = None,
) -> list[list[ChunkProgram]]:
    """Per text, the programs of its line-numbered chunks in chunk order (empty list for blank text), from a
    generative model (a line refiner reads whole pages instead: ``model_kinds.lines.write_line_programs``).

    ``clip`` applies the chunk-range guard (``prox_spark.pipeline.guard``): each program's removals are
    limited to its own chunk's lines before the document's programs are merged (not the reference).
    """
    budget = chunk_budget(model, max_chunk_tokens)
    limit = max_new_tokens or model.manifest.max_new_tokens
    per_doc: list[list[Chunk]] = [chunk_document(t, model.count_tokens, budget) if t else [] for t in texts]
    work = [
        (d, chunk, model.encode_prompt("chunk", chunk.text))
        for d, chunks in enumerate(per_doc)
        for chunk in chunks
        if not chunk.oversize
    ]

    def run(batch: list[tuple[int, Chunk, list[int]]]) -> list[tuple[str, bool, float]]:
        started = time.perf_counter()
        generations = model.decoder.generate([ids for _, _, ids in batch], limit)
        each = (time.perf_counter() - started) * 1000 / len(batch)
        return [(model.decode(g.tokens).strip(" "), not g.stopped_at_eos, each) for g in generations]

    done = map_in_length_buckets(
        work, batch_size, run, key=lambda item: len(item[2]) + limit, max_batch_tokens=max_batch_tokens
    )
    by_chunk = {(d, chunk.chunk_index): (ids, out) for (d, chunk, ids), out in zip(work, done)}
    results: list[list[ChunkProgram]] = []
    for d, chunks in enumerate(per_doc):
        programs, offset = [], 0
        for chunk in chunks:
            ids, (program, truncated, latency) = by_chunk.get((d, chunk.chunk_index), ([], ("", False, 0.0)))
            clipped_ops, model_program = 0, None
            if clip:
                guarded = clip_to_chunk(program, chunk.first_line, chunk.last_line)
                if guarded.clipped_ops:
                    clipped_ops, model_program, program = guarded.clipped_ops, program, guarded.program
            n_lines = program.count("\n") + 1
            programs.append(
                ChunkProgram(
                    chunk.chunk_index, chunk.first_line, chunk.last_line, program, len(ids), latency,
                    chunk.oversize, truncated, offset, n_lines, clipped_ops, model_program,
                )
            )
            offset += n_lines
        results.append(programs)
    return results

