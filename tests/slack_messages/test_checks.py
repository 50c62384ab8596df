"""The checks themselves: each rule fails on the payload that breaks it."""

from __future__ import annotations

import pytest

from tests.slack_messages.checks import errors_problems, problems, view_problems


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


GOOD = {
    "text": "Results 1–5 for “a &amp; b”",
    "blocks": [
        _section("*<https://huggingface.co/papers/2407.1|A title &lt;x&gt;>*\nAna, Bo et al."),
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "Matched *x* on _y_"}]},
        {"type": "divider"},
        _section("My last digest here failed (`is_archived`): unarchive it, <@U0001>."),
    ],
}


def test_a_good_payload_passes():
    assert problems(GOOD) == []


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": "", "blocks": []}, "no fallback text"),
        ({"text": "x" * 4001}, "fallback text of 4001"),
        ({"text": "🔥" * 2001}, "fallback text of 4002"),  # counted as Slack may count it
        ({"text": "t", "blocks": [_section("x" * 3001)]}, "3000"),
        ({"text": "t", "blocks": [{"type": "divider"}] * 51}, "51 blocks"),
        ({"text": "`/papers unsubscribe <number>`"}, "raw < or >"),
        ({"text": "t", "blocks": [_section("*<https://x.example/a|unclosed*")]}, "raw < or >"),
        ({"text": "Tom & Jerry"}, "raw &"),
        ({"text": "t", "blocks": [_section("<https://x.example/?a=1&b=2|q>")]}, "raw & in"),
        ({"text": "t", "blocks": [_section("*<https://x.example|A*-search>*")]}, "unpaired '*'"),
        ({"text": "*topic_one*, *topic"}, "unpaired '*'"),
        ({"text": "a `b"}, "unpaired '`'"),
        ({"text": "gnp\u202eexe.png"}, "invisible format characters"),
        ({"text": "zero\u200bwidth"}, "invisible format characters"),
        (
            {
                "text": "t",
                "blocks": [
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "action_id": "search_more",
                                "text": {"type": "plain_text", "text": "More results"},
                                "value": "🔥" * 1001,
                            }
                        ],
                    }
                ],
            },
            "value of 2002",
        ),
        (
            {
                "text": "t",
                "blocks": [{"type": "context", "elements": [{"type": "mrkdwn", "text": "x"}] * 11}],
            },
            "10 elements",
        ),
        ({"text": "t", "blocks": [{"type": "no_such_block"}]}, "does not know"),
    ],
)
def test_each_rule_fails_the_payload_that_breaks_it(payload, expected):
    found = problems(payload)
    assert any(expected in p for p in found), found


def _modal(**changed) -> dict:
    modal = {
        "type": "modal",
        "callback_id": "x",
        "title": {"type": "plain_text", "text": "Digest settings"},
        "blocks": [
            {
                "type": "input",
                "block_id": "time",
                "label": {"type": "plain_text", "text": "Time"},
                "element": {"type": "timepicker", "action_id": "time"},
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "of <#C0001> at <!date^1722243600^{time}|09:00 UTC>"}
                ],
            },
        ],
    }
    return {**modal, **changed}


def test_views_pass_and_fail_as_slack_would():
    assert view_problems(_modal()) == []
    assert view_problems({"type": "home", "blocks": [GOOD["blocks"][0]]}) == []
    title = view_problems(_modal(title={"type": "plain_text", "text": "x" * 25}))
    assert any("title" in found for found in title)
    many = view_problems({"type": "home", "blocks": [{"type": "divider"}] * 101})
    assert any("101 blocks" in found for found in many)
    option = {"text": {"type": "plain_text", "text": "o" * 76}, "value": "v"}
    radio = {"type": "radio_buttons", "action_id": "r", "options": [option]}
    label = {"type": "plain_text", "text": "R"}
    block = {"type": "input", "block_id": "r", "label": label, "element": radio}
    assert any("option text" in f for f in view_problems(_modal(blocks=[block])))
    assert (
        errors_problems({"response_action": "errors", "errors": {"time": "Bad."}}, _modal()) == []
    )
    wrong = errors_problems({"response_action": "errors", "errors": {"nope": ""}}, _modal())
    assert len(wrong) == 2
