"""The lines kind: the line refiner (``prox_spark.lines``) scores every line of a page, and its decisions are
rendered as the chunk stage's ``remove_lines`` programs, one per page (``write_line_programs``).

It writes chunk programs only and has no decoder: the chunk and token settings do not apply to it; the page cuts
(``models.drop_comment_sections``, ``models.drop_doubled_lines``, ``models.drop_stray_fragments``) do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from prox_spark.lines import removed_ranges, render_program
from prox_spark.lines.cuts import NO_CUTS, PageCuts
from prox_spark.lines.manifest import LINE_MANIFEST_NAME
from prox_spark.lines.refiner import LineRefiner, verify_line_model_dir
from prox_spark.pipeline.model_kinds.base import BundledModel, ModelKind, Serving
from prox_spark.pipeline.model_stages import ChunkProgram

if TYPE_CHECKING:
    from prox_spark.pipeline.settings import RefineSettings


def write_line_programs(
    model: LineRefiner, texts: Sequence[str], *, cuts: PageCuts = NO_CUTS
) -> list[list[ChunkProgram]]:
    """Per text, one program for the whole page from the line refiner (empty list for blank text).

    The page is one "chunk" (lines 0..n-1) so the programs table, the executor and the audits read it
    like any chunk program; ``prompt_tokens`` holds the number of lines the model scored. ``cuts`` also
    remove what only the whole page shows (``prox_spark.lines.cuts``: the comment section, stray
    fragments); where that changes the program, ``model_program`` keeps the model's own, so the audits can
    tell the two apart.
    """
    work = [i for i, text in enumerate(texts) if text and text.strip()]
    started = time.perf_counter()
    scores = model.keep_scores([texts[i] for i in work])
    each = (time.perf_counter() - started) * 1000 / max(1, len(work))
    results: list[list[ChunkProgram]] = [[] for _ in texts]
    for i, page_scores in zip(work, scores):
        keep = model.decisions(texts[i], page_scores.tolist())
        model_program = program = render_program(removed_ranges(keep))
        cut = cuts.apply(texts[i].split("\n"), keep)
        if cut != keep:
            program = render_program(removed_ranges(cut))
        lines = texts[i].count("\n") + 1
        results[i] = [
            ChunkProgram(
                0, 0, lines - 1, program, lines, each, program_lines=program.count("\n") + 1,
                model_program=model_program if program != model_program else None,
            )
        ]
    return results


def chunk_programs(model: LineRefiner, texts: list[str], settings: RefineSettings) -> list[list[ChunkProgram]]:
    """The chunk stage's programs: one per page, after the page cuts ``settings`` ask for."""
    return write_line_programs(model, texts, cuts=settings.page_cuts)


class LinesKind(ModelKind):
    name = "lines"
    label = "a line refiner"
    manifest_name = LINE_MANIFEST_NAME
    model_type = LineRefiner
    writers = {"chunk": chunk_programs}
    bundled = {"chunk": BundledModel("lines")}

    def load(self, model_dir: str | Path, serving: Serving) -> LineRefiner:
        """The line refiner has no decoder: ``serving.prefill_tokens`` does not apply."""
        return LineRefiner.load(
            model_dir, provider=serving.provider, intra_op_threads=serving.intra_op_threads,
            concurrent_tasks=serving.concurrent_tasks, device_id=serving.device_id,
        )

    def check(self, model_dir: str | Path) -> tuple[str, str, str]:
        manifest = verify_line_model_dir(model_dir)
        return manifest.stage, manifest.model_id, manifest.checksum
