"""Page cuts: what the line refiner removes beyond its per-line decisions, read from the whole page.

The refiner scores each line against its neighbours; three things human article gold leaves out are only
visible beyond one line: the readers' comment section under the article (``prox_spark.lines.comments``),
text a template prints twice in a row, such as a gallery's captions (``prox_spark.lines.doubled``), and stray
fragments of other articles around it, teasers and captions (``prox_spark.lines.fragments``). The cuts only
remove lines, after the per-line decisions, in this order (the fragment cut last, so a run that loses its
doubled lines is judged by what is left); ``NO_CUTS`` is the refiner's decisions as they are (the reference
behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from prox_spark.lines.comments import without_comment_section
from prox_spark.lines.doubled import without_doubled_lines
from prox_spark.lines.fragments import without_stray_fragments


@dataclass(frozen=True)
class PageCuts:
    #: remove the page's reader-comment section (``models.drop_comment_sections``)
    comment_sections: bool = True
    #: remove kept lines repeated right below themselves (``models.drop_doubled_lines``)
    doubled_lines: bool = True
    #: remove stray fragments far smaller than the page's main text (``models.drop_stray_fragments``)
    stray_fragments: bool = True

    def apply(self, lines: Sequence[str], keep: Sequence[bool]) -> list[bool]:
        """``keep`` after the cuts that are on."""
        if self.comment_sections:
            keep = without_comment_section(lines, keep)
        if self.doubled_lines:
            keep = without_doubled_lines(lines, keep)
        if self.stray_fragments:
            keep = without_stray_fragments(lines, keep)
        return list(keep)


NO_CUTS = PageCuts(comment_sections=False, doubled_lines=False, stray_fragments=False)
