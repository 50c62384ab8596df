"""Per-channel settings, scheduled runs and channel health."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage.models import (
    ChannelRun,
    ChannelSettings,
    ChannelState,
    Digest,
    FetchedDay,
    utcnow,
)
from storage.queries._common import _insert

# --- channel settings and scheduled runs -------------------------------------------------


def channel_settings(team_id: str, channel_id: str, *, session: Session) -> ChannelSettings | None:
    stmt = select(ChannelSettings).where(
        ChannelSettings.team_id == team_id, ChannelSettings.channel_id == channel_id
    )
    return session.exec(stmt).first()


def all_channel_settings(*, session: Session) -> dict[tuple[str, str], ChannelSettings]:
    return {(r.team_id, r.channel_id): r for r in session.exec(select(ChannelSettings))}


def save_channel_settings(
    team_id: str, channel_id: str, values: dict, user_id: str, *, session: Session
) -> None:
    """Store a channel's settings (the columns of `ChannelSettings`), replacing older ones."""
    row = {**values, "updated_by": user_id, "updated_at": utcnow()}
    stmt = _insert(session)(ChannelSettings.__table__).values(
        team_id=team_id, channel_id=channel_id, **row
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["team_id", "channel_id"], set_={k: stmt.excluded[k] for k in row}
    )
    session.execute(stmt)


def channel_runs_since(
    day: dt.date, *, session: Session
) -> dict[tuple[str, str, dt.date], ChannelRun]:
    """Scheduled runs of every channel for local days from `day` on."""
    stmt = select(ChannelRun).where(ChannelRun.run_date >= day)
    return {(r.team_id, r.channel_id, r.run_date): r for r in session.exec(stmt)}


def mark_run_attempted(
    team_id: str, channel_id: str, day: dt.date, at: dt.datetime, *, session: Session
) -> None:
    row = {"team_id": team_id, "channel_id": channel_id, "run_date": day, "attempted_at": at}
    stmt = _insert(session)(ChannelRun.__table__).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["team_id", "channel_id", "run_date"], set_={"attempted_at": at}
    )
    session.execute(stmt)


def mark_run_finished(
    team_id: str, channel_id: str, day: dt.date, at: dt.datetime, *, session: Session
) -> None:
    stmt = (
        update(ChannelRun)
        .where(
            col(ChannelRun.team_id) == team_id,
            col(ChannelRun.channel_id) == channel_id,
            col(ChannelRun.run_date) == day,
            col(ChannelRun.finished_at).is_(None),
        )
        .values(finished_at=at)
    )
    session.execute(stmt)


def last_digest_date(
    team_id: str, channel_id: str, before: dt.date, *, session: Session
) -> dt.date | None:
    stmt = select(func.max(Digest.digest_date)).where(
        Digest.team_id == team_id, Digest.channel_id == channel_id, Digest.digest_date < before
    )
    return session.exec(stmt).one()


def last_posted_digest(team_id: str, channel_id: str, *, session: Session) -> Digest | None:
    """The channel's newest digest whose parent message Slack accepted."""
    stmt = select(Digest).where(
        Digest.team_id == team_id,
        Digest.channel_id == channel_id,
        col(Digest.parent_ts).is_not(None),
    )
    return session.exec(stmt.order_by(col(Digest.digest_date).desc())).first()


def fetched_at(source: str, day: dt.date, *, session: Session) -> dt.datetime | None:
    """When `day` was last read from `source`, if ever."""
    stmt = select(FetchedDay.fetched_at).where(FetchedDay.source == source, FetchedDay.day == day)
    return session.exec(stmt).first()


# --- channel health -----------------------------------------------------------------------


def channel_state(team_id: str, channel_id: str, *, session: Session) -> ChannelState | None:
    stmt = select(ChannelState).where(
        ChannelState.team_id == team_id, ChannelState.channel_id == channel_id
    )
    return session.exec(stmt).first()


def mark_channel_failed(team_id: str, channel_id: str, error: str, *, session: Session) -> None:
    state = channel_state(team_id, channel_id, session=session)
    if state is None:
        state = ChannelState(team_id=team_id, channel_id=channel_id)
        session.add(state)
    state.error, state.failed_at, state.failures = error, utcnow(), state.failures + 1


def clear_channel_failure(team_id: str, channel_id: str, *, session: Session) -> bool:
    stmt = (
        update(ChannelState)
        .where(
            col(ChannelState.team_id) == team_id,
            col(ChannelState.channel_id) == channel_id,
            col(ChannelState.error).is_not(None),
        )
        .values(error=None, failures=0)
    )
    return (session.execute(stmt).rowcount or 0) > 0


def failing_channels(*, session: Session) -> list[ChannelState]:
    stmt = select(ChannelState).where(col(ChannelState.error).is_not(None))
    return list(session.exec(stmt.order_by(ChannelState.team_id, ChannelState.channel_id)))
