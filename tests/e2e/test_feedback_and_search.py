"""Reactions as feedback and /papers search, end to end over signed requests."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

from tests.e2e.conftest import DAY, SECRET
from tests.fakes.slack_requests import post_signed


def _digest(stack):
    stack.command("subscribe contrastive learning", wait="post")
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    return [p for p in stack.slack.posts("C0001") if p.thread_ts]


def _wait_feedback(stack, count):
    """The stored reactions once there are exactly `count` (listeners run after the ack)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = stack.cli_json("feedback", "--json")
        if len(rows) == count:
            return rows
        time.sleep(0.05)
    return rows


def test_thumbs_up_redelivered_counts_once_and_removal_clears_it(stack):
    reply = _digest(stack)[0]
    paper_id = reply.text.rsplit("/", 1)[-1]
    for retry in (None, 1):
        response = stack.react(
            "reaction_added",
            reaction="+1::skin-tone-3",
            channel="C0001",
            ts=reply.ts,
            event_id="Ev0001",
            retry_num=retry,
        )
        assert response.status_code == 200
    rows = _wait_feedback(stack, 1)
    assert len(rows) == 1
    expected = {"channel": "C0001", "paper_id": paper_id, "user": "U0002"}
    assert {k: rows[0][k] for k in expected} == expected
    assert rows[0]["reaction"] == "+1" and rows[0]["polarity"] == 1

    stack.react("reaction_removed", reaction="+1::skin-tone-3", channel="C0001", ts=reply.ts)
    assert _wait_feedback(stack, 0) == []


def test_reactions_on_other_messages_are_ignored(stack):
    _digest(stack)
    other = stack.slack.add_message("C0001", text="lunch?")
    stack.react("reaction_added", reaction="+1", channel="C0001", ts=other)
    parent = next(p for p in stack.slack.posts("C0001") if "new papers" in p.text)
    stack.react("reaction_added", reaction="fire", channel="C0001", ts=parent.ts)
    reply = next(p for p in stack.slack.posts("C0001") if p.thread_ts)
    stack.react("reaction_added", reaction="eyes", channel="C0001", ts=reply.ts)
    rows = _wait_feedback(stack, 1)
    assert [(r["message_ts"], r["reaction"]) for r in rows] == [(reply.ts, "eyes")]


def test_search_answers_ephemerally_with_best_paper_first(stack):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    _, reply = stack.command("search contrastive loss temperature")
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Results 1–5")
    first_title = reply["blocks"][2]["text"]["text"]
    assert "Understanding the Behaviour of Contrastive Loss" in first_title
    more = [b for b in reply["blocks"] if b["type"] == "actions"]
    assert more[0]["elements"][0]["value"] == "5:contrastive loss temperature"


def test_search_nothing_found_and_bad_filter(stack):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    _, reply = stack.command("search quantum chromodynamics lattice")
    assert "Nothing found" in reply["text"]
    _, reply = stack.command("search contrastive since:yesterdayish")
    assert "since:30d" in reply["text"]


def test_cli_search_json(stack):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    rows = stack.cli_json("search", "contrastive", "loss", "temperature", "--json", "--limit", "3")
    assert rows[0]["id"] == "2407.20005"
    assert set(rows[0]) >= {"id", "title", "score", "url"}
    assert rows[0]["url"] == "https://huggingface.co/papers/2407.20005"
    assert len(rows) == 3


def _click(stack, value: str) -> dict:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0001", "username": "ada", "name": "ada", "team_id": "T0001"},
        "api_app_id": "A0001",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": "1.2",
            "channel_id": "C0001",
            "is_ephemeral": True,
        },
        "trigger_id": "1.2.valid",
        "team": {"id": "T0001", "domain": "papers-test"},
        "channel": {"id": "C0001", "name": "general"},
        "response_url": stack.slack.response_url(99),
        "actions": [
            {
                "action_id": "search_more",
                "block_id": "b",
                "value": value,
                "type": "button",
                "text": {"type": "plain_text", "text": "More results"},
                "action_ts": "1596530385.194939",
            }
        ],
    }
    before = len(stack.slack.calls("response_url"))
    response = post_signed(stack.url, "payload=" + quote(json.dumps(payload)), SECRET)
    assert response.status_code == 200
    return stack.slack.wait_for("response_url", before + 1)[-1].params


