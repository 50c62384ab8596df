"""Every query papers-bot runs: the only module that builds SELECT/INSERT/UPDATE statements.

Functions take a keyword-only `session` and leave committing to the caller, except the
lease functions, whose whole point is to be visible to other processes at once.
Called by `bot.*` jobs and `handlers.*` listeners.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, false, func, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from bot.sources import PaperRecord
from storage.models import (
    ArchiveRevision,
    ChannelRun,
    ChannelSettings,
    ChannelState,
    Delivery,
    Digest,
    FetchedDay,
    HarvestPoint,
    JobRun,
    Lease,
    Paper,
    PaperVector,
    Reaction,
    SeenRequest,
    SlackEvent,
    Subscription,
    WorkspaceRemoval,
    utcnow,
)


def _insert(session: Session):
    """The dialect's INSERT, which knows ON CONFLICT (PostgreSQL and SQLite alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _insert_ignore(session: Session, model, rows: list[dict], conflict: Sequence[str]) -> int:
    """INSERT rows, skipping those that hit the unique key `conflict`; returns rows inserted."""
    if not rows:
        return 0
    table = model.__table__
    stmt = (
        _insert(session)(table)
        .values(rows)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c[conflict[0]])
    )
    return len(session.execute(stmt).all())


# --- papers -------------------------------------------------------------------------------


HF_FIELDS = ("upvotes", "ai_summary", "github_repo", "project_page")


def _record_fields(record: PaperRecord) -> dict:
    """The columns a source sets: its text always; HF its links and votes, arXiv categories."""
    fields = {
        "title": record.title,
        "abstract": record.abstract,
        "authors": "\n".join(record.authors),
        "published_at": record.published_at,
    }
    if record.source == "arxiv":
        fields["categories"] = " ".join(record.categories)
        fields["primary_category"] = record.primary_category
    else:
        fields.update(
            upvotes=record.upvotes,
            ai_summary=record.ai_summary,
            github_repo=record.github_repo,
            project_page=record.project_page,
        )
    return fields


def upsert_papers(records: Iterable[PaperRecord], *, session: Session) -> tuple[int, int]:
    """Store papers by arXiv id: one row per paper, whichever sources list it.

    A known paper keeps its first listing day and gains each new source in `sources`.
    arXiv owns the text, authors and categories: a replacement updates them (and so, through
    the text hash, invalidates the paper's vector). Hugging Face owns the upvotes, AI summary
    and links, whichever source came first, and the text only of papers arXiv has not listed.
    New papers go in with ON CONFLICT DO NOTHING, so two replicas storing the same day at
    once both succeed. Returns (new, updated).
    """
    by_id = {r.id: r for r in records}
    if not by_id:
        return 0, 0
    existing = {p.id: p for p in session.exec(select(Paper).where(col(Paper.id).in_(list(by_id))))}
    new = updated = 0
    rows = []
    for record in by_id.values():
        paper = existing.get(record.id)
        fields = _record_fields(record)
        if paper is None:
            rows.append(
                {
                    "id": record.id,
                    "listed_on": record.listed_on,
                    "source": record.source,
                    "sources": record.source,
                    "fetched_at": utcnow(),
                    **fields,
                }
            )
            continue
        known = paper.source_list
        if record.source == "hf" and "arxiv" in known:
            fields = {k: v for k, v in fields.items() if k in HF_FIELDS}
        fields["sources"] = ",".join(sorted({*known, record.source}))
        if any(getattr(paper, k) != v for k, v in fields.items() if k != "published_at"):
            for key, value in fields.items():
                setattr(paper, key, value)
            updated += 1
    if rows:  # raised before the inserts: writers of new papers queue here, not on new rows
        bump_archive_revision(session=session)
    for start in range(0, len(rows), 500):  # SQLite caps the parameters of one statement
        new += _insert_ignore(session, Paper, rows[start : start + 500], ("id",))
    session.flush()
    return new, updated


def bump_archive_revision(*, session: Session) -> None:
    """Raise the archive revision: papers were stored (committed with the caller's transaction)."""
    raised = session.execute(
        update(ArchiveRevision)
        .where(col(ArchiveRevision.id) == 1)
        .values(revision=ArchiveRevision.revision + 1)
    )
    if not raised.rowcount:
        _insert_ignore(session, ArchiveRevision, [{"id": 1, "revision": 1}], ("id",))


def archive_revision(*, session: Session) -> int:
    """The archive revision: it changes whenever another transaction stored new papers."""
    return (
        session.exec(select(ArchiveRevision.revision).where(ArchiveRevision.id == 1)).first() or 0
    )


def get_papers(paper_ids: Sequence[str], *, session: Session) -> dict[str, Paper]:
    if not paper_ids:
        return {}
    rows = session.exec(select(Paper).where(col(Paper.id).in_(list(paper_ids))))
    return {p.id: p for p in rows}


