"""Workspaces that removed the app, and purging their rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete
from sqlmodel import Session, col, select

from storage.models import (
    ChannelRun,
    ChannelSettings,
    ChannelState,
    Delivery,
    Digest,
    Reaction,
    SlackEvent,
    Subscription,
    WorkspaceRemoval,
    utcnow,
)
from storage.queries._common import _insert_ignore

# --- workspaces that left ---------------------------------------------------------------


def record_removal(team_id: str, reason: str, *, session: Session) -> None:
    """Remember when a workspace uninstalled the app (the first time, until it reinstalls)."""
    row = {"team_id": team_id, "removed_at": utcnow(), "reason": reason[:32]}
    _insert_ignore(session, WorkspaceRemoval, [row], ("team_id",))


def clear_removal(team_id: str, *, session: Session) -> None:
    session.execute(delete(WorkspaceRemoval).where(col(WorkspaceRemoval.team_id) == team_id))


def removed_before(moment: dt.datetime, *, session: Session) -> list[str]:
    stmt = select(WorkspaceRemoval.team_id).where(WorkspaceRemoval.removed_at <= moment)
    return list(session.exec(stmt.order_by(WorkspaceRemoval.team_id)))


# Every table whose rows belong to one workspace, children before parents.
WORKSPACE_TABLES = (
    Reaction,
    Delivery,
    Digest,
    Subscription,
    ChannelSettings,
    ChannelRun,
    ChannelState,
    SlackEvent,
    WorkspaceRemoval,
)


def delete_workspace_rows(team_id: str, *, session: Session) -> int:
    """Delete everything stored about one workspace; returns the rows deleted."""
    total = 0
    for model in WORKSPACE_TABLES:
        stmt = delete(model).where(model.__table__.c.team_id == team_id)
        total += session.execute(stmt).rowcount or 0
    return total
