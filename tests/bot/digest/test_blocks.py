"""Block Kit builders: plain dicts, checked with plain asserts."""

from __future__ import annotations

import datetime as dt
import json

from bot.digest import blocks
from bot.digest.blocks import PaperView

PAPER = PaperView(
    id="2407.20005",
    title="Understanding the Behaviour\n of Contrastive Loss",
    authors=["Feng Wang", "Huaping Liu", "A. Third", "B. Fourth"],
    summary="The temperature controls the penalty on hard negatives.",
    topic="contrastive learning",
    terms=["contrastive", "loss"],
    github_repo="https://github.com/example/repo",
    upvotes=12,
)


def test_paper_reply_has_linked_title_authors_why_summary_and_links():
    text, body = blocks.paper_message(PAPER)
    assert text == (
        "Understanding the Behaviour of Contrastive Loss — https://huggingface.co/papers/2407.20005"
    )
    head = body[0]["text"]["text"]
    assert head.startswith("*<https://huggingface.co/papers/2407.20005|Understanding the Behaviour")
    assert "Feng Wang, Huaping Liu, A. Third et al." in head
    assert body[1]["elements"][0]["text"] == (
        "Matched *contrastive learning* on _contrastive_, _loss_"
    )
    assert body[2]["text"]["text"] == PAPER.summary
    links = body[3]["elements"][0]["text"]
    for url in (
        "https://arxiv.org/abs/2407.20005",
        "https://arxiv.org/pdf/2407.20005",
        "https://github.com/example/repo",
    ):
        assert url in links
    assert "▲ 12" in links


def test_boosted_reply_says_so():
    lifted = PaperView(**{**PAPER.__dict__, "boosted": True})
    assert "lifted by this channel's reactions" in json.dumps(blocks.paper_message(lifted)[1])


def test_source_text_cannot_ping_or_forge_links():
    evil = PaperView(
        id="2407.00001",
        title="Hi <!channel> <https://evil.example|click>",
        authors=[],
        summary="<@U123> & friends",
    )
    text, body = blocks.paper_message(evil)
    dumped = json.dumps(body) + text
    assert "<!channel>" not in dumped and "<@U123>" not in dumped
    assert "&lt;!channel&gt;" in dumped and "&amp; friends" in dumped


def test_non_https_code_links_are_dropped():
    view = PaperView(id="2407.00001", title="T", authors=[], summary="", github_repo="javascript:x")
    assert "javascript" not in json.dumps(blocks.paper_message(view)[1])


def test_digest_parent_counts_and_topics():
    text, body = blocks.digest_parent(dt.date(2024, 7, 29), 3, ["contrastive learning", "a<b"])
    assert text == "Papers for Mon 29 Jul 2024: 3 new papers on contrastive learning, a&lt;b"
    assert "*3 new papers* for *contrastive learning*, *a&lt;b*" in body[0]["text"]["text"]
    assert "1 new paper " in blocks.digest_parent(dt.date(2024, 7, 29), 1, ["x"])[0]


def test_help_documents_commands_and_topic_syntax():
    text, body = blocks.help_message(20)
    for needle in ("subscribe", "unsubscribe", "list", "search", "since:30d", "liked"):
        assert needle in text
    syntax = body[1]["text"]["text"]
    assert '"quoted phrase"' in syntax and "-word" in syntax and "author:" in syntax
    assert "close in meaning" not in syntax  # only said when the bot matches by meaning
    assert "close in meaning" in blocks.help_message(20, by_meaning=True)[1][1]["text"]["text"]


def test_topic_list_numbers_topics():
    text, _ = blocks.topic_list(["contrastive learning", "face recognition"])
    assert "1. contrastive learning\n2. face recognition" in text
    assert "follows no topics" in blocks.topic_list([])[0]


def test_search_results_page_and_more_button():
    text, body = blocks.search_results("contrastive", [PAPER] * 5, 5, more=True)
    assert text == "Results 6–10 for “contrastive”"
    button = body[-1]["elements"][0]
    assert button["action_id"] == "search_more"
    assert blocks.read_more_value(button["value"]) == ("contrastive", 10)
    assert blocks.read_more_value('{"q": "older", "o": 5}') == ("older", 5)  # earlier messages
    text, body = blocks.search_results("zzz", [], 0, more=False)
    assert text.startswith("Nothing found for “zzz”")


def test_source_urls_cannot_break_out_of_a_link():
    for url in (
        "https://github.com/x> <!channel|Code",
        "https://github.com/x|label",
        "https://github.com/a b",
        "http://github.com/x",
        "https:///nohost",
    ):
        assert not blocks.safe_url(url), url
        view = PaperView(id="2407.00001", title="T", authors=[], summary="", github_repo=url)
        assert "Code>" not in json.dumps(blocks.paper_message(view)[1])
    assert blocks.safe_url("https://github.com/org/repo")


def test_reply_says_where_the_paper_came_from():
    arxiv_only = PaperView(
        id="2407.00001",
        title="Grasping",
        authors=["Jane Doe"],
        summary="S.",
        sources=("arxiv",),
        primary_category="cs.RO",
    )
    text, built = blocks.paper_message(arxiv_only)
    assert text.endswith("https://arxiv.org/abs/2407.00001")
    meta = built[-1]["elements"][0]["text"]
    assert meta.endswith("via arXiv · cs.RO") and "Hugging Face>" not in meta
    both = PaperView(
        id="2407.00001",
        title="G",
        authors=[],
        summary="",
        sources=("arxiv", "hf"),
        primary_category="cs.RO",
        upvotes=3,
    )
    text, built = blocks.paper_message(both)
    assert text.endswith("https://huggingface.co/papers/2407.00001")
    assert built[-1]["elements"][0]["text"].endswith("▲ 3 · via arXiv and Hugging Face · cs.RO")
    assert "  via arXiv · cs.RO" in blocks.paper_plain_text(arxiv_only).splitlines()
