"""`/papers` over signed HTTP requests: each subcommand, and every bad input changing nothing."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from bot.subscriptions import MAX_TOPICS
from storage import queries


def topics(stack, channel="C0001"):
    with Session(stack.engine) as s:
        return [x.topic for x in queries.channel_subscriptions("T0001", channel, session=s)]


@pytest.mark.parametrize("text", ["", "help", "frobnicate now"])
def test_help_for_empty_help_and_unknown(stack, text):
    _, reply = stack.command(text)
    assert reply["response_type"] == "ephemeral"
    assert "/papers subscribe" in reply["text"]
    assert "quoted phrase" in str(reply["blocks"])
    assert ("I don't know" in reply["text"]) == text.startswith("frob")
    if text.startswith("frob"):
        assert "I don't know `frobnicate`" in reply["text"]


def test_subscribe_list_unsubscribe_by_number_and_text(stack):
    stack.command("subscribe contrastive learning", wait="post")
    stack.command('subscribe "sparse autoencoders" -audio', wait="post")
    _, reply = stack.command("list")
    assert "1. contrastive learning" in reply["text"]
    assert '2. "sparse autoencoders" -audio' in reply["text"]
    _, post = stack.command("unsubscribe 1", wait="post")
    assert "<@U0001> unsubscribed this channel from *contrastive learning*" in post["text"]
    _, post = stack.command('unsubscribe "Sparse Autoencoders" -audio', wait="post")
    assert "unsubscribed" in post["text"]
    assert topics(stack) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("subscribe", "Say what to follow"),
        ("subscribe    ", "Say what to follow"),
        ("subscribe " + "graph " * 40, "200"),
        ("subscribe the of and with", "meaningful"),
        ("subscribe <!channel>", "Say what to follow"),
        ("unsubscribe 3", "nothing to remove"),
        ("unsubscribe", "Say which topic"),
    ],
)
def test_bad_input_gets_a_message_and_stores_nothing(stack, text, expected):
    _, reply = stack.command(text)
    assert reply["response_type"] == "ephemeral"
    assert expected in reply["text"]
    assert topics(stack) == []
    assert stack.slack.posts() == []


def test_duplicate_and_limit(stack):
    stack.command("subscribe Contrastive Learning", wait="post")
    _, reply = stack.command("subscribe contrastive learning")
    assert "already follows" in reply["text"]
    words = "graph speech robot protein quantum diffusion retrieval music weather vision"
    words += " chess tabular audio video medical legal code math climate"
    for word in words.split()[: MAX_TOPICS - 1]:
        stack.command(f"subscribe {word} models", wait="post")
    assert len(topics(stack)) == MAX_TOPICS
    _, reply = stack.command("subscribe one more topic")
    assert f"already follows {MAX_TOPICS} topics" in reply["text"]
    assert len(topics(stack)) == MAX_TOPICS


def test_bot_not_in_channel_stores_nothing(stack):
    stack.slack.set_channel_error("C0NOTIN", "not_in_channel")
    _, reply = stack.command("subscribe contrastive learning", channel="C0NOTIN")
    assert "/invite @papers-bot" in reply["text"]
    assert topics(stack, "C0NOTIN") == []


def test_broadcasts_are_not_echoed(stack):
    _, post = stack.command("subscribe <!here> diffusion models <@U999>", wait="post")
    assert "<!here>" not in post["text"] and "<@U999>" not in post["text"]
    assert "diffusion models" in post["text"]


def test_list_warns_when_the_last_digest_failed(stack):
    with Session(stack.engine) as s:
        queries.mark_channel_failed("T0001", "C0001", "not_in_channel", session=s)
        s.commit()
    _, reply = stack.command("list")
    assert "My last digest here failed (`not_in_channel`)" in str(reply["blocks"])
    assert "/invite @papers-bot" in str(reply["blocks"])


def test_subscription_kept_and_said_when_only_the_announcement_fails(stack):
    stack.slack.fail_next("chat.postMessage", error="internal_error", status=500, times=3)
    _, reply = stack.command("subscribe contrastive learning")
    assert "Done: this channel now follows *contrastive learning*" in reply["text"]
    assert topics(stack) == ["contrastive learning"]


def test_slack_escaped_text_is_read_and_shown_once_escaped(stack):
    _, post = stack.command("subscribe diffusion &amp; flow matching", wait="post")
    assert "*diffusion &amp; flow matching*" in post["text"]  # shows as "diffusion & flow…"
    assert topics(stack) == ["diffusion & flow matching"]
    _, post = stack.command("subscribe &lt;!channel&gt; transformers", wait="post")
    assert "<!channel>" not in post["text"] and topics(stack)[-1] == "transformers"
