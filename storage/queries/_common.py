"""Helpers shared by the query modules: the dialect's INSERT with ON CONFLICT."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def _insert(session: Session):
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _insert_ignore(session: Session, model, rows: list[dict], conflict: Sequence[str]) -> int:
    """INSERT rows, skipping those that hit the unique key `conflict`; returns rows inserted.

    The rows go as parameters of one statement, compiled once (and cached): SQLAlchemy
    sends them in batches of multi-row VALUES, which costs far less than compiling a
    statement with every value in it."""
    if not rows:
        return 0
    table = model.__table__
    stmt = (
        _insert(session)(table)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c[conflict[0]])
    )
    return len(session.execute(stmt, rows).all())
