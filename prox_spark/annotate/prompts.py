"""Seed-annotation prompts for the annotator LLM (prox-reference.md §3), written for this project.

The paper describes the prompts; their wording here is our own. Only the short answer formats are
fixed, because the validators look for them: ``Educational score: <total points>`` and
``Extraction Quality Score: <total points>``.

Doc stage: two zero-shot additive 0-5 scorings of the raw document, each answered with a short
critique (at most 100 words) and the score line:

- ``edu``: how useful the page is for teaching, primary to grade school (FineWeb-Edu style criteria);
- ``format``: how cleanly the text was extracted from its web page (ProX's extra score).

Chunk stage: three few-shot prompts, one per kind of noise (``nav`` bars, ``url`` links, ``footer``
lines), shown text with ``[NNN]`` line numbers exactly as ``prox_spark.chunking.numbered_lines``
renders them (global numbers, no space after ``]``). They expose ``untouch_doc()``,
``remove_lines(start, end)`` (both ends inclusive) and ``normalize(source_str, target_str="")``, and
ask for a brief analysis followed by one ```python``` block.

Every prompt is a single user message. The prompt text is part of the cache key of
``prox_spark.annotate.client``, so editing a prompt makes the next run ask again.
"""

from __future__ import annotations

from typing import Literal

ScoreKind = Literal["edu", "format"]
ChunkKind = Literal["nav", "url", "footer"]

SCORE_KINDS: tuple[ScoreKind, ...] = ("edu", "format")
#: the order the three chunk prompts are asked and merged in
CHUNK_KINDS: tuple[ChunkKind, ...] = ("nav", "url", "footer")

#: the label that starts each doc-stage score line (the validators match it)
SCORE_LABELS: dict[ScoreKind, str] = {
    "edu": "Educational score",
    "format": "Extraction Quality Score",
}

Messages = list[dict[str, str]]

# --------------------------------------------------------------------------------------------------
# Doc stage: additive 0-5 scores
# --------------------------------------------------------------------------------------------------

_EDU_PROMPT = """\
You will read a passage taken from a web page. Decide how much it could help someone teach pupils \
from primary school up to the end of grade school. Score it with the additive scale below: start \
from 0 and add one point for each statement that holds, checking them in order.

1. The passage gives at least some facts or explanations on a subject that could be taught, even if \
they are mixed with advertising, promotion or other material with no teaching value. (+1)
2. The passage engages with a teachable subject, although it does not follow what a curriculum would \
cover: it may be a shallow overview, interleave useful parts with unrelated ones, or be poorly \
organised. (+1)
3. The passage could be used in a lesson and presents ideas that matter for a school curriculum. It \
hangs together, but it may leave gaps or carry extra material; it reads like the opening of a \
textbook section or a simple tutorial, or it treats ideas that are hard for grade-school pupils. (+1)
4. The passage is clearly valuable for grade-school teaching: it is written consistently and \
clearly, stays on topic, works through its subject like a textbook chapter or tutorial (worked \
examples or exercises count in its favour), and its ideas suit pupils of that age. (+1)
5. The passage is excellent for teaching at primary or grade-school level: well reasoned, easy to \
follow, free of filler and detailed enough to learn from directly. (+1)

The passage:
<passage>
{text}
</passage>

Write a critique of no more than 100 words that says which statements hold and why. Finish with one \
line, exactly in this form, with the total as a whole number from 0 to 5:
Educational score: <total points>"""

_FORMAT_PROMPT = """\
You will read text that a program pulled out of a web page. Judge how cleanly the page's content was \
extracted: markup, menus, buttons, link lists, timestamps and similar leftovers of the page layout \
count against it, while the subject or quality of the writing does not matter here. Use the \
additive scale below: start from 0 and add one point for each statement that holds, checking them in \
order.

1. The actual content can be read, even though plenty of markup, menus or other page furniture is \
still mixed in. (+1)
2. Most markup is gone and the text has had a first clean-up; some link lists, buttons or footer \
pieces may still be around. (+1)
3. The text is mostly clean; only scattered leftovers remain, such as a bare URL, a date stamp or an \
image caption. (+1)
4. The text is very clean: it reads as proper paragraphs with hardly any leftovers. (+1)
5. The extraction is perfect: nothing but the content itself, laid out as its author meant. (+1)

The extracted text:
<passage>
{text}
</passage>

Write a critique of no more than 100 words that says which statements hold and why. Finish with one \
line, exactly in this form, with the total as a whole number from 0 to 5:
Extraction Quality Score: <total points>"""

