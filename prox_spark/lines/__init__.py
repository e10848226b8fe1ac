"""The line refiner: a page-level model that reads every line of a document at once and decides, line by
line, what to keep; its decisions are rendered into the same ProX chunk programs the executor applies.

Only numpy and onnxruntime are needed at run time (no tokenizer, no torch): line features are computed
here (``features``), the graph scores them (``refiner``), ``render`` turns scores into decisions and
writes ``remove_lines`` ops, and ``cuts`` removes what only the whole page shows (``comments``: the
reader-comment section; ``fragments``: teasers and captions far smaller than the main text).
"""

from prox_spark.lines.cuts import NO_CUTS, PageCuts
from prox_spark.lines.features import FEATURE_VERSION, N_DENSE, PageFeatures, page_features
from prox_spark.lines.render import line_decisions, removed_ranges, render_program

__all__ = [
    "FEATURE_VERSION", "NO_CUTS", "N_DENSE", "PageCuts", "PageFeatures", "line_decisions", "page_features",
    "removed_ranges", "render_program",
]
