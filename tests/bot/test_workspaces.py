"""Workspaces: the OAuth install asks for the manifest's scopes, its states are signed and
used once, and purge deletes only what belongs to a workspace removed long enough ago."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlmodel import Session

from bot.workspaces import BOT_SCOPES, SignedStates, purge
from storage import queries

ROOT = Path(__file__).resolve().parents[2]


def test_install_asks_for_the_manifest_scopes():
    manifest = (ROOT / "app.yaml").read_text()
    block = manifest.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    assert tuple(re.findall(r"^\s+- ([\w:.]+)", block, re.M)) == BOT_SCOPES


def test_states_are_signed_and_used_once(engine):
    states = SignedStates("secret-one", engine=engine)
    state = states.issue()
    raw, _, signature = state.rpartition(".")
    assert len(signature) == 32
    assert not SignedStates("secret-two", engine=engine).consume(state)  # another deployment
    assert not states.consume(f"{raw}.{'0' * 32}")
    assert not states.consume(raw)
    assert states.consume(state)
    assert not states.consume(state)  # once


def test_purge_waits_for_the_grace_period(engine):
    now = dt.datetime.now(dt.UTC)
    with Session(engine) as session:
        for team in ("T0GONE", "T0STAY"):
            queries.add_subscription(
                team, "C1", "graph models", "graph model", "U1", session=session
            )
        queries.record_removal("T0GONE", "app_uninstalled", session=session)
        session.commit()
    assert purge(engine, now=now, grace_days=30) == {}
    deleted = purge(engine, now=now + dt.timedelta(days=31), grace_days=30)
    assert deleted == {"T0GONE": 2}  # its subscription and its removal record
    with Session(engine) as session:
        assert queries.channel_subscriptions("T0GONE", "C1", session=session) == []
        assert queries.channel_subscriptions("T0STAY", "C1", session=session)
        assert queries.removed_before(now + dt.timedelta(days=400), session=session) == []