def papers_listed_between(start: dt.date, end: dt.date, *, session: Session) -> list[Paper]:
    stmt = select(Paper).where(Paper.listed_on >= start, Paper.listed_on <= end)
    return list(session.exec(stmt.order_by(Paper.listed_on, Paper.id)))


def paper_ids_listed_since(
    start: dt.date, *, until: dt.date | None = None, session: Session
) -> list[str]:
    """Ids of the papers listed from `start` on (up to `until`, inclusive, if given)."""
    stmt = select(Paper.id).where(Paper.listed_on >= start)
    if until is not None:
        stmt = stmt.where(Paper.listed_on <= until)
    return list(session.exec(stmt))


def iter_index_rows(*, session: Session, batch: int = 5000):
    """(id, title, abstract, authors, upvotes) of every stored paper, streamed in batches."""
    stmt = select(Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.upvotes)
    result = session.exec(stmt.order_by(Paper.id).execution_options(yield_per=batch))
    yield from result


def index_rows_of(paper_ids: Sequence[str], *, session: Session) -> list[tuple]:
    """`iter_index_rows` of these papers (as stored now, whichever source gave what)."""
    stmt = select(Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.upvotes)
    ids = list(dict.fromkeys(paper_ids))
    return [
        row
        for start in range(0, len(ids), IN_LIST)
        for row in session.exec(stmt.where(col(Paper.id).in_(ids[start : start + IN_LIST])))
    ]


def index_rows_fetched_since(since: dt.datetime, *, session: Session) -> list[tuple]:
    """`iter_index_rows` of the papers first stored at or after `since`."""
    stmt = select(Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.upvotes)
    return list(session.exec(stmt.where(Paper.fetched_at >= since).order_by(Paper.id)))


IN_LIST = 1000  # ids per IN (...) list: PostgreSQL takes at most 65,535 parameters


def text_hash(title: str, abstract: str) -> str:
    """Fingerprint of a paper's text, stored beside its vector: a vector whose fingerprint
    is not the paper's current one was computed from an older title or abstract."""
    return hashlib.sha256(f"{title}\x00{abstract}".encode()).hexdigest()[:16]


def _with_vectors(model: str, *columns, paper_ids: Sequence[str] | None):
    """Statements selecting (id, title, abstract, stored text hash or None, *columns) of
    papers joined to their vector from `model`: one over all papers, or one per chunk of
    `paper_ids`."""
    joined = (PaperVector.paper_id == Paper.id) & (PaperVector.model == model)
    stmt = select(Paper.id, Paper.title, Paper.abstract, PaperVector.text_hash, *columns)
    stmt = stmt.join(PaperVector, joined, isouter=True).order_by(Paper.id)
    if paper_ids is None:
        return [stmt.execution_options(yield_per=5000)]
    ids = list(dict.fromkeys(paper_ids))
    return [
        stmt.where(col(Paper.id).in_(ids[start : start + IN_LIST]))
        for start in range(0, len(ids), IN_LIST)
    ]


def papers_without_vector(
    model: str, *, session: Session, paper_ids: Sequence[str] | None = None
) -> list[str]:
    """Ids of the papers, among `paper_ids` (None: all), that have no vector from `model`
    for their current text."""
    return [
        pid
        for stmt in _with_vectors(model, paper_ids=paper_ids)
        for pid, title, abstract, stored in session.exec(stmt)
        if stored != text_hash(title, abstract)
    ]


def paper_texts(paper_ids: Sequence[str], *, session: Session) -> list[tuple[str, str, str]]:
    """(id, title, abstract) of these papers (at most IN_LIST of them), by id."""
    stmt = select(Paper.id, Paper.title, Paper.abstract).where(col(Paper.id).in_(paper_ids))
    return list(session.exec(stmt.order_by(Paper.id)))


def store_vectors(
    model: str, vectors: Sequence[tuple[str, str, bytes]], *, session: Session
) -> None:
    """Save (paper id, text hash, vector bytes) rows, replacing a paper's older vector."""
    table = PaperVector.__table__
    for start in range(0, len(vectors), 500):
        rows = [
            {"paper_id": pid, "model": model, "text_hash": digest, "vector": blob}
            for pid, digest, blob in vectors[start : start + 500]
        ]
        stmt = _insert(session)(table).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["paper_id", "model"],
            set_={"text_hash": stmt.excluded.text_hash, "vector": stmt.excluded.vector},
        )
        session.execute(stmt)
    session.flush()


def vectors_of(model: str, paper_ids: Sequence[str], *, session: Session) -> list[tuple]:
    """(paper id, vector bytes) of the given papers, where `model` encoded their current text."""
    return [
        (pid, vector)
        for stmt in _with_vectors(model, PaperVector.vector, paper_ids=paper_ids)
        for pid, title, abstract, stored, vector in session.exec(stmt)
        if vector is not None and stored == text_hash(title, abstract)
    ]


