"""The daily job and its parts, as plain functions the scheduler, the CLI and tests call.

`fetch_days` stores the papers one source listed on some days; `days_to_fetch` picks them
(the look-back window, plus any older days a failed run missed); `open_sources` gives the
configured sources (Hugging Face, and arXiv when ARXIV_CATEGORIES is set); `daily_job` is what
runs at `DIGEST_TIME`: once per day across replicas, it fetches from every source (one
failing never stops the others), then posts every channel's digest. Everything takes
explicit `engine`/`session`, `client` and `today` arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field

from slack_sdk import WebClient
from sqlalchemy import Engine
from sqlmodel import Session

from bot.archive.live import Archive, doc_from_row
from bot.digest.planning import DigestSummary, run_digest
from bot.settings import Settings
from bot.sources import PaperRecord, SourceError
from bot.sources.arxiv import ArxivSource, Page
from bot.sources.hf import HuggingFaceSource
from storage import queries

logger = logging.getLogger(__name__)
MAX_CATCH_UP_DAYS = 14
SOURCE_NAMES = ("hf", "arxiv")
LABELS = {"hf": "Hugging Face", "arxiv": "arXiv"}
Source = HuggingFaceSource | ArxivSource


@dataclass
class FetchSummary:
    days: int = 0
    new: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)

    def add(self, other: FetchSummary) -> None:
        self.days += other.days
        self.new += other.new
        self.updated += other.updated
        self.skipped += other.skipped
        self.errors += other.errors
        self.failed_sources += other.failed_sources


def open_sources(settings: Settings, names: Collection[str] = SOURCE_NAMES) -> list[Source]:
    """Clients for the named sources that are configured (arXiv needs ARXIV_CATEGORIES)."""
    sources: list[Source] = []
    if "hf" in names:
        sources.append(HuggingFaceSource(settings.hf_api_url))
    if "arxiv" in names and settings.arxiv_categories:
        sources.append(
            ArxivSource(
                settings.arxiv_api_url,
                categories=settings.arxiv_categories,
                contact=settings.arxiv_contact,
                interval=settings.arxiv_interval,
            )
        )
    return sources


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


def _store(
    records: Sequence[PaperRecord], session: Session, archive: Archive | None
) -> tuple[int, int, int]:
    """Store papers (committed) and index and encode them; returns (new, updated, encoded)."""
    new, updated = queries.upsert_papers(records, session=session)
    session.commit()
    if archive is None or not records:
        return new, updated, 0
    ids = [r.id for r in records]
    archive.add(doc_from_row(*row) for row in queries.index_rows_of(ids, session=session))
    return new, updated, archive.embed(ids)


def _fetch_day(
    day: dt.date,
    source: Source,
    session: Session,
    archive: Archive | None,
    progress: Callable[[str], None],
):
    """One day of one source, stored; returns its FetchResult and (new, updated, encoded)."""
    counts = [0, 0, 0]

    def keep(records: Sequence[PaperRecord]) -> None:
        for i, value in enumerate(_store(records, session, archive)):
            counts[i] += value

    if not isinstance(source, ArxivSource):
        result = source.fetch_day(day)
        keep(result.papers)
        return result, counts

    def on_page(page: Page) -> None:
        keep(page.records)
        queries.save_harvest_point(
            source.name, day, page.set_spec, page.next_token, session=session
        )
        session.commit()
        if page.next_token:
            progress(f"{day} arXiv {page.set_spec}: {counts[0]} new so far, more to come")

    resume = queries.harvest_points(source.name, day, session=session)
    return source.fetch_day(day, resume=resume, on_page=on_page), counts


def fetch_days(
    days: Iterable[dt.date],
    *,
    session: Session,
    source: Source,
    archive: Archive | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> FetchSummary:
    """Store each day's listing of one source. After a day fails (retries exhausted) the rest
    are left for the next run, which catches up on them, rather than waiting out every retry
    again. arXiv pages are stored as they arrive, with the token of the next one, so a harvest
    cut short resumes where it stopped.
    """
    summary = FetchSummary()
    days = list(days)
    label = LABELS[source.name]
    for number, day in enumerate(days):
        try:
            result, (new, updated, encoded) = _fetch_day(day, source, session, archive, progress)
        except SourceError as exc:
            session.rollback()
            summary.errors.append(str(exc))
            summary.failed_sources.append(source.name)
            logger.warning("%s", exc)
            left = len(days) - number - 1
            progress(
                f"{day} {label}: failed; {left} later days left for the next run"
                if left
                else f"{day} {label}: failed"
            )
            break
        queries.record_fetched_day(
            source.name, day, len(result.papers), result.skipped, session=session
        )
        session.commit()
        summary.days += 1
        summary.new += new
        summary.updated += updated
        summary.skipped += result.skipped
        skipped = f", {result.skipped} unusable items skipped" if result.skipped else ""
        vectors = f", {encoded} encoded" if encoded else ""
        changed = f", {updated} updated" if updated else ""
        progress(
            f"{day} {label}: {len(result.papers)} papers listed, {new} new{changed}"
            f"{skipped}{vectors}"
        )
    return summary


def fetch_recent(
    today: dt.date,
    *,
    session: Session,
    settings: Settings,
    sources: Sequence[Source] | None = None,
    archive: Archive | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> FetchSummary:
    """The daily fetch of every source: the look-back window up to `today`, plus any days a
    run missed. A source that fails is logged and reported in the summary; the others go on."""
    summary = FetchSummary()
    with ExitStack() as stack:
        if sources is None:
            sources = [stack.enter_context(s) for s in open_sources(settings)]
        for source in sources:
            done = queries.fetched_days(source.name, session=session)
            days = days_to_fetch(today, settings.digest_lookback_days, done)
            summary.add(
                fetch_days(days, session=session, source=source, archive=archive, progress=progress)
            )
    return summary


def daily_job(
    *,
    engine: Engine,
    client: WebClient,
    settings: Settings,
    archive: Archive,
    today: dt.date | None = None,
    sources: Sequence[Source] | None = None,
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
                today, session=session, settings=settings, sources=sources, archive=archive
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
            if fetched.errors:
                failed = ", ".join(LABELS[name] for name in fetched.failed_sources)
                logger.error(
                    "daily job %s: %s; %s failed, retried on the next tick", today, text, failed
                )
            else:
                logger.info("daily job %s: %s", today, text)
            if not fetched.errors and not summary.left_pending:
                queries.record_job_run("daily", today, text, session=session)
                session.commit()
            return summary
        finally:
            queries.release_lease(lease, owner, session=session)
