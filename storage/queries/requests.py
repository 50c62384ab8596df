"""Replay memory: signed requests and event ids seen recently."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlmodel import Session, col

from storage.models import (
    SeenRequest,
    SlackEvent,
)
from storage.queries._common import _insert_ignore

# --- replayed requests and redelivered events ---------------------------------------------

REQUEST_WINDOW = dt.timedelta(minutes=5)  # Slack's: an older signed timestamp is refused
EVENT_MEMORY = dt.timedelta(days=1)  # Slack redelivers an event within the hour


def first_sight_of_request(signature: str, sent_at: dt.datetime, *, session: Session) -> bool:
    """Remember a signed request; False if the same signature was seen before (a replay)."""
    row = {"signature": signature, "sent_at": sent_at}
    return _insert_ignore(session, SeenRequest, [row], ("signature",)) > 0


def forget_old_requests(now: dt.datetime, *, session: Session) -> int:
    """Drop request signatures Slack's window refuses anyway and event ids past redelivery."""
    gone = session.execute(
        delete(SeenRequest).where(col(SeenRequest.sent_at) < now - 2 * REQUEST_WINDOW)
    ).rowcount
    gone += session.execute(
        delete(SlackEvent).where(col(SlackEvent.received_at) < now - EVENT_MEMORY)
    ).rowcount
    return gone or 0
