"""The App Home tab: on `app_home_opened`, `views.publish` the person's view of the bot.

It lists the workspace's channels that follow topics, but a private channel (or a direct
message) only to someone in it: `conversations.info` says whether a channel is private,
`conversations.members` whether the person is in it, and when Slack cannot tell, the
channel is left out. Its Settings button opens the channel's settings modal, after the
same check. Registered by `bot.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
import logging

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.channel_settings import from_row
from bot.home import channel_cards
from bot.views import OPEN_SETTINGS, home_view, settings_modal
from handlers.context import Deps
from handlers.work import DB_WAIT
from storage import queries
from storage.db import session_scope

logger = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.event("app_home_opened")
    def on_home_opened(ack, body, event, client):
        ack()
        if event.get("tab") != "home" or not event.get("user"):
            return
        team_id, user_id = body.get("team_id") or "", event["user"]
        deps.work.submit(lambda: publish_home(deps, client, team_id, user_id), "app_home_opened")

    @app.action(OPEN_SETTINGS)
    def on_open_settings(ack, body, action, client):
        ack()
        deps.work.submit(lambda: _open_settings(deps, body, action, client), "open_settings")


def _open_settings(deps: Deps, body: dict, action: dict, client: WebClient) -> None:
    """The settings modal of the channel a Home tab button names, for someone who can see it."""
    team_id = (body.get("team") or {}).get("id") or ""
    user_id = (body.get("user") or {}).get("id") or ""
    channel_id = str(action.get("value") or "")
    try:
        with session_scope(deps.engine, wait=DB_WAIT) as session:
            followed = queries.subscribed_channels(
                session=session, team_id=team_id, channel_id=channel_id
            )
            row = queries.channel_settings(team_id, channel_id, session=session)
        if not followed or not can_see(client, channel_id, user_id):
            logger.warning("settings of %s refused to %s", channel_id, user_id)
            return
        view = settings_modal(from_row(row, deps.settings), team_id, channel_id)
        client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        logger.warning("could not open the settings: %s", exc.response.get("error"))


def publish_home(deps: Deps, client: WebClient, team_id: str, user_id: str) -> None:
    now = dt.datetime.now(dt.UTC)
    with session_scope(deps.engine) as session:
        cards = channel_cards(team_id, session=session, settings=deps.settings, now=now)
    cards = [card for card in cards if can_see(client, card.channel_id, user_id)]
    links = {}
    for card in cards:
        if card.last_digest is not None:
            try:
                answer = client.chat_getPermalink(
                    channel=card.channel_id, message_ts=card.last_digest[1]
                )
                links[card.channel_id] = answer["permalink"]
            except SlackApiError as exc:
                logger.info("no permalink for %s: %s", card.channel_id, exc.response.get("error"))
    client.views_publish(user_id=user_id, view=home_view(cards, links))


def can_see(client: WebClient, channel_id: str, user_id: str) -> bool:
    """True for a public channel, or a private one `user_id` is in; False when unsure."""
    try:
        info = client.conversations_info(channel=channel_id)["channel"]
        if info.get("is_channel") and not info.get("is_private"):
            return True
        cursor = None
        while True:
            page = client.conversations_members(channel=channel_id, cursor=cursor, limit=200)
            if user_id in page.get("members", []):
                return True
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return False
    except SlackApiError as exc:
        logger.info("cannot tell who sees %s: %s", channel_id, exc.response.get("error"))
        return False
