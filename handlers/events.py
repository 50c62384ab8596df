"""Reaction events: emoji on a digest reply become feedback on that paper.

`reaction_added` stores the reaction (skin tones folded into the base emoji),
`reaction_removed` deletes it. Reactions on anything but a paper reply the bot posted are
ignored. Slack redelivers events it thinks were missed (`X-Slack-Retry-Num`); the event id
is remembered, so a redelivery changes nothing. Ids and names longer than their columns
are not Slack's and are ignored. Registered by `bot.app.create_app`.
"""

from __future__ import annotations

import logging

from slack_bolt import App
from sqlalchemy.exc import OperationalError

from bot.matching.feedback import base_reaction
from handlers.context import Deps
from handlers.work import DB_WAIT
from storage import queries
from storage.checks import fits
from storage.db import session_scope
from storage.models import Reaction, SlackEvent

logger = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.event("reaction_added")
    def on_reaction_added(ack, body, event):
        ack()
        deps.work.submit(lambda: _store(deps, body, event, added=True), "reaction_added")

    @app.event("reaction_removed")
    def on_reaction_removed(ack, body, event):
        ack()
        deps.work.submit(lambda: _store(deps, body, event, added=False), "reaction_removed")


def _store(deps: Deps, body: dict, event: dict, *, added: bool) -> None:
    item = event.get("item") or {}
    if item.get("type") != "message" or not event.get("user") or not event.get("reaction"):
        return
    team_id = body.get("team_id") or ""
    event_id = body.get("event_id") or f"{event.get('event_ts')}:{event['user']}"
    reaction = base_reaction(str(event["reaction"]))
    values = [
        (team_id, Reaction.team_id),
        (item.get("channel", ""), Reaction.channel_id),
        (item.get("ts", ""), Reaction.message_ts),
        (event["user"], Reaction.user_id),
        (reaction, Reaction.reaction),
        (event_id, SlackEvent.event_id),
    ]
    if not all(fits(value, column) for value, column in values):
        logger.info("ignored a %s with an id or name too long to be Slack's", event.get("type"))
        return
    try:
        with session_scope(deps.engine, wait=DB_WAIT) as session:
            delivery = queries.delivery_for_message(
                team_id, item.get("channel", ""), item.get("ts", ""), session=session
            )
            if delivery is None:
                return  # not one of our paper replies
            if not queries.first_sight_of_event(event_id, team_id, session=session):
                return  # a redelivery
            if added:
                queries.add_reaction(delivery, event["user"], reaction, session=session)
            else:
                queries.remove_reaction(delivery, event["user"], reaction, session=session)
    except OperationalError as exc:  # locked past DB_WAIT: Slack does not resend it
        logger.warning("could not store %s: %s", event.get("type"), str(exc.orig)[:200])
    except Exception:
        logger.exception("could not store %s", event.get("type"))
