"""The line refiner's comment-section cut (``models.drop_comment_sections``): the header rule on hand-made
pages, and the bundled line refiner's programs with the cut on and off, executed and audited."""

from __future__ import annotations

import pytest

from prox_spark.config import ModelsConfig, bundled_model_dir
from prox_spark.lines.comments import SECTION_HEADER, comment_section_start, without_comment_section
from prox_spark.pipeline import load_stage_model
from prox_spark.pipeline.stages import write_line_programs
from prox_spark.programs import execute_batch

ARTICLE = [
    "The city council voted on Tuesday to extend the tram line to the northern districts by 2030.",
    "Supporters said the extension would cut commuting times for about forty thousand residents who now rely on buses.",
    "Opponents argued that the budget of 300 million euros could be spent better on repairing existing roads and bridges.",
    "The mayor said the council would publish a detailed timetable and the first construction contracts next spring.",
]
COMMENTS = [
    "Maria Jensen says:",
    "March 3, 2024 at 4:15 pm",
    "About time! I have been waiting for this tram for fifteen years and the buses are always late in winter.",
    "Reply",
    "Tom Becker says:",
    "March 3, 2024 at 6:02 pm",
    "Three hundred million euros for a tram nobody in my street will ever use seems like a waste to me.",
    "Reply",
]


def page(header: str = "2 Comments") -> list[str]:
    return ["Home | News | Local | Comments", "Tram line to reach the north by 2030", *ARTICLE, header, *COMMENTS]


@pytest.mark.parametrize(
    "line",
    ["2 Comments", "Comments", "COMMENTS (12)", "Leave a Reply", "3 thoughts on “Tram line to reach the north”",
     "5 Kommentare zu „Straßenbahn“", "Kommentar schreiben", "Join the discussion", "— 14 responses —"],
)
def test_a_template_header_opens_a_comment_section(line):
    assert SECTION_HEADER.search(line)


@pytest.mark.parametrize(
    "line",
    ["Readers left many comments on the council's plans last week.", 'response.headers.get("Date"); // null',
     "comment = Frohike Backups", "Responses to the survey were mixed", "No comment from the mayor's office."],
)
def test_prose_or_code_mentioning_comments_is_not_a_header(line):
    assert not SECTION_HEADER.search(line)


def test_the_section_starts_at_the_header_after_the_article():
    lines = page()
    keep = [False, True] + [True] * len(ARTICLE) + [False] + [True] * len(COMMENTS)
    start = comment_section_start(lines, keep)
    assert start == 2 + len(ARTICLE)
    cut = without_comment_section(lines, keep)
    assert cut[:start] == keep[:start] and not any(cut[start:])


def test_a_header_before_the_article_is_a_menu_entry_not_a_section():
    lines = ["Comments", *ARTICLE]
    assert comment_section_start(lines, [True] * len(lines)) is None
    assert without_comment_section(lines, [True] * len(lines)) == [True] * len(lines)


def test_nothing_kept_or_mismatched_input():
    assert comment_section_start(page(), [False] * len(page())) is None
    with pytest.raises(ValueError, match="decisions"):
        comment_section_start(page(), [True])


def test_the_setting_is_on_by_default():
    assert ModelsConfig().drop_comment_sections is True


@pytest.fixture(scope="module")
def line_refiner():
    return load_stage_model(bundled_model_dir("chunk", "lines"), "lines", provider="cpu")


def test_the_line_refiner_drops_the_comment_section_and_audits_the_model_program(line_refiner):
    text = "\n".join(page())
    (plain,) = write_line_programs(line_refiner, [text])
    (cut,) = write_line_programs(line_refiner, [text], drop_comments=True)
    assert plain[0].model_program is None
    model_kept = execute_batch([text], [plain[0].program], stage="chunk", dialect="strict")["text"][0]
    # the model alone keeps the readers' comments: they read like the article
    assert COMMENTS[2] in model_kept and COMMENTS[6] in model_kept
    assert cut[0].model_program == plain[0].program != cut[0].program
    kept = execute_batch([text], [cut[0].program], stage="chunk", dialect="strict")["text"][0]
    assert all(paragraph in kept for paragraph in ARTICLE)
    assert not any(comment in kept for comment in COMMENTS)


def test_a_page_without_comments_gets_the_same_program_either_way(line_refiner):
    text = "\n".join(["Home | News", *ARTICLE, "Copyright 2024 City Times"])
    (plain,) = write_line_programs(line_refiner, [text])
    (cut,) = write_line_programs(line_refiner, [text], drop_comments=True)
    assert cut[0].program == plain[0].program and cut[0].model_program is None
