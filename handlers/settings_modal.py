"""A channel's digest settings: `/papers settings` opens the modal, saving it stores them.

`open_settings` (the `/papers settings` subcommand, also the App Home's button) opens the
modal with `views.open` and the trigger id Slack sent. The submission is checked before
anything is stored: a wrong field is answered in the modal itself
(`response_action: errors`), so a bad value changes nothing. Saved settings are
confirmed in the channel, naming who changed what. Registered by `bot.app.create_app`.
"""

from __future__ import annotations

import json
import logging
import re
from functools import partial

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import OperationalError

from bot.channel_settings import FormError, changes, from_row, parse_form, to_row
from bot.digest import blocks
from bot.views import SETTINGS_CALLBACK, read_settings, settings_modal
from handlers.context import Deps
from handlers.work import DB_WAIT
from storage import queries
from storage.db import session_scope

logger = logging.getLogger(__name__)
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
NOT_SAVED = "The database is busy, so nothing was saved. Please try again in a minute."


def register(app: App, deps: Deps) -> None:
    @app.view(SETTINGS_CALLBACK)
    def on_settings_saved(ack, body, view, client):
        team_id = (body.get("team") or {}).get("id") or ""
        user_id = (body.get("user") or {}).get("id") or ""
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
            channel_id = str(meta["channel"])
        except (ValueError, KeyError, TypeError):
            ack(response_action="errors", errors={"time": "This form has expired; open it again."})
            return
        if meta.get("team") != team_id or not _CHANNEL.match(channel_id):
            ack(response_action="errors", errors={"time": "This form has expired; open it again."})
            return
        try:
            with session_scope(deps.engine, wait=DB_WAIT) as session:
                row = queries.channel_settings(team_id, channel_id, session=session)
                old = from_row(row, deps.settings)
                new = parse_form(read_settings((view.get("state") or {}).get("values") or {}), old)
                queries.save_channel_settings(
                    team_id, channel_id, to_row(new), user_id, session=session
                )
        except FormError as exc:
            ack(response_action="errors", errors=exc.errors)
            return
        except OperationalError:
            logger.warning("could not save the settings of %s: database busy", channel_id)
            ack(response_action="errors", errors={"time": NOT_SAVED})
            return
        ack()
        if said := changes(old, new):
            announce = partial(_announce, client, channel_id, user_id, said, new)
            deps.work.submit(announce, "settings announcement")


def _announce(client: WebClient, channel_id: str, user_id: str, said: list[str], new) -> None:
    """Tell the channel who changed its digest settings, and how."""
    who = f"<@{user_id}>" if user_id else "Someone"
    note = (
        f"{who} changed this channel's digest: {blocks.escape('; '.join(said))}. "
        f"It now comes {blocks.escape(new.describe())}."
    )
    try:
        client.chat_postMessage(channel=channel_id, text=note, blocks=blocks.notice(note)[1])
    except SlackApiError as exc:
        logger.warning(
            "settings of %s saved; could not announce them: %s",
            channel_id,
            exc.response.get("error"),
        )


def open_settings(deps: Deps, command, arg: str, respond, client) -> None:
    """`/papers settings`: the modal of the channel the command came from."""
    team_id, channel_id = command["team_id"], command["channel_id"]
    with session_scope(deps.engine) as session:
        row = queries.channel_settings(team_id, channel_id, session=session)
        schedule = from_row(row, deps.settings)
    try:
        client.views_open(
            trigger_id=command["trigger_id"], view=settings_modal(schedule, team_id, channel_id)
        )
    except SlackApiError as exc:
        logger.warning("views.open failed: %s", exc.response.get("error"))
        respond(
            text="I could not open the settings (Slack said "
            f"`{exc.response.get('error')}`). Please run `/papers settings` again.",
            response_type="ephemeral",
        )
