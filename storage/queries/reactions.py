"""Reactions on delivered papers, and Slack event ids already handled."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlmodel import Session, col, select

from storage.models import (
    Delivery,
    Reaction,
    SlackEvent,
    utcnow,
)
from storage.queries._common import _insert_ignore

# --- reactions ----------------------------------------------------------------------------


def first_sight_of_event(event_id: str, team_id: str, *, session: Session) -> bool:
    """Remember a Slack event id; False if it was handled before (a redelivery)."""
    row = {"event_id": event_id, "team_id": team_id, "received_at": utcnow()}
    return _insert_ignore(session, SlackEvent, [row], ("event_id",)) > 0


def add_reaction(delivery: Delivery, user_id: str, reaction: str, *, session: Session) -> bool:
    row = {
        "team_id": delivery.team_id,
        "channel_id": delivery.channel_id,
        "message_ts": delivery.reply_ts,
        "paper_id": delivery.paper_id,
        "user_id": user_id,
        "reaction": reaction,
        "created_at": utcnow(),
    }
    key = ("team_id", "channel_id", "message_ts", "user_id", "reaction")
    return _insert_ignore(session, Reaction, [row], key) > 0


def remove_reaction(delivery: Delivery, user_id: str, reaction: str, *, session: Session) -> bool:
    stmt = delete(Reaction).where(
        col(Reaction.team_id) == delivery.team_id,
        col(Reaction.channel_id) == delivery.channel_id,
        col(Reaction.message_ts) == delivery.reply_ts,
        col(Reaction.user_id) == user_id,
        col(Reaction.reaction) == reaction,
    )
    return (session.execute(stmt).rowcount or 0) > 0


def reactions_in_force(
    *,
    session: Session,
    team_id: str | None = None,
    channel_id: str | None = None,
    since: dt.datetime | None = None,
) -> list[Reaction]:
    stmt = select(Reaction)
    if team_id:
        stmt = stmt.where(Reaction.team_id == team_id)
    if channel_id:
        stmt = stmt.where(Reaction.channel_id == channel_id)
    if since:
        stmt = stmt.where(Reaction.created_at >= since)
    return list(session.exec(stmt.order_by(Reaction.created_at, Reaction.id)))
