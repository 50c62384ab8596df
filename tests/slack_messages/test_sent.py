"""Everything the bot sends, as sent: the real Bolt app over signed HTTP and the real CLI,
fed hostile topics, queries and papers; every `chat.postMessage` and every answer to a
`response_url` that reached the fake Slack is then checked as Slack would check it."""

from __future__ import annotations

import copy
import time

import pytest

from tests.e2e.conftest import DAY
from tests.e2e.test_feedback_and_search import _click
from tests.e2e.test_home import _home
from tests.slack_messages.checks import problems, view_problems

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
]
NOISE = ["&", "<>", "*_~`", "🔥", "\u202e\u200b", "مرحبا ", "<!channel> "]


def _hostile_papers(seed_items: list[dict]) -> list[dict]:
    """Seed papers made hostile: long and marked-up titles, abstracts, authors and URLs."""
    base = next(i for i in seed_items if "ontrastive" in i["paper"]["title"])
    titles = [
        "Contrastive learning " + "& <b>*bold*_x_~y~`z` " * 60,
        "Contrastive learning gnp\u202eexe.png\u200b 🔥 " * 40,
        "Contrastive learning " + "&" * 800,
        "Contrastive learning " + "مرحبا שלום " * 40,
        "Contrastive learning of A*-search with x_i and ~5 `code`",
    ]
    items = []
    for n, title in enumerate(titles):
        item = copy.deepcopy(base)
        paper = item["paper"]
        paper["id"] = f"2407.9990{n}"
        paper["title"] = item["title"] = title
        paper["summary"] = item["summary"] = (
            "Contrastive learning is studied here. " + title + ". " + "Thus *it* _works_. " * 300
        )
        paper["authors"] = [{"name": f"{title[:300]} {k}"} for k in range(300)]
        paper["githubRepo"] = "https://github.com/o/r?a=1&b=2_3*4~5`" + "x" * 400
        paper["projectPage"] = "https://example.com/\u202eevil"
        if n == 0:
            paper["ai_summary"] = "*An AI summary* with <!here> & `ticks` " * 40
        items.append(item)
    return items


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the messages, not storage
def test_every_message_sent_passes_slacks_checks(stack, seed_items):
    stack.hf.set_day(DAY, [*seed_items, *_hostile_papers(seed_items)])
    stack.monkeypatch.setenv("DIGEST_MAX_PAPERS", "10")
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    for n, word in enumerate(WORDS):  # 20 topics of 200 characters
        topic = f"contrastive learning -{word} " + NOISE[n % len(NOISE)] * 200
        stack.command(f"subscribe {topic}"[:210], wait="post")
    for text in (
        "subscribe one topic too many",  # refused: 20 already
        "list",
        "unsubscribe 99",
        "unsubscribe <number>",
        "help",
        "`*&<x>_~ please",  # unknown command: a hint, then help
        "search",
        "search https://arxiv.org/abs/2407.20005",
        "search contrastive since:*bogus*_",
        "search contrastive " + "🔥" * 1990,
        "search zzzz & <b> *nothing* here",
        "liked",
    ):
        stack.command(text)
    _, first_page = stack.command("search contrastive learning")
    button = next(b for b in first_page["blocks"] if b["type"] == "actions")
    _click(stack, button["elements"][0]["value"])
    _click(stack, "not a value")  # expired
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    replies = [p for p in stack.slack.posts("C0001") if p.thread_ts]
    for reply in replies[:10]:
        stack.react("reaction_added", reaction="+1", channel="C0001", ts=reply.ts)
    deadline = time.monotonic() + 10  # reactions are stored after the ack
    while "Most liked" not in stack.command("liked")[1]["text"] and time.monotonic() < deadline:
        time.sleep(0.2)
    stack.command("why 2407.99900")
    stack.command("why 2407.99902")
    stack.command("settings", wait="views.open")
    stack.slack.set_members("C0001", ["U0001"])
    views = [stack.slack.opened_views()[-1], _home(stack, "U0001")]
    assert "Most liked" in str(views[1])  # the Home tab with all 20 topics and liked papers
    stack.command("unsubscribe 1", wait="post")

    sent = stack.slack.calls("chat.postMessage") + stack.slack.calls("response_url")
    assert len(stack.slack.calls("chat.postMessage")) >= 20 + 1 + len(replies) + 1
    assert len(replies) >= 5 and any("9990" in (p.text or "") for p in replies)
    said = "\n".join(str(call.params.get("text")) for call in sent)
    for kind in (  # every kind of message was among them
        "subscribed this channel to",
        "already follows 20 topics",
        "This channel follows 20 topics",
        "There is no topic number 99",
        "posts this channel a daily digest",
        "I don't know",
        "Search for some words",
        "not web addresses",
        "not a date filter",
        "Nothing found",
        "Results 1–5",
        "Results 6–10",
        "That search has expired",
        "new papers",
        "Most liked",
        "Why or why not",
        "unsubscribed this channel from",
    ):
        assert kind in said, kind
    wrong = {}
    for call in sent:
        if found := problems(call.params):
            wrong[(call.method, (call.params.get("text") or "")[:60])] = found[:3]
    for view in views:
        if found := view_problems(view):
            wrong[("view", view["type"])] = found[:3]
    assert not wrong, wrong


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_answer_slack_refuses_is_logged_and_sent_again_as_text(stack, caplog):
    stack.slack.fail_next("response_url", error="invalid_blocks", status=400)
    before = len(stack.slack.calls("response_url"))
    stack.command("help")
    calls = stack.slack.wait_for("response_url", before + 2)[before:]
    assert calls[0].status == 400 and calls[0].params.get("blocks")
    assert calls[1].status == 200
    assert "blocks" not in calls[1].params and "papers-bot" in calls[1].params["text"]
    deadline = time.monotonic() + 5
    while "Slack refused an answer" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "HTTP 400" in caplog.text and "invalid_blocks" in caplog.text
