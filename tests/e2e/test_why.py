"""`/papers why`, topic readings in `/papers list` and the subscribe confirmation, and topics
refused because they could never match; over signed HTTP requests."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.matching.ranking import WORDS_RULE
from storage import queries
from tests.e2e.conftest import DAY

CORE_CONTRASTIVE = "2407.20005"  # graded core for "contrastive learning" in the sample


def topics(stack, channel="C0001"):
    with Session(stack.engine) as s:
        return [x.topic for x in queries.channel_subscriptions("T0001", channel, session=s)]


def test_why_says_which_topic_let_a_paper_in_and_why_others_kept_it_out(stack):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    stack.command("subscribe contrastive learning", wait="post")
    stack.command("subscribe face recognition, recommender systems", wait="post")
    link = f"https://arxiv.org/abs/{CORE_CONTRASTIVE}v2"
    _, reply = stack.command(f"why {link}")
    assert reply["response_type"] == "ephemeral"
    text = reply["text"]
    assert ":white_check_mark: *contrastive learning* — in on its words: score" in text
    assert ":x: *face recognition, recommender systems* — out:" in text
    assert f"only 0% of its words (needs {WORDS_RULE.min_coverage:.0%})" in text  # words only
    assert "read as any of: face recognition · recommender systems" in text
    assert "already got it" not in text
    assert topics(stack) == ["contrastive learning", "face recognition, recommender systems"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("why", "Say which paper"),
        ("why the contrastive one", "Say which paper"),
        ("why 2501.99999", "I have not stored 2501.99999"),
    ],
)
def test_why_with_a_bad_or_unknown_paper_says_so(stack, text, expected):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    stack.command("subscribe contrastive learning", wait="post")
    _, reply = stack.command(text)
    assert reply["response_type"] == "ephemeral"
    assert expected in reply["text"]


def test_why_without_topics_says_so(stack):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    _, reply = stack.command(f"why {CORE_CONTRASTIVE}")
    assert "follows no topics" in reply["text"]


def test_list_and_confirmation_show_how_a_topic_reads(stack):
    _, post = stack.command("subscribe protein and molecule design", wait="post")
    assert "I read it as: _any of: protein design · molecule design_" in post["text"]
    _, post = stack.command("subscribe contrastive learning", wait="post")
    assert "I read it as" not in post["text"]
    _, reply = stack.command("list")
    assert (
        "1. protein and molecule design — _read as any of: protein design · molecule design_"
        in (reply["text"])
    )
    assert "2. contrastive learning\n" in reply["text"] + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscribe learning -learning", "excludes it too"),
        ("subscribe author:", "needs part of a name"),
        ("subscribe author:.*", "needs part of a name"),
        ("subscribe author:[", "needs part of a name"),
        ("subscribe graph, speech, robot, protein, vision, music models", "at most 5"),
    ],
)
def test_topics_that_cannot_work_are_refused_and_store_nothing(stack, text, expected):
    _, reply = stack.command(text)
    assert reply["response_type"] == "ephemeral"
    assert expected in reply["text"]
    assert topics(stack) == []
    assert stack.slack.posts() == []
