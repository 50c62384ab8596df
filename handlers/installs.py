"""A workspace leaving: `app_uninstalled` and `tokens_revoked` (OAuth installs only).

Either event deletes the workspace's stored tokens at once, so no digest goes out for it
from then on, and records when it left: its subscriptions, reactions and the rest are
deleted by `papers-bot purge` after the grace period (`bot.workspaces`). A revoked user
token alone changes nothing (the bot uses bot tokens only). With a single
SLACK_BOT_TOKEN there is nothing stored to delete: the event is only logged. Registered by
`bot.app.create_app`.
"""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.workspaces import remove
from handlers.context import Deps

logger = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.event("app_uninstalled")
    def on_uninstalled(ack, body):
        ack()
        team_id = body.get("team_id") or ""
        deps.work.submit(lambda: _remove(deps, team_id, "app_uninstalled"), "app_uninstalled")

    @app.event("tokens_revoked")
    def on_tokens_revoked(ack, body, event):
        ack()
        if (event.get("tokens") or {}).get("bot"):
            team_id = body.get("team_id") or ""
            deps.work.submit(lambda: _remove(deps, team_id, "tokens_revoked"), "tokens_revoked")


def _remove(deps: Deps, team_id: str, reason: str) -> None:
    if not team_id:
        return
    if not deps.settings.oauth:
        logger.warning("workspace %s: %s; SLACK_BOT_TOKEN no longer works there", team_id, reason)
        return
    try:
        remove(deps.settings, deps.engine, team_id, reason)
        logger.info("workspace %s: %s; tokens deleted, digests stopped", team_id, reason)
    except Exception:
        logger.exception("could not remove workspace %s", team_id)
