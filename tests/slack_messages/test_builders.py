"""Every message builder on ordinary and hostile input, checked as Slack would check it.

Hostile input: very long titles, abstracts, URLs and author lists; `& < > * _ ~` and
backticks; Slack's own markup typed as text; emoji (which Slack may count twice); right-to-
left text, bidi overrides and zero-width characters; 20 topics of 200 characters.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bot.archive.search import parse_since
from bot.digest import blocks
from bot.digest.blocks import PaperView
from bot.digest.summary import summarize
from bot.matching.ranking import TopicError, parse_topic
from bot.subscriptions import MAX_TOPICS, Refused, check_new_topic, find_topic
from handlers.slack_text import plain
from storage.models import Subscription
from tests.slack_messages.checks import problems

DAY = dt.date(2024, 7, 29)
HOSTILE = {
    "plain": "Contrastive learning of sentence embeddings",
    "long-word": "x" * 5000,
    "long-words": "word " * 1000,
    "ampersands": "&" * 1000,
    "angles": "<" * 500 + ">" * 500,
    "slack-markup": "<!channel> <@U123> <#C123|general> <https://evil.example|click> &amp; &lt;",
    "formatting": "*bold* _it_ ~strike~ `code` ```block``` A*-search x_i ~5 *",
    "emoji": "🔥" * 1500,
    "zwj-emoji": "👨‍👩‍👧" * 300,
    "bidi-and-invisible": "gnp\u202eexe.png \u200b\u2066hidden\u2069 \ufeffbom \u00adsoft",
    "rtl": "مرحبا بالعالم שלום עולם " * 50,
    "controls": "line\nbreak\ttab\x00nul\x1b[31m",
}
URLS = [
    "https://github.com/org/repo_name",
    "https://example.com/?a=1&b=2*3~4_5`6",
    "https://github.com/" + "a_b*c~d&e=f" * 60,  # 900 characters as written: linked
    "https://example.com/?" + "&" * 900,  # 4,500 as written: not linked
    "https://github.com/" + "a_b*c~d&e=f" * 200,  # 2,200: too long to link
    "https://example.com/\u202eevil",
]


def _check(message: blocks.Message) -> None:
    text, body = message
    found = problems({"text": text, "blocks": body})
    assert not found, found


def _all_text(message: blocks.Message) -> str:
    text, body = message
    parts = [text]
    for block in body:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [e.get("text", "") for e in block.get("elements", []) if "type" in e]
    return "\n".join(str(p) for p in parts)


def _paper(kind: str, value: str, url: str | None = None, **extra) -> PaperView:
    return PaperView(
        id="2407.20005",
        title=value,
        authors=[value] * 500 if kind != "plain" else ["Ana Lima", "Bo Chen"],
        summary=summarize(value * 3),
        topic=value[:200],
        terms=[value[:60]] * 30,
        github_repo=url,
        project_page=url,
        upvotes=12,
        **extra,
    )


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("url", URLS)
def test_digest_replies_and_search_hits(kind, url):
    view = _paper(kind, HOSTILE[kind], url, boosted=True, semantic=True)
    _check(blocks.paper_message(view))
    _, body = blocks.paper_message(view)
    head = body[0]["text"]["text"]
    assert head.startswith("*<https://huggingface.co/papers/2407.20005|")
    if len(HOSTILE[kind]) > blocks.TITLE_CHARS:
        assert head.split(">*")[0].endswith("…")  # shortened, and it says so
    links = " ".join(e["text"] for e in body[-1]["elements"])
    assert ("|Code>" in links) == (url in URLS[:3])  # linked unless unsafe or too long


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_digest_parent_with_20_topics_of_200_characters(kind):
    topics = [f"{n} {HOSTILE[kind]}"[:200] for n in range(MAX_TOPICS)]
    message = blocks.digest_parent(DAY, 20, topics)
    _check(message)
    text, body = message
    sections = [b["text"]["text"] for b in body if b["type"] == "section"]
    shown = sum(s.count("*") for s in sections) // 2 - 1  # minus "*20 new papers*"
    assert shown == MAX_TOPICS  # every topic, each in its own bold
    if "more" in text.rsplit(",", 1)[-1]:
        assert text.endswith("more")  # the fallback says what it left out


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_topic_list_shows_all_20_topics_with_their_numbers(kind):
    topics = [f"{n} {HOSTILE[kind]}"[:200] for n in range(MAX_TOPICS)]
    for warning in (None, "My last digest here failed (`is_archived`): unarchive it."):
        message = blocks.topic_list(topics, warning)
        _check(message)
        sections = "\n".join(b["text"]["text"] for b in message[1] if b["type"] == "section")
        numbers = [line.split(".", 1)[0] for line in sections.split("\n")[1:]]
        assert numbers == [str(n) for n in range(1, MAX_TOPICS + 1)]
    _check(blocks.topic_list([]))


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_liked_papers_lists_all_ten(kind):
    items = [(_paper(kind, f"{n} {HOSTILE[kind]}"), 10 - n) for n in range(10)]
    message = blocks.liked_papers(items, 7)
    _check(message)
    sections = "\n".join(b["text"]["text"] for b in message[1])
    assert [line.split(".", 1)[0] for line in sections.split("\n")[1:]] == [
        str(n) for n in range(1, 11)
    ]
    _check(blocks.liked_papers([], 7))


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("offset", [0, 5, 995])
def test_search_pages_and_more_results(kind, offset):
    query = HOSTILE[kind][:2000]  # the longest query a command can carry
    papers = [_paper(kind, HOSTILE[kind], URLS[2]) for _ in range(5)]
    for more in (True, False):
        message = blocks.search_results(query, papers, offset, more)
        _check(message)
        actions = [b for b in message[1] if b["type"] == "actions"]
        if more and actions:
            value = actions[0]["elements"][0]["value"]
            assert blocks.read_more_value(value) == (query, offset + 5)  # the query, whole
        elif more:  # too long for a button: the answer says so
            assert "cannot be paged" in message[1][-1]["elements"][0]["text"]
    _check(blocks.search_results(query, [], offset, False))


def test_a_query_that_fits_a_button_always_gets_one():
    for query in ("🔥" * blocks.PAGED_QUERY_CHARS, "&" * blocks.PAGED_QUERY_CHARS):
        message = blocks.search_results(query, [_paper("plain", "T")], 995, True)
        assert message[1][-1]["type"] == "actions"


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_help_and_unknown_commands(kind):
    for by_meaning in (False, True):
        _check(blocks.help_message(MAX_TOPICS, by_meaning=by_meaning))
        verb = plain(HOSTILE[kind]).partition(" ")[0]  # as handlers.commands reads it
        hint = f"I don't know `{blocks.escape(verb[:40])}`. Here is what I can do:"
        _check(blocks.help_message(MAX_TOPICS, hint, by_meaning=by_meaning))


def _subscription(n: int, topic: str) -> Subscription:
    return Subscription(
        id=n, team_id="T1", channel_id="C1", topic=topic, topic_key=topic, created_by="U1"
    )


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_refusals(kind):
    value = HOSTILE[kind]
    existing = [_subscription(n, f"{n} {value}"[:200]) for n in range(MAX_TOPICS)]
    said = []
    for attempt in (
        lambda: check_new_topic("contrastive learning", existing),
        lambda: check_new_topic(existing[3].topic, existing[:5]),
        lambda: find_topic("", existing),
        lambda: find_topic("99", existing),
        lambda: find_topic("no such topic", existing),
        lambda: find_topic("1", []),
        lambda: parse_since(f"since:{value}", DAY),
        lambda: parse_topic(value),
        lambda: parse_topic(""),
        lambda: parse_topic("the"),
    ):
        try:
            attempt()
        except (Refused, TopicError) as exc:
            said.append(str(exc))
    assert len(said) >= 7
    for text in said:
        _check(blocks.notice(text))


def test_hostile_text_shows_as_written():
    """What the reader sees is the text itself: entities and look-alikes, nothing hidden."""
    shown = blocks.escape("a & b <c> *d* _e_ ~f~ `g` gnp\u202eexe")
    assert shown == "a &amp; b &lt;c&gt; ∗d∗ ˍeˍ ∼f∼ ˋgˋ gnpexe"
    assert blocks.escape(HOSTILE["plain"]) == HOSTILE["plain"]  # ordinary text untouched
    assert not set("*_~`<>") & set(blocks.escape(HOSTILE["formatting"] + HOSTILE["angles"]))