_SCORE_PROMPTS: dict[ScoreKind, str] = {"edu": _EDU_PROMPT, "format": _FORMAT_PROMPT}

# --------------------------------------------------------------------------------------------------
# Chunk stage: one few-shot prompt per kind of noise
# --------------------------------------------------------------------------------------------------

_CHUNK_INTRO = """\
You clean text extracted from web pages by writing a short program. The text is shown with a line \
number in square brackets at the start of every line, such as [007]. The numbers need not start at \
000: the text may be a later part of a longer page.

Your program may only call these functions, one call per line:

def untouch_doc():
    \"\"\"Leave the text as it is. Use it alone, when there is nothing to fix.\"\"\"

def remove_lines(start: int, end: int):
    \"\"\"Delete the lines numbered start to end; both ends are included, so
    remove_lines(start=4, end=4) deletes line [004] only.\"\"\"

def normalize(source_str: str, target_str: str = ""):
    \"\"\"Replace every occurrence of source_str with target_str. source_str must be copied exactly
    from the text (without the line number) and must not span two lines.\"\"\"

Use the line numbers exactly as they are printed in the brackets: never add 1 to them or subtract 1 \
from them. Only change what the task below asks for, and leave every other line alone.

Task: {task}

Answer in two parts: first a brief analysis of a few sentences naming the lines concerned, then the \
program in a single ```python code block.

{examples}

Now the text to clean:
<text>
{text}
</text>"""

_TASKS: dict[ChunkKind, str] = {
    "nav": (
        "remove navigation bars, the menus and link rows (site sections, breadcrumbs, log-in or search links) "
        "that sit at the top of a page. The page title and headings belong to the content: never take them "
        "for a navigation bar. When a whole line is navigation, delete it with remove_lines; when navigation "
        "words share a line with real content, cut only those words with normalize."
    ),
    "url": (
        "remove web links (strings starting with http:// or https://, or www.). When a line holds nothing "
        "but a link, delete it with remove_lines; when a link sits inside a sentence, cut only the link "
        "with normalize and keep the sentence."
    ),
    "footer": (
        "remove footers and trailing page furniture at the end of a page: copyright notices, contact details "
        "of the site, sharing buttons, unsubscribe or newsletter sign-up lines, tag lists and links to other "
        "posts. The last paragraphs of the actual content are not a footer: keep them."
    ),
}

