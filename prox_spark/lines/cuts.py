"""Page cuts: what the line refiner removes beyond its per-line decisions, read from the whole page.

The refiner scores each line against its neighbours; two things human article gold leaves out are only
visible at the scale of the page: the readers' comment section under the article
(``prox_spark.lines.comments``) and stray fragments of other articles around it, teasers and captions
(``prox_spark.lines.fragments``). Both cuts only remove lines, after the per-line decisions, in this
order; ``NO_CUTS`` is the refiner's decisions as they are (the reference behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from prox_spark.lines.comments import without_comment_section
from prox_spark.lines.fragments import without_stray_fragments


@dataclass(frozen=True)
class PageCuts:
    #: remove the page's reader-comment section (``models.drop_comment_sections``)
    comment_sections: bool = True
    #: remove stray fragments far smaller than the page's main text (``models.drop_stray_fragments``)
    stray_fragments: bool = True

    def apply(self, lines: Sequence[str], keep: Sequence[bool]) -> list[bool]:
        """``keep`` after the cuts that are on."""
        if self.comment_sections:
            keep = without_comment_section(lines, keep)
        if self.stray_fragments:
            keep = without_stray_fragments(lines, keep)
        return list(keep)


NO_CUTS = PageCuts(comment_sections=False, stray_fragments=False)
