"""The App Home tab over signed events: each channel's topics, next and last digest, and its
most-liked papers, published with `views.publish`; a private channel only for its members
(and for nobody when Slack cannot tell); its Settings button opens the channel's modal."""

from __future__ import annotations

import json

from sqlmodel import Session

from storage import queries
from tests.e2e.conftest import DAY
from tests.fakes.slack_requests import app_home_opened_body, block_actions_body
from tests.faults.conftest import subscribe, wait_until

PRIVATE_TOPIC = "recommender systems"


def _home(stack, user: str, team: str = "T0001") -> dict:
    before = len(stack.slack.calls("views.publish"))
    response = stack.interact(app_home_opened_body(user, team_id=team))
    assert response.status_code == 200
    call = stack.slack.wait_for("views.publish", before + 1, timeout=10)[-1]
    assert call.ok, call.response
    assert call.params["user_id"] == user
    view = stack.slack.home(user)
    assert view is not None and view["type"] == "home"
    return view


def _setup(stack):
    stack.command("subscribe contrastive learning", wait="post")
    subscribe(stack, {"C0PRIV": PRIVATE_TOPIC})
    stack.slack.set_members("C0001", ["U0001", "U0002"])
    stack.slack.set_members("C0PRIV", ["U0002"], private=True)
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    reply = next(p for p in stack.slack.posts("C0001") if p.thread_ts)
    response = stack.react("reaction_added", reaction="+1", channel="C0001", ts=reply.ts)
    assert response.status_code == 200
    wait_until(lambda: _reactions(stack), 10, "the reaction stored")  # stored after the ack
    return reply


def _reactions(stack) -> list:
    with Session(stack.engine) as session:
        return queries.reactions_in_force(session=session, team_id="T0001")


def test_home_shows_channels_digests_and_likes_but_not_others_private_channels(stack):
    reply = _setup(stack)
    text = json.dumps(_home(stack, "U0001"))
    assert "<#C0001> follows *contrastive learning*" in text
    assert "Next digest <!date^" in text
    assert "Monday to Friday at 09:00 (UTC)" in text
    parent = next(
        p for p in stack.slack.posts("C0001") if p.thread_ts is None and "new paper" in p.text
    )
    link = f"https://papers-test.slack.com/archives/C0001/p{parent.ts.replace('.', '')}"
    assert f"last digest <{link}|Mon 29 Jul>" in text
    liked_id = reply.text.rsplit("/", 1)[-1]
    assert "Most liked this week" in text and f"papers/{liked_id}|" in text
    assert "C0PRIV" not in text and PRIVATE_TOPIC not in text

    member_view = json.dumps(_home(stack, "U0002"))
    assert f"<#C0PRIV> follows *{PRIVATE_TOPIC}*" in member_view
    assert "<#C0001>" in member_view


def test_a_channel_slack_cannot_describe_is_left_out(stack):
    _setup(stack)
    stack.slack.set_channel_error("C0001", "channel_not_found")
    text = json.dumps(_home(stack, "U0001"))
    assert "<#C0001>" not in text and "*contrastive learning*" not in text, text
    assert "No channel you are in follows a topic yet" in text


def test_another_workspace_sees_none_of_these_channels(stack):
    _setup(stack)
    text = json.dumps(_home(stack, "U0009", team="T0OTHER"))
    assert "C0001" not in text and "C0PRIV" not in text


def test_settings_button_opens_the_modal_only_for_a_channel_the_person_sees(stack):
    _setup(stack)
    view = _home(stack, "U0001")
    opened = len(stack.slack.calls("views.open"))
    click = block_actions_body("open_settings", "C0PRIV", user_id="U0001", view=view)
    assert stack.interact(click).status_code == 200
    click = block_actions_body("open_settings", "C0001", user_id="U0001", view=view)
    assert stack.interact(click).status_code == 200
    calls = stack.slack.wait_for("views.open", opened + 1, timeout=10)
    assert len(calls) == opened + 1  # the private channel's click opened nothing
    modal = stack.slack.opened_views()[-1]
    assert json.loads(modal["private_metadata"]) == {"team": "T0001", "channel": "C0001"}
    click = block_actions_body("open_settings", "C0001", user_id="U0001", team_id="T0OTHER")
    assert stack.interact(click).status_code == 200
    stack.command("list")  # a later request: the other workspace's click has been handled
    assert len(stack.slack.calls("views.open")) == opened + 1