_EXAMPLES: dict[ChunkKind, tuple[tuple[str, str, str], ...]] = {
    # (numbered text, analysis, program)
    "nav": (
        (
            "[000]Home | Recipes | Baking | Contact Us\n"
            "[001]Sign in   Register\n"
            "[002]Classic Banana Bread\n"
            "[003]This loaf uses three very ripe bananas and stays moist for days.\n"
            "[004]Heat the oven to 175°C and grease a loaf tin before you start.",
            "Line 000 is the site menu and line 001 holds account links, so both are navigation. Line 002 is "
            "the title of the recipe and stays.",
            "remove_lines(start=0, end=1)",
        ),
        (
            "[000]Skip to content Menu Search The Life Cycle of a Frog\n"
            "[001]Frogs begin life as eggs laid in clusters in ponds.\n"
            "[002]After about a week the eggs hatch into tadpoles.",
            "Line 000 starts with navigation words but ends with the article title, so only the navigation "
            "words are cut.",
            'normalize(source_str="Skip to content Menu Search ", target_str="")',
        ),
        (
            "[000]Why Leaves Change Colour in Autumn\n"
            "[001]As the days get shorter, trees stop making chlorophyll.\n"
            "[002]The yellow and orange pigments that were there all along become visible.",
            "Line 000 is the title of the article, not a menu, and the other lines are content. There is no "
            "navigation bar.",
            "untouch_doc()",
        ),
        (
            "[040]Forums > Science > Astronomy\n"
            "[041]Thread: How far away is the Moon?\n"
            "[042]The Moon is on average about 384,400 km from Earth.\n"
            "[043]Its orbit is an ellipse, so the distance changes through the month.",
            "Line 040 is a breadcrumb trail, which is navigation. Line 041 is the thread title and is kept.",
            "remove_lines(start=40, end=40)",
        ),
    ),
    "url": (
        (
            "[010]Photosynthesis turns light energy into chemical energy.\n"
            "[011]https://example.org/images/photosynthesis-diagram.png\n"
            "[012]The plant stores that energy as glucose.",
            "Line 011 is nothing but a link to an image, so the whole line goes.",
            "remove_lines(start=11, end=11)",
        ),
        (
            "[021]Monthly rainfall totals are published at http://data.example.com/rain?year=2020 for every station.\n"
            "[022]The wettest month on record was October.",
            "Line 021 is a sentence with a link inside it. Only the link and the word that leads into it are cut, so "
            "the sentence still reads well.",
            'normalize(source_str=" at http://data.example.com/rain?year=2020", target_str="")',
        ),
        (
            "[005]The water cycle has four main stages.\n"
            "[006]Water evaporates, condenses into clouds, falls as rain and collects again.",
            "None of the lines contains a link.",
            "untouch_doc()",
        ),
    ),
    "footer": (
        (
            "[018]Water the seedlings every morning until they are established.\n"
            "[019]Share this: Facebook Twitter Email\n"
            "[020]© 2021 Riverside Gardening Club. All rights reserved.\n"
            "[021]Privacy Policy | Terms of Use",
            "Line 018 ends the article. Lines 019 to 021 are sharing buttons, a copyright notice and legal links: "
            "all footer.",
            "remove_lines(start=19, end=21)",
        ),
        (
            "[030]That is all for this week's lesson on fractions.\n"
            "[031]Posted in: Maths, Year 4 | Tags: fractions, halves\n"
            "[032]Questions? Write to us at office@example-school.org\n"
            "[033]You receive this newsletter because you subscribed. Unsubscribe here.",
            "Line 030 closes the lesson. Line 031 is a tag list, line 032 the site's contact address and line 033 "
            "an unsubscribe notice, so lines 031 to 033 go.",
            "remove_lines(start=31, end=33)",
        ),
        (
            "[007]Add the two numbers in each column, starting from the right.\n"
            "[008]Carry the tens to the next column when the sum is larger than nine.",
            "Both lines are part of the explanation; there is no footer.",
            "untouch_doc()",
        ),
    ),
}


def _render_examples(kind: ChunkKind) -> str:
    parts = []
    for number, (text, analysis, program) in enumerate(_EXAMPLES[kind], start=1):
        parts.append(
            f"Example {number}\n<text>\n{text}\n</text>\nAnalysis: {analysis}\n```python\n{program}\n```"
        )
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------------
# Public helpers
# --------------------------------------------------------------------------------------------------


def score_prompt(kind: ScoreKind, text: str) -> str:
    """The doc-stage prompt text for score ``kind`` ("edu" or "format") on the raw ``text``."""
    try:
        template = _SCORE_PROMPTS[kind]
    except KeyError:
        raise ValueError(f"unknown score kind {kind!r}: expected one of {', '.join(SCORE_KINDS)}") from None
    return template.format(text=text)


def score_messages(kind: ScoreKind, text: str) -> Messages:
    """Chat messages asking for score ``kind`` of ``text``."""
    return [{"role": "user", "content": score_prompt(kind, text)}]


def chunk_prompt(kind: ChunkKind, numbered_text: str) -> str:
    """The chunk-stage few-shot prompt for noise ``kind`` on ``numbered_text`` (``[NNN]``-numbered lines)."""
    try:
        task = _TASKS[kind]
    except KeyError:
        raise ValueError(f"unknown chunk prompt {kind!r}: expected one of {', '.join(CHUNK_KINDS)}") from None
    return _CHUNK_INTRO.format(task=task, examples=_render_examples(kind), text=numbered_text)


def chunk_messages(kind: ChunkKind, numbered_text: str) -> Messages:
    """Chat messages asking for the ``kind`` cleaning program of ``numbered_text``."""
    return [{"role": "user", "content": chunk_prompt(kind, numbered_text)}]


def example_programs(kind: ChunkKind) -> list[str]:
    """The programs of the few-shot examples (the tests check that they parse in the strict dialect)."""
    return [program for _, _, program in _EXAMPLES[kind]]
