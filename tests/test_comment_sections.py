"""The line refiner's comment-section cut (``models.drop_comment_sections``): the header rule on hand-made
pages, and the bundled line refiner's programs with the cut on and off, executed and audited."""

from __future__ import annotations

import pytest

from prox_spark.config import ModelsConfig, bundled_model_dir
from prox_spark.lines import PageCuts
from prox_spark.lines.comments import SECTION_HEADER, attributions, comment_section_start, without_comment_section
from prox_spark.pipeline import Serving, load_stage_model
from prox_spark.pipeline.model_kinds.lines import write_line_programs
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


def test_a_header_repeated_under_every_teaser_is_a_link_not_a_section():
    # a columnist's index: "Post a comment" under each teaser, the teasers are what the page holds
    teasers = []
    for n, paragraph in enumerate(ARTICLE):
        teasers += [f"  • Column {n}", "    Post a comment", f"    {paragraph}"]
    keep = [not line.strip().startswith("Post") for line in teasers]
    assert comment_section_start(teasers, keep) is None
    # twice (the section's heading and the form's under the thread) is still a section
    twice = [*ARTICLE, "Post a comment", *COMMENTS, "Post a comment"]
    assert comment_section_start(twice, [True] * len(twice)) == len(ARTICLE)


def test_nothing_kept_or_mismatched_input():
    assert comment_section_start(page(), [False] * len(page())) is None
    with pytest.raises(ValueError, match="decisions"):
        comment_section_start(page(), [True])


def test_the_setting_is_on_by_default():
    assert ModelsConfig().drop_comment_sections is True


@pytest.fixture(scope="module")
def line_refiner():
    return load_stage_model(bundled_model_dir("chunk", "lines"), "lines", Serving(provider="cpu"))


def test_the_line_refiner_drops_the_comment_section_and_audits_the_model_program(line_refiner):
    text = "\n".join(page())
    (plain,) = write_line_programs(line_refiner, [text])
    (cut,) = write_line_programs(line_refiner, [text], cuts=PageCuts(stray_fragments=False))
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
    (cut,) = write_line_programs(line_refiner, [text], cuts=PageCuts(stray_fragments=False))
    assert cut[0].program == plain[0].program and cut[0].model_program is None


# --- threads without a reachable header: attribution lines naming different writers


def thread(writers: list[str], template: str = "{} says:") -> list[str]:
    lines = []
    for n, writer in enumerate(writers):
        lines += [template.format(writer), f"Comment {n}: I read the whole article and I think the tram is a good idea overall."]
    return lines


@pytest.mark.parametrize(
    "line, writer",
    [("Maria Jensen says:", "maria jensen"), ("firefighter jeff said,", "firefighter jeff"),
     ("Posted by: liz at May 29, 2005 10:19:16 PM", "liz"), ("Comment by Daniel — 17.07, 2011 @ 13:10", "daniel"),
     ("  2. Christian Keitel sagt:", "christian keitel"), ("Posted by: Cassandra | November 13, 2012 at 12:19 PM", "cassandra")],
)
def test_an_attribution_line_names_the_writer(line, writer):
    assert attributions([line]) == [(0, writer)]


@pytest.mark.parametrize(
    "line",
    ['"You were just telling us what we wanted to hear," Hoitsu said.', "As you may recall, Colon writes:",
     "The minister of transport for the northern region of the country said on Tuesday that the plan will go ahead said:"],
)
def test_prose_quoting_someone_is_no_attribution(line):
    assert attributions([line]) == []


def test_a_thread_of_different_writers_opens_the_section_even_when_it_outweighs_the_article():
    writers = [f"Reader {name}" for name in "ABCDEFGHIJ"]
    lines = ["Tram line to reach the north by 2030", *ARTICLE, "Responses so far", *thread(writers)]
    keep = [True] * len(lines)
    # the header alone cannot open it: the comments hold most of the kept words
    assert comment_section_start(lines, keep, min_kept_share=0.3) == len(ARTICLE) + 2
    cut = without_comment_section(lines, keep)
    assert cut == [True] * (len(ARTICLE) + 2) + [False] * (len(lines) - len(ARTICLE) - 2)


def test_a_section_header_just_above_the_thread_opens_it():
    lines = ["Tram line to reach the north by 2030", *ARTICLE, "17 Kommentare", "", *thread(["Anna", "Ben", "Cleo"], "{} sagt:")]
    assert comment_section_start(lines, [True] * len(lines)) == len(ARTICLE) + 1


def test_a_blog_index_repeating_its_author_is_no_thread():
    lines = []
    for n in range(5):
        lines += [ARTICLE[n % len(ARTICLE)], f"Posted by hugh macleod at {n + 1}:40 PM | Comments (5) | TrackBack"]
    assert comment_section_start(lines, [True] * len(lines)) is None


def test_a_thread_before_the_article_is_a_sidebar_not_a_section():
    lines = [*thread(["Anna", "Ben", "Cleo"]), *ARTICLE]
    assert comment_section_start(lines, [True] * len(lines)) is None
