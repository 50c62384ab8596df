"""Channel subscriptions: the topics each channel follows."""

from __future__ import annotations

from sqlalchemy import delete, false, text
from sqlmodel import Session, col, select

from storage.models import (
    Subscription,
    utcnow,
)
from storage.queries._common import _insert_ignore

# --- subscriptions ------------------------------------------------------------------------


def channel_subscriptions(team_id: str, channel_id: str, *, session: Session) -> list[Subscription]:
    stmt = select(Subscription).where(
        Subscription.team_id == team_id, Subscription.channel_id == channel_id
    )
    return list(session.exec(stmt.order_by(Subscription.id)))


def lock_channel(team_id: str, channel_id: str, *, session: Session) -> None:
    """Hold the channel's subscriptions until this transaction ends, so a check of its topics
    and the insert that follows are one step for concurrent commands (and replicas).

    PostgreSQL takes a transaction-scoped advisory lock on the channel; SQLite, which has one
    writer at a time anyway, takes the database's write lock with a write that changes nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        key = f"subscriptions:{team_id}:{channel_id}"
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )
    else:
        session.execute(delete(Subscription).where(false()))


def add_subscription(
    team_id: str, channel_id: str, topic: str, topic_key: str, user_id: str, *, session: Session
) -> int | None:
    """Store a topic for a channel; its id, or None if the channel already follows it."""
    row = {
        "team_id": team_id,
        "channel_id": channel_id,
        "topic": topic,
        "topic_key": topic_key,
        "created_by": user_id,
        "created_at": utcnow(),
    }
    if not _insert_ignore(session, Subscription, [row], ("team_id", "channel_id", "topic_key")):
        return None
    stmt = select(Subscription.id).where(
        Subscription.team_id == team_id,
        Subscription.channel_id == channel_id,
        Subscription.topic_key == topic_key,
    )
    return session.exec(stmt).one()


def delete_subscription(subscription_id: int, *, session: Session) -> bool:
    stmt = delete(Subscription).where(col(Subscription.id) == subscription_id)
    return (session.execute(stmt).rowcount or 0) > 0


def subscribed_channels(
    *, session: Session, channel_id: str | None = None, team_id: str | None = None
) -> dict[tuple[str, str], list[Subscription]]:
    """Every (team, channel) with at least one topic, with its topics in the order added."""
    stmt = select(Subscription)
    if channel_id:
        stmt = stmt.where(Subscription.channel_id == channel_id)
    if team_id:
        stmt = stmt.where(Subscription.team_id == team_id)
    channels: dict[tuple[str, str], list[Subscription]] = {}
    for sub in session.exec(
        stmt.order_by(Subscription.team_id, Subscription.channel_id, Subscription.id)
    ):
        channels.setdefault((sub.team_id, sub.channel_id), []).append(sub)
    return channels
