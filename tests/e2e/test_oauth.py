"""Installs in many workspaces: Bolt's OAuth flow over HTTP against the fake Slack.

Two workspaces install the app through `/slack/install` and `/slack/oauth_redirect`
(`oauth.v2.access` and `auth.test` go to SLACK_API_URL, the fake); each gets its own
digest, posted with its own token. Uninstalling one deletes its tokens and stops its
digests at once while the other goes on; `papers-bot purge` deletes its rows after the
grace period. A state this deployment did not sign installs nothing.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from sqlalchemy import text
from sqlmodel import Session

from bot.app import make_client
from bot.jobs import daily_job
from bot.settings import Settings, SettingsError
from bot.workspaces import client_for, installations
from storage import queries
from tests.e2e.conftest import DAY, OAUTH_ENV, oauth_install, running_stack
from tests.fakes.slack_requests import post_signed, slash_command_body

CLIENT_ID = OAUTH_ENV["SLACK_CLIENT_ID"]
SECRET = "test-signing-secret"
TEAMS = {"T0AAA": ("xoxb-aaa-token", "C0AAA"), "T0BBB": ("xoxb-bbb-token", "C0BBB")}
MONDAY_0905 = dt.datetime.fromisoformat(f"{DAY}T09:05:00+00:00")


@pytest.fixture
def oauth(db_url, seed_items, tmp_path, monkeypatch, capsys):
    with running_stack(db_url, seed_items, tmp_path, monkeypatch, capsys, **OAUTH_ENV) as stack:
        yield stack


def install(stack, team: str, *, state: str | None = None):
    return oauth_install(stack, team, TEAMS[team][0], state=state)


def subscribe(stack, team: str, topic: str) -> None:
    _, channel = TEAMS[team]
    before = len(stack.slack.calls("chat.postMessage"))
    body = slash_command_body(
        f"subscribe {topic}",
        team_id=team,
        channel_id=channel,
        response_url=stack.slack.response_url(team),
    )
    assert post_signed(stack.url, body, SECRET).status_code == 200
    stack.slack.wait_for("chat.postMessage", before + 1, timeout=10)


def tokens_used(stack, channel: str) -> set[str]:
    return {
        stack.slack.token_of(c)
        for c in stack.slack.calls("chat.postMessage")
        if c.params.get("channel") == channel
    }


def run_job(stack, now: dt.datetime):
    return daily_job(
        engine=stack.engine,
        client=make_client(stack.settings),
        settings=stack.settings,
        archive=stack.archive,
        now=now,
        client_for=client_for(stack.settings, stack.engine, make_client(stack.settings)),
    )


def test_two_workspaces_install_and_each_gets_its_digest_with_its_own_token(oauth):
    for team in TEAMS:
        done = install(oauth, team)
        assert done.status_code == 200, done.text
    exchanges = oauth.slack.calls("oauth.v2.access")
    assert len(exchanges) == 2 and all(c.ok for c in exchanges)
    store = installations(oauth.settings, oauth.engine)
    for team, (token, _) in TEAMS.items():
        assert store.find_bot(enterprise_id=None, team_id=team).bot_token == token

    subscribe(oauth, "T0AAA", "contrastive learning")
    subscribe(oauth, "T0BBB", "large language models")
    summary = run_job(oauth, MONDAY_0905)
    assert summary is not None and not summary.failed
    assert sorted(summary.posted_channels) == ["C0AAA", "C0BBB"]
    for token, channel in TEAMS.values():
        parents = [p for p in oauth.slack.posts(channel) if p.thread_ts is None]
        assert any("new paper" in p.text for p in parents), channel
        assert tokens_used(oauth, channel) == {token}  # confirmation and digest alike


def test_uninstall_stops_one_workspace_at_once_and_purge_deletes_it_later(oauth):
    for team in TEAMS:
        assert install(oauth, team).status_code == 200
    subscribe(oauth, "T0AAA", "contrastive learning")
    subscribe(oauth, "T0BBB", "large language models")
    event = (
        '{"token": "verification_token", "team_id": "T0AAA", "api_app_id": "A0001", '
        '"event": {"type": "app_uninstalled", "event_ts": "1722243000.000100"}, '
        '"type": "event_callback", "event_id": "Ev0UNINSTALL", "event_time": 1722243000}'
    )
    assert post_signed(oauth.url, event, SECRET).status_code == 200
    store = installations(oauth.settings, oauth.engine)
    for _ in range(200):  # the listener runs after the ack; its last step records the removal
        with Session(oauth.engine) as session:
            if queries.removed_before(dt.datetime.now(dt.UTC), session=session):
                break
        time.sleep(0.05)
    assert store.find_bot(enterprise_id=None, team_id="T0AAA") is None
    assert store.find_installation(enterprise_id=None, team_id="T0AAA") is None
    assert store.find_bot(enterprise_id=None, team_id="T0BBB") is not None

    posted_a = len(oauth.slack.posts("C0AAA"))
    summary = run_job(oauth, MONDAY_0905)
    assert summary is not None
    assert summary.posted_channels == ["C0BBB"]
    assert len(oauth.slack.posts("C0AAA")) == posted_a  # nothing more for the uninstalled one

    code, out, err = oauth.cli("purge")
    assert code == 0, err
    assert "nothing deleted" in out
    with Session(oauth.engine) as session:
        assert queries.channel_subscriptions("T0AAA", "C0AAA", session=session)
    with oauth.engine.begin() as conn:  # the uninstall was 31 days ago
        conn.execute(
            text("UPDATE workspace_removals SET removed_at = :at"),
            {"at": dt.datetime.now(dt.UTC) - dt.timedelta(days=31)},
        )
    code, out, err = oauth.cli("purge")
    assert code == 0, err
    assert "workspace T0AAA:" in out and "T0BBB" not in out
    with Session(oauth.engine) as session:
        assert queries.channel_subscriptions("T0AAA", "C0AAA", session=session) == []
        assert queries.channel_subscriptions("T0BBB", "C0BBB", session=session)
        assert queries.get_digest("T0BBB", "C0BBB", dt.date.fromisoformat(DAY), session=session)


def test_a_state_not_signed_here_installs_nothing(oauth):
    done = install(oauth, "T0AAA", state="0f6a7c1e-1111-2222-3333-444455556666.deadbeef")
    assert done.status_code != 200
    assert oauth.slack.calls("oauth.v2.access") == []
    store = installations(oauth.settings, oauth.engine)
    assert store.find_bot(enterprise_id=None, team_id="T0AAA") is None


def test_oauth_settings_are_checked():
    env = {"SLACK_CLIENT_ID": CLIENT_ID}
    settings = Settings.from_env(env, env_file=None)
    assert settings.oauth
    assert settings.missing_for_slack(http=True) == [
        "SLACK_SIGNING_SECRET",
        "SLACK_CLIENT_SECRET",
        "SLACK_STATE_SECRET",
    ]
    with pytest.raises(SettingsError, match="needs HTTP mode"):
        Settings.from_env({**env, "SLACK_APP_TOKEN": "xapp-1"}, env_file=None)
    shown = repr(Settings.from_env({**env, "SLACK_CLIENT_SECRET": "s3cr3t"}, env_file=None))
    assert "s3cr3t" not in shown