def recent_vectors(model: str, limit: int, *, session: Session) -> list[tuple]:
    """(paper id, vector bytes) of the `limit` newest papers (by id) encoded by `model`."""
    stmt = select(PaperVector.paper_id, PaperVector.vector).where(PaperVector.model == model)
    return list(session.exec(stmt.order_by(col(PaperVector.paper_id).desc()).limit(limit)))


def count_papers(*, session: Session) -> int:
    return session.exec(select(func.count()).select_from(Paper)).one()


def record_fetched_day(
    source: str, day: dt.date, papers: int, skipped: int, *, session: Session
) -> None:
    """Remember a day read successfully, with its latest counts (an upsert: replicas race)."""
    values = {"source": source, "day": day, "papers": papers, "skipped": skipped}
    stmt = _insert(session)(FetchedDay.__table__).values(**values, fetched_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "day"],
        set_={name: stmt.excluded[name] for name in ("papers", "skipped", "fetched_at")},
    )
    session.execute(stmt)


def fetched_days(source: str, *, session: Session) -> set[dt.date]:
    return set(session.exec(select(FetchedDay.day).where(FetchedDay.source == source)))


def save_harvest_point(
    source: str, day: dt.date, set_spec: str, token: str | None, *, session: Session
) -> None:
    """Remember the token that continues a harvest of `set_spec` on `day`; None: it is done."""
    key = (
        col(HarvestPoint.source) == source,
        col(HarvestPoint.day) == day,
        col(HarvestPoint.set_spec) == set_spec,
    )
    if token is None:
        session.execute(delete(HarvestPoint).where(*key))
        return
    values = {"source": source, "day": day, "set_spec": set_spec, "token": token}
    stmt = _insert(session)(HarvestPoint.__table__).values(**values, saved_at=utcnow())
    stmt = stmt.on_conflict_do_update(
        index_elements=["source", "day", "set_spec"],
        set_={"token": stmt.excluded.token, "saved_at": stmt.excluded.saved_at},
    )
    session.execute(stmt)


def harvest_points(source: str, day: dt.date, *, session: Session) -> dict[str, str]:
    """set -> token of the harvests of `day` that were interrupted."""
    stmt = select(HarvestPoint.set_spec, HarvestPoint.token).where(
        HarvestPoint.source == source, HarvestPoint.day == day
    )
    return dict(session.exec(stmt).all())


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


# --- leases and job runs ------------------------------------------------------------------


def _host_id() -> str:
    """This host and PID namespace: two containers can share a hostname (host networking)
    but not their pids, so a lease's pid is only checked from the namespace it names."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:  # not Linux
        return socket.gethostname()
    return f"{socket.gethostname()}/{namespace.strip('pid:[]')}"


HOST_ID = _host_id()
PROCESS_OWNER = f"{HOST_ID}:{os.getpid()}"


def acquire_lease(name: str, owner: str, seconds: float, *, session: Session) -> bool:
    """Take the named lease if it is free, expired, ours, or held by a dead local process.

    Commits at once: a lease only means something when other processes can see it.
    """
    now = utcnow()
    expires = now + dt.timedelta(seconds=seconds)
    row = {"name": name, "owner": owner, "expires_at": expires}
    if _insert_ignore(session, Lease, [row], ("name",)):
        session.commit()
        return True
    holder = session.exec(select(Lease.owner).where(Lease.name == name)).first()
    stale = holder is not None and _owner_is_dead(holder)
    condition = (col(Lease.expires_at) < now) | (col(Lease.owner) == owner)
    if stale:
        condition = condition | (col(Lease.owner) == holder)
    stmt = (
        update(Lease)
        .where(col(Lease.name) == name, condition)
        .values(owner=owner, expires_at=expires)
    )
    taken = (session.execute(stmt).rowcount or 0) > 0
    session.commit()
    return taken


def release_lease(name: str, owner: str, *, session: Session) -> None:
    session.execute(delete(Lease).where(col(Lease.name) == name, col(Lease.owner) == owner))
    session.commit()


def _owner_is_dead(owner: str) -> bool:
    """True when `owner` names a process on this host (and PID namespace) that no longer runs."""
    host, _, rest = owner.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != HOST_ID or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def job_ran(job: str, day: dt.date, *, session: Session) -> bool:
    stmt = select(JobRun.id).where(JobRun.job == job, JobRun.run_date == day)
    return session.exec(stmt).first() is not None


def record_job_run(job: str, day: dt.date, summary: str, *, session: Session) -> None:
    row = {"job": job, "run_date": day, "summary": summary[:500], "finished_at": utcnow()}
    _insert_ignore(session, JobRun, [row], ("job", "run_date"))
