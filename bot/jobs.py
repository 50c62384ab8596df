"""The daily job and its parts, as plain functions the scheduler, the CLI and tests call.

`fetch_days` stores the papers listed on some days; `days_to_fetch` picks them (the
look-back window, plus any older days a failed run missed); `daily_job` is what runs at
`DIGEST_TIME`: once per day across replicas, it fetches, then posts every channel's
digest. Everything takes explicit `engine`/`session`, `client` and `today` arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlmodel import Session

from bot.archive.live import Archive, doc_from_row
from bot.digest.planning import DigestSummary, run_digest
from bot.settings import Settings
from bot.sources import SourceError
from bot.sources.hf import HuggingFaceSource
from storage import queries

logger = logging.getLogger(__name__)
MAX_CATCH_UP_DAYS = 14


@dataclass
class FetchSummary:
    days: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)


def days_to_fetch(
    today: dt.date, lookback: int, fetched: Collection[dt.date] = ()
) -> list[dt.date]:
    """The look-back window, plus older days a failed run missed (since the first fetch).

    The window is fetched again every time, since listings grow during the day and
    papers are listed late; older days only when they never succeeded.
    """
    start = today - dt.timedelta(days=lookback)
    oldest = max(min(fetched, default=start), today - dt.timedelta(days=MAX_CATCH_UP_DAYS))
    missed = [
        oldest + dt.timedelta(days=i)
        for i in range((start - oldest).days)
        if oldest + dt.timedelta(days=i) not in fetched
    ]
    return missed + [start + dt.timedelta(days=i) for i in range((today - start).days + 1)]


def fetch_days(
    days: Iterable[dt.date],
    *,
    session: Session,
    source: HuggingFaceSource,
    archive: Archive | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> FetchSummary:
    """Store each day's listing. After a day fails (retries exhausted) the rest are left
    for the next run, which catches up on them, rather than waiting out every retry again.
    """
    summary = FetchSummary()
    days = list(days)
    for number, day in enumerate(days):
        try:
            result = source.fetch_day(day)
        except SourceError as exc:
            summary.errors.append(str(exc))
            logger.warning("%s", exc)
            left = len(days) - number - 1
            progress(
                f"{day}: failed; {left} later days left for the next run"
                if left
                else f"{day}: failed"
            )
            break
        encoded = 0
        new, updated = queries.upsert_papers(result.papers, session=session)
        queries.record_fetched_day("hf", day, len(result.papers), result.skipped, session=session)
        session.commit()
        if archive is not None:
            archive.add(
                doc_from_row(p.id, p.title, p.abstract, "\n".join(p.authors), p.upvotes)
                for p in result.papers
            )
            encoded = archive.embed([p.id for p in result.papers])
        summary.days += 1
        summary.new += new
        summary.updated += updated
        summary.skipped += result.skipped
        skipped = f", {result.skipped} unusable items skipped" if result.skipped else ""
        vectors = f", {encoded} encoded" if encoded else ""
        progress(f"{day}: {len(result.papers)} papers listed, {new} new{skipped}{vectors}")
    return summary


def fetch_recent(
    today: dt.date,
    *,
    session: Session,
    settings: Settings,
    source: HuggingFaceSource | None = None,
    archive: Archive | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> FetchSummary:
    """The daily fetch: the look-back window up to `today`, plus any days a run missed."""
    days = days_to_fetch(
        today, settings.digest_lookback_days, queries.fetched_days("hf", session=session)
    )
    if source is not None:
        return fetch_days(days, session=session, source=source, archive=archive, progress=progress)
    with HuggingFaceSource(settings.hf_api_url) as own:
        return fetch_days(days, session=session, source=own, archive=archive, progress=progress)


def daily_job(
    *,
    engine: Engine,
    client: WebClient,
    settings: Settings,
    archive: Archive,
    today: dt.date | None = None,
    source: HuggingFaceSource | None = None,
) -> DigestSummary | None:
    """Fetch and post today's digests, once per day across every replica sharing the database."""
    today = today or settings.today()
    owner = f"{queries.PROCESS_OWNER}:{uuid.uuid4().hex[:8]}"
    lease = f"daily:{today.isoformat()}"
    with Session(engine, expire_on_commit=False) as session:
        if queries.job_ran("daily", today, session=session):
            logger.info("daily job for %s already ran", today)
            return None
        if not queries.acquire_lease(lease, owner, 3600, session=session):
            logger.info("daily job for %s is running in another process", today)
            return None
        try:
            if queries.job_ran("daily", today, session=session):  # finished while we waited
                logger.info("daily job for %s already ran", today)
                return None
            fetched = fetch_recent(
                today, session=session, settings=settings, source=source, archive=archive
            )
            summary = run_digest(
                session=session,
                client=client,
                settings=settings,
                archive=archive,
                today=today,
                interval=settings.post_interval,
            )
            text = (
                f"fetched {fetched.new} new papers; posted {summary.papers_posted} papers "
                f"to {len(summary.posted_channels)} channels; failed {sorted(summary.failed)}"
            )
            logger.info("daily job %s: %s", today, text)
            if not fetched.errors and not summary.left_pending:
                queries.record_job_run("daily", today, text, session=session)
                session.commit()
            return summary
        finally:
            queries.release_lease(lease, owner, session=session)
