"""The daily job and its parts, as plain functions the scheduler, the CLI and tests call.

`fetch_days` stores the papers one source listed on some days; `days_to_fetch` picks them
(the look-back window, plus any older days a failed run missed); `open_sources` gives the
configured sources (Hugging Face, and arXiv when ARXIV_CATEGORIES is set); `due_channels`
says which channels' digests are due, each at its own local time (`bot.channel_settings`),
and `daily_job` is what the scheduler runs every minute: it fetches from every source (one
failing never stops the others), then posts each due channel's digest, once per channel and
local day across replicas. Everything takes explicit `engine`/`session`, `client` and
`today`/`now` arguments.
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
from bot.channel_settings import Schedule, from_row
from bot.digest.run import DigestSummary, run_digest
from bot.settings import Settings
from bot.sources import PaperRecord, SourceError
from bot.sources.arxiv import ArxivSource, Page
from bot.sources.hf import HuggingFaceSource
from storage import queries
from storage.models import utcnow

logger = logging.getLogger(__name__)
MAX_CATCH_UP_DAYS = 14
SOURCE_NAMES = ("hf", "arxiv")
LABELS = {"hf": "Hugging Face", "arxiv": "arXiv"}
Source = HuggingFaceSource | ArxivSource
RETRY_MINUTES = 20  # a channel whose run did not finish is tried again this much later
FETCH_MINUTES = 30  # listings read this recently are not read again for the next channel


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
    lookback: int | None = None,
) -> FetchSummary:
    """The daily fetch of every source: the look-back window up to `today` (`lookback` days,
    default DIGEST_LOOKBACK_DAYS), plus any days a run missed. A source that fails is logged
    and reported in the summary; the others go on."""
    window = settings.digest_lookback_days if lookback is None else lookback
    summary = FetchSummary()
    with ExitStack() as stack:
        if sources is None:
            sources = [stack.enter_context(s) for s in open_sources(settings)]
        for source in sources:
            done = queries.fetched_days(source.name, session=session)
            days = days_to_fetch(today, window, done)
            summary.add(
                fetch_days(days, session=session, source=source, archive=archive, progress=progress)
            )
    return summary


def due_channels(
    now: dt.datetime, *, settings: Settings, session: Session
) -> dict[tuple[str, str], Schedule]:
    """Subscribed channels whose digest is due at `now` and not done for that local day
    (one tried less than RETRY_MINUTES ago waits), with their schedules."""
    stored = queries.all_channel_settings(session=session)
    runs = queries.channel_runs_since((now - dt.timedelta(days=2)).date(), session=session)
    due = {}
    for key in queries.subscribed_channels(session=session):
        schedule = from_row(stored.get(key), settings)
        day = schedule.due_day(now)
        run = runs.get((*key, day)) if day else None
        if day is None or (run is not None and run.finished_at is not None):
            continue
        if run is not None and _aware(run.attempted_at) > now - dt.timedelta(minutes=RETRY_MINUTES):
            continue
        due[key] = schedule
    return due


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every stored one is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _needs_fetch(
    day: dt.date, settings: Settings, sources: Sequence[Source] | None, *, session: Session
) -> bool:
    """Whether a configured source has not read `day` in the last FETCH_MINUTES."""
    if sources is not None:
        names = [source.name for source in sources]
    else:
        names = [name for name in SOURCE_NAMES if name == "hf" or settings.arxiv_categories]
    recent = utcnow() - dt.timedelta(minutes=FETCH_MINUTES)
    for name in names:
        last = queries.fetched_at(name, day, session=session)
        if last is None or _aware(last) < recent:
            return True
    return False


def daily_job(
    *,
    engine: Engine,
    client: WebClient,
    settings: Settings,
    archive: Archive,
    now: dt.datetime | None = None,
    sources: Sequence[Source] | None = None,
    client_for: Callable[[str], WebClient | None] | None = None,
) -> DigestSummary | None:
    """Post the digests due at `now`, each channel at its own local time, once per local day
    across every replica sharing the database; None when nothing is due.

    Listings are fetched first (unless read in the last FETCH_MINUTES) by one replica at a
    time; the others wait for the next tick rather than plan from stale papers. A channel's
    day counts as done once its digest is posted (or Slack refuses the channel, which pauses
    it) after a fetch that worked; otherwise the next tick after RETRY_MINUTES finishes it.
    Each workspace's digests go out with `client_for(team)` (default: `client`); one
    without a client (uninstalled) is skipped.
    """
    now = now or dt.datetime.now(dt.UTC)
    owner = f"{queries.PROCESS_OWNER}:{uuid.uuid4().hex[:8]}"
    with Session(engine, expire_on_commit=False) as session:
        due = due_channels(now, settings=settings, session=session)
        if not due:
            return None
        days = {key: schedule.local_day(now) for key, schedule in due.items()}
        latest = max(days.values())
        fetched = FetchSummary()
        if _needs_fetch(latest, settings, sources, session=session):
            if not queries.acquire_lease("fetch", owner, 3600, session=session):
                logger.info("another process is fetching; digests wait for the next tick")
                return None
            try:
                lookback = max(
                    s.lookback(settings.digest_lookback_days, None, latest) for s in due.values()
                )
                fetched = fetch_recent(
                    latest,
                    session=session,
                    settings=settings,
                    sources=sources,
                    archive=archive,
                    lookback=lookback,
                )
            finally:
                queries.release_lease("fetch", owner, session=session)
        archive.sync()  # papers another replica fetched
        total = DigestSummary(day=latest)
        for day, team in sorted({(d, key[0]) for key, d in days.items()}):
            keys = [key for key, d in days.items() if d == day and key[0] == team]
            team_client = client_for(team) if client_for is not None else client
            if team_client is None:
                logger.info("workspace %s has no installation: its digests are stopped", team)
                continue
            for team_id, channel_id in keys:
                queries.mark_run_attempted(team_id, channel_id, day, now, session=session)
            session.commit()
            summary = run_digest(
                session=session,
                client=team_client,
                settings=settings,
                archive=archive,
                today=day,
                only=keys,
                interval=settings.post_interval,
            )
            for team_id, channel_id in keys:
                if fetched.errors or channel_id in summary.busy:
                    continue
                refused = channel_id in summary.failed
                if refused or not queries.unfinished_digests(team_id, channel_id, session=session):
                    queries.mark_run_finished(team_id, channel_id, day, now, session=session)
            session.commit()
            total.add(summary)
        text = (
            f"fetched {fetched.new} new papers; posted {total.papers_posted} papers "
            f"to {len(total.posted_channels)} channels; failed {sorted(total.failed)}"
        )
        moment = now.isoformat(timespec="minutes")
        if fetched.errors:
            failed = ", ".join(LABELS[name] for name in fetched.failed_sources)
            logger.error("digests due at %s: %s; %s failed, retried later", moment, text, failed)
        else:
            logger.info("digests due at %s: %s", moment, text)
        return total
