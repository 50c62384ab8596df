"""Papers, their vectors, fetched days and harvest points: what the sources brought in."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import delete, func, or_, update
from sqlmodel import Session, col, select

from bot.sources import PaperRecord
from storage.models import (
    ArchiveRevision,
    FetchedDay,
    HarvestPoint,
    Paper,
    PaperVector,
    utcnow,
)
from storage.queries._common import _insert, _insert_ignore

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
    now = utcnow()
    for record in by_id.values():
        paper = existing.get(record.id)
        fields = _record_fields(record)
        if paper is None:  # every column either source sets: the rows share one statement
            rows.append(
                {
                    "id": record.id,
                    "listed_on": record.listed_on,
                    "source": record.source,
                    "sources": record.source,
                    "fetched_at": now,
                    "changed_at": now,
                    **fields,
                    "categories": " ".join(record.categories),
                    "primary_category": record.primary_category,
                    **{name: getattr(record, name) for name in HF_FIELDS},
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
            paper.changed_at = now
            updated += 1
    if rows or updated:  # raised before the inserts and updates: writers queue here
        with session.no_autoflush:  # the changed papers' rows are written after it
            bump_archive_revision(session=session)
    for start in range(0, len(rows), 500):  # SQLite caps the parameters of one statement
        new += _insert_ignore(session, Paper, rows[start : start + 500], ("id",))
    session.flush()
    return new, updated


def bump_archive_revision(*, session: Session) -> None:
    """Raise the archive revision: papers were stored or changed (committed with the caller's
    transaction)."""
    raised = session.execute(
        update(ArchiveRevision)
        .where(col(ArchiveRevision.id) == 1)
        .values(revision=ArchiveRevision.revision + 1)
    )
    if not raised.rowcount:
        _insert_ignore(session, ArchiveRevision, [{"id": 1, "revision": 1}], ("id",))


def archive_revision(*, session: Session) -> int:
    """The archive revision: it changes whenever another transaction stored or changed papers."""
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


def categories_like(names: Collection[str], *, session: Session) -> list[tuple[str, str]]:
    """(id, categories) of the papers whose categories contain any of these (case-folded)
    names as a substring: a narrowing for the caller to check whole names on."""
    if not names:
        return []
    folded = func.lower(Paper.categories)
    stmt = select(Paper.id, Paper.categories).where(
        or_(*(folded.like(f"%{name}%") for name in sorted(names)))
    )
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


def index_rows_changed_since(since: dt.datetime, *, session: Session) -> list[tuple]:
    """`iter_index_rows` of the papers stored or changed at or after `since`."""
    stmt = select(Paper.id, Paper.title, Paper.abstract, Paper.authors, Paper.upvotes)
    return list(session.exec(stmt.where(Paper.changed_at >= since).order_by(Paper.id)))


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
