"""Requests into the bot over real HTTP: forged or stale ones are refused, redelivered events
count once, and `/papers` text of any shape gets a calm answer within Slack's 3 s without
changing the database (unless it was a valid command) and without pinging a whole channel.
"""

from __future__ import annotations

import json
import threading
import time

from sqlmodel import Session, select

from storage.models import Reaction, SlackEvent, Subscription
from tests.fakes.slack_requests import post_signed, reaction_event_body, sign, slash_command_body
from tests.faults.conftest import DAY, SECRET, subscribe, wait_until

BROADCASTS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam", "<@U123>")
SORRY = "something went wrong"

TEXTS = [
    "",
    "   ",
    "help",
    "frobnicate",
    "subscribe",
    "subscribe 量子 機械学習",
    "subscribe naïve Bayes für Texte",
    "subscribe 🚀🚀🚀",
    "subscribe \x00\x07\x1b[31mred\x1b[0m \u202egnirts",
    "subscribe contrastive\tlearning\r\nwith\x0bnoise",
    "subscribe " + "a" * 10_000,
    "search " + "contrastive " * 850,
    "x" * 10_000,
    "subscribe '; DROP TABLE subscriptions; --",
    "unsubscribe 1; DELETE FROM subscriptions",
    "search ' OR 1=1 --",
    "list'; DROP TABLE subscriptions; --",
    "<@U123>",
    "subscribe <@U123> graph neural networks",
    "subscribe <!channel>",
    "subscribe <!here> diffusion models",
    "<!channel> help",
    "search <!here> contrastive",
    "unsubscribe <!channel>",
    "list <!everyone>",
    "<!subteam^S123|@team> subscribe x",
    "subscribe <https://evil.example|click me> transformers",
    "liked <!channel>",
]


def _subscriptions(stack) -> list[tuple[str, str]]:
    with Session(stack.engine) as session:
        rows = session.exec(select(Subscription).order_by(Subscription.id))
        return [(s.channel_id, s.topic) for s in rows]


def _answers(stack) -> list:
    """What the bot said back, in arrival order: response_url replies and channel posts."""
    return [c for c in stack.slack.calls() if c.method in ("response_url", "chat.postMessage")]


def test_forged_and_stale_requests_are_refused(stack):
    body = slash_command_body(
        "subscribe contrastive learning", response_url=stack.slack.response_url(1)
    )
    assert post_signed(stack.url, body, "not-the-signing-secret").status_code == 401
    stale = int(time.time()) - 301
    assert post_signed(stack.url, body, SECRET, timestamp=stale).status_code == 401
    # int() drops up to a second and the request takes time: +301 could land inside the
    # 300-second window, so the future case stays well outside it.
    future = int(time.time()) + 310
    assert post_signed(stack.url, body, SECRET, timestamp=future).status_code == 401
    other = body.replace("contrastive", "adversarial")  # signed one body, sent another
    tampered = post_signed(stack.url, other, SECRET, headers=sign(body, SECRET))
    assert tampered.status_code == 401
    assert post_signed(stack.url, body, SECRET).status_code == 200  # the real one is fine
    wait_until(lambda: _subscriptions(stack), 5, "the genuine subscription")
    time.sleep(0.3)  # anything the refused requests might have started
    assert _subscriptions(stack) == [("C0001", "contrastive learning")]
    assert len(_answers(stack)) == 1


def test_redelivered_event_is_stored_once(stack):
    subscribe(stack, {"C0001": "contrastive learning"})
    assert stack.cli("digest", "--date", DAY)[0] == 0
    reply = next(p for p in stack.slack.posts("C0001") if p.thread_ts)
    body = reaction_event_body(
        "reaction_added", reaction="fire", user="U0002", channel="C0001", ts=reply.ts
    )
    statuses = []

    def deliver(retry_num):
        statuses.append(post_signed(stack.url, body, SECRET, retry_num=retry_num).status_code)

    # Slack's retries can overlap the first delivery: send three copies at once, then one more.
    threads = [threading.Thread(target=deliver, args=(n,)) for n in (None, 1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    deliver(3)
    assert statuses == [200] * 4

    def stored():
        with Session(stack.engine) as session:
            return list(session.exec(select(Reaction))), list(session.exec(select(SlackEvent)))

    wait_until(lambda: stored()[0], 5, "the reaction")
    time.sleep(0.3)
    reactions, events = stored()
    assert [(r.paper_id, r.user_id, r.reaction) for r in reactions] == [
        (reply.text.rsplit("/", 1)[-1], "U0002", "fire")
    ]
    assert len(events) == 1


def test_any_text_gets_a_calm_answer_in_time_and_changes_nothing_unless_valid(
    stack, record_property
):
    problems = []
    slowest = 0.0
    for number, text in enumerate(TEXTS):
        channel = f"C{1000 + number}"
        before_subs = _subscriptions(stack)
        before_answers = len(_answers(stack))
        body = slash_command_body(
            text, channel_id=channel, response_url=stack.slack.response_url(number)
        )
        started = time.monotonic()
        response = post_signed(stack.url, body, SECRET)
        took = time.monotonic() - started
        slowest = max(slowest, took)
        if response.status_code != 200 or took > 3.0:
            problems.append(f"{text[:40]!r}: HTTP {response.status_code} in {took:.2f}s")
            continue
        try:
            wait_until(lambda b=before_answers: len(_answers(stack)) > b, 5, "an answer")
        except AssertionError:
            problems.append(f"{text[:40]!r}: no answer")
            continue
        answer = _answers(stack)[before_answers]
        said = str(answer.params.get("text", ""))
        if SORRY in said:
            problems.append(f"{text[:40]!r}: answered with an internal error")
        if "subscribed this channel" in said:  # confirmed in the channel, then committed
            wait_until(lambda c=channel: c in dict(_subscriptions(stack)), 5, "the commit")
        after_subs = _subscriptions(stack)
        if after_subs != before_subs:
            verb = text.split()[0] if text.split() else ""
            added = [s for s in after_subs if s not in before_subs]
            if verb not in ("subscribe", "follow") or answer.method != "chat.postMessage":
                problems.append(f"{text[:40]!r}: changed the database: {added}")
            for _, topic in added:
                if "<" in topic or not topic.isprintable() or len(topic) > 200:
                    problems.append(f"{text[:40]!r}: stored an unclean topic {topic!r}")
    for call in _answers(stack) + stack.slack.calls("chat.postEphemeral"):
        sent = json.dumps(call.params, ensure_ascii=False)
        for markup in BROADCASTS:
            if markup in sent:
                problems.append(f"{call.method} echoed {markup}: {call.params.get('text')!r}")
    with Session(stack.engine) as session:  # the table is still there
        session.exec(select(Subscription)).all()
    record_property("slowest_http_answer_seconds", round(slowest, 3))
    assert problems == []
