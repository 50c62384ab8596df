"""Digests and their deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import (
    Delivery,
    Digest,
    utcnow,
)
from storage.queries._common import _insert_ignore

# --- digests and deliveries ---------------------------------------------------------------


def get_digest(team_id: str, channel_id: str, day: dt.date, *, session: Session) -> Digest | None:
    stmt = select(Digest).where(
        Digest.team_id == team_id, Digest.channel_id == channel_id, Digest.digest_date == day
    )
    return session.exec(stmt).first()


def create_digest(
    team_id: str, channel_id: str, day: dt.date, topics: Sequence[str], *, session: Session
) -> Digest:
    """The channel's digest for `day`, created if it does not exist yet."""
    row = {
        "team_id": team_id,
        "channel_id": channel_id,
        "digest_date": day,
        "topics": "\n".join(topics),
        "paper_count": 0,
        "created_at": utcnow(),
    }
    _insert_ignore(session, Digest, [row], ("team_id", "channel_id", "digest_date"))
    digest = get_digest(team_id, channel_id, day, session=session)
    assert digest is not None
    return digest


def plan_deliveries(digest: Digest, rows: Sequence[dict], *, session: Session) -> int:
    """Attach papers to a digest; a paper the channel already has is skipped. Returns added."""
    start = session.exec(
        select(func.count()).select_from(Delivery).where(Delivery.digest_id == digest.id)
    ).one()
    values = [
        {
            "team_id": digest.team_id,
            "channel_id": digest.channel_id,
            "digest_id": digest.id,
            "position": start + i,
            "boosted": False,
            "semantic": False,
            **row,
        }
        for i, row in enumerate(rows)
    ]
    added = _insert_ignore(session, Delivery, values, ("team_id", "channel_id", "paper_id"))
    digest.paper_count = session.exec(
        select(func.count()).select_from(Delivery).where(Delivery.digest_id == digest.id)
    ).one()
    return added


def delivered_or_planned_ids(team_id: str, channel_id: str, *, session: Session) -> set[str]:
    stmt = select(Delivery.paper_id).where(
        Delivery.team_id == team_id, Delivery.channel_id == channel_id
    )
    return set(session.exec(stmt))


def unfinished_digests(team_id: str, channel_id: str, *, session: Session) -> list[Digest]:
    """Digests of the channel with a parent or replies still to post, oldest first."""
    pending = select(Delivery.digest_id).where(col(Delivery.delivered_at).is_(None))
    stmt = select(Digest).where(
        Digest.team_id == team_id,
        Digest.channel_id == channel_id,
        col(Digest.id).in_(pending) | col(Digest.parent_ts).is_(None),
    )
    return list(session.exec(stmt.order_by(Digest.digest_date)))


def digest_deliveries(
    digest_id: int, *, session: Session, pending_only: bool = False
) -> list[Delivery]:
    stmt = select(Delivery).where(Delivery.digest_id == digest_id)
    if pending_only:
        stmt = stmt.where(col(Delivery.delivered_at).is_(None))
    return list(session.exec(stmt.order_by(Delivery.position)))


def delivery_for_message(
    team_id: str, channel_id: str, message_ts: str, *, session: Session
) -> Delivery | None:
    stmt = select(Delivery).where(
        Delivery.team_id == team_id,
        Delivery.channel_id == channel_id,
        Delivery.reply_ts == message_ts,
    )
    return session.exec(stmt).first()


def channel_deliveries(team_id: str, channel_id: str, *, session: Session) -> list[Delivery]:
    stmt = select(Delivery).where(
        Delivery.team_id == team_id,
        Delivery.channel_id == channel_id,
        col(Delivery.delivered_at).is_not(None),
    )
    return list(session.exec(stmt.order_by(Delivery.delivered_at)))


def all_deliveries(*, session: Session) -> list[Delivery]:
    return list(session.exec(select(Delivery).order_by(Delivery.id)))