def test_more_results_button_shows_the_next_page(stack):
    assert stack.cli("fetch", "--date", DAY)[0] == 0
    reply = _click(stack, "5:contrastive learning")
    assert reply["text"].startswith("Results 6–10 for “contrastive learning”")
    assert reply["replace_original"] is True
    older = _click(stack, json.dumps({"q": "contrastive learning", "o": 5}))  # earlier form
    assert older["text"] == reply["text"]
    expired = _click(stack, "not json")
    assert "expired" in expired["text"]


def test_liked_lists_the_weeks_most_liked_papers(stack):
    replies = _digest(stack)
    _, reply = stack.command("liked")
    assert "No paper got a 👍" in reply["text"]
    first, second = replies[0], replies[1]
    for user in ("U0002", "U0003"):
        stack.react("reaction_added", reaction="heart", channel="C0001", ts=second.ts, user=user)
    stack.react("reaction_added", reaction="+1", channel="C0001", ts=first.ts)
    stack.react("reaction_added", reaction="-1", channel="C0001", ts=first.ts, user="U0004")
    _wait_feedback(stack, 4)
    _, reply = stack.command("liked")
    lines = reply["text"].splitlines()
    assert second.text.rsplit("/", 1)[-1] in lines[1] and lines[1].endswith("+2")
    assert len(lines) == 2  # the first paper nets zero


def test_reactions_lift_similar_papers_in_the_next_digest(stack, seed_items):
    contrastive = {
        "2407.20001",
        "2407.20005",
        "2407.20015",
        "2407.20029",
        "2407.20069",
        "2407.20045",
        "2407.20007",
        "2407.20033",
    }
    stack.hf.set_day("2024-07-29", [i for i in seed_items if i["paper"]["id"] in contrastive])
    stack.hf.set_day("2024-07-30", [i for i in seed_items if i["paper"]["id"] not in contrastive])
    stack.command("subscribe learning", wait="post")
    assert stack.cli("digest", "--date", "2024-07-29")[0] == 0
    liked = [p for p in stack.slack.posts("C0001") if p.thread_ts]
    for reply in liked:
        stack.react("reaction_added", reaction="fire", channel="C0001", ts=reply.ts)
    assert len(_wait_feedback(stack, len(liked))) == len(liked)
    before = len(stack.slack.posts("C0001"))
    code, _, err = stack.cli("digest", "--date", "2024-07-30")
    assert code == 0, err
    day_two = [p for p in stack.slack.posts("C0001")[before:] if p.thread_ts]
    assert day_two
    assert any("lifted by this channel's reactions" in json.dumps(p.blocks) for p in day_two)


def test_a_late_redelivery_of_an_add_does_not_undo_a_removal(stack):
    reply = _digest(stack)[0]
    stack.react("reaction_added", reaction="+1", channel="C0001", ts=reply.ts, event_id="EvA")
    assert len(_wait_feedback(stack, 1)) == 1
    stack.react("reaction_removed", reaction="+1", channel="C0001", ts=reply.ts, event_id="EvB")
    assert _wait_feedback(stack, 0) == []
    stack.react(
        "reaction_added", reaction="+1", channel="C0001", ts=reply.ts, event_id="EvA", retry_num=2
    )
    deadline = time.monotonic() + 1.0  # a stored redelivery would show within milliseconds
    while time.monotonic() < deadline:
        assert stack.cli_json("feedback", "--json") == []
        time.sleep(0.05)
