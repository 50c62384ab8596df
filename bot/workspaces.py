"""Workspaces: which bot token speaks for which Slack workspace, and forgetting one.

With `SLACK_BOT_TOKEN` one client serves the one workspace. With `SLACK_CLIENT_ID` each
workspace installs the app through Bolt's OAuth flow, and its bot token is kept in
slack_sdk's SQLAlchemy installation store in the bot's own database; `client_for` gives
the client of a workspace's own token (None once it uninstalled the app or revoked the
token). OAuth states live in the same database, signed with `SLACK_STATE_SECRET`. An
uninstalled workspace's rows stay for `PURGE_GRACE_DAYS` (a reinstall keeps them), then
`papers-bot purge` deletes them. Called by `bot.app`, `bot.server`, `bot.cli` and
`handlers.installs`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from storage import queries

# What the app asks for when installed (the same as app.yaml; the README says why each).
BOT_SCOPES = ("chat:write", "commands", "reactions:read", "channels:read", "groups:read")
PURGE_GRACE_DAYS = 30
STATE_SECONDS = 600


class Installations(SQLAlchemyInstallationStore):
    """slack_sdk's store; installing again lifts a workspace's removal."""

    def save(self, installation: Installation) -> None:
        super().save(installation)
        with Session(self.engine) as session:
            queries.clear_removal(installation.team_id or "", session=session)
            session.commit()


class SignedStates(SQLAlchemyOAuthStateStore):
    """OAuth states in the database, each handed out signed with SLACK_STATE_SECRET: a
    state this deployment did not issue is refused before it is looked up."""

    def __init__(self, secret: str, *, engine: Engine) -> None:
        super().__init__(expiration_seconds=STATE_SECONDS, engine=engine)
        self._key = secret.encode()

    def _sign(self, state: str) -> str:
        return hmac.new(self._key, state.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, *args, **kwargs) -> str:
        state = super().issue(*args, **kwargs)
        return f"{state}.{self._sign(state)}"

    def consume(self, state: str) -> bool:
        raw, _, signature = state.rpartition(".")
        if not raw or not hmac.compare_digest(signature, self._sign(raw)):
            return False
        return super().consume(raw)


def installations(settings: Settings, engine: Engine) -> Installations:
    return Installations(client_id=settings.slack_client_id or "", engine=engine)


def client_for(
    settings: Settings, engine: Engine, shared: WebClient
) -> Callable[[str], WebClient | None]:
    """The Web API client of each workspace: `shared` for every one in single-token mode;
    with OAuth, one with the workspace's own bot token, or None if it has none."""
    if not settings.oauth:
        return lambda _team: shared
    from bot.app import make_client

    store = installations(settings, engine)

    def lookup(team_id: str) -> WebClient | None:
        bot = store.find_bot(enterprise_id=None, team_id=team_id)
        if bot is None or not bot.bot_token:
            return None
        return make_client(settings, token=bot.bot_token)

    return lookup


def remove(settings: Settings, engine: Engine, team_id: str, reason: str) -> None:
    """Forget a workspace's tokens and stop its digests now; its rows wait for `purge`."""
    installations(settings, engine).delete_all(enterprise_id=None, team_id=team_id)
    with Session(engine) as session:
        queries.record_removal(team_id, reason, session=session)
        session.commit()


def purge(engine: Engine, *, now: dt.datetime, grace_days: int = PURGE_GRACE_DAYS) -> dict:
    """Delete every row of the workspaces removed at least `grace_days` ago; returns
    {team id: rows deleted}."""
    cutoff = now - dt.timedelta(days=grace_days)
    deleted = {}
    with Session(engine) as session:
        for team_id in queries.removed_before(cutoff, session=session):
            deleted[team_id] = queries.delete_workspace_rows(team_id, session=session)
        session.commit()
    return deleted
