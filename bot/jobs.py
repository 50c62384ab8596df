"""The daily job and its parts, as plain functions the scheduler, the CLI and tests call.

`fetch_days` stores the papers listed on some days; `days_to_fetch` picks them (the
look-back window, plus any older days a failed run missed); `due_channels` says which
channels' digests are due, each at its own local time (`bot.channel_settings`), and
`daily_job` is what the scheduler runs every minute: it fetches, then posts each due
channel's digest, once per channel and local day across replicas. Everything takes
explicit `engine`/`session`, `client` and `today`/`now` arguments.
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
from bot.channel_settings import Schedule, from_row
from bot.digest.planning import DigestSummary, run_digest
from bot.settings import Settings
from bot.sources import SourceError
from bot.sources.hf import HuggingFaceSource
from storage import queries
from storage.models import utcnow

logger = logging.getLogger(__name__)
MAX_CATCH_UP_DAYS = 14
RETRY_MINUTES = 20  # a channel whose run did not finish is tried again this much later
FETCH_MINUTES = 30  # listings read this recently are not read again for the next channel


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
    lookback: int | None = None,
) -> FetchSummary:
    """The daily fetch: the look-back window up to `today` (`lookback` days, default
    DIGEST_LOOKBACK_DAYS), plus any days a run missed."""
    window = settings.digest_lookback_days if lookback is None else lookback
    days = days_to_fetch(today, window, queries.fetched_days("hf", session=session))
    if source is not None:
        return fetch_days(days, session=session, source=source, archive=archive, progress=progress)
    with HuggingFaceSource(settings.hf_api_url) as own:
        return fetch_days(days, session=session, source=own, archive=archive, progress=progress)


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


def daily_job(
    *,
    engine: Engine,
    client: WebClient,
    settings: Settings,
    archive: Archive,
    now: dt.datetime | None = None,
    source: HuggingFaceSource | None = None,
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
        last = queries.fetched_at("hf", latest, session=session)
        if last is None or _aware(last) < utcnow() - dt.timedelta(minutes=FETCH_MINUTES):
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
                    source=source,
                    archive=archive,
                    lookback=lookback,
                )
            finally:
                queries.release_lease("fetch", owner, session=session)
        archive.sync(every=0)  # papers another replica fetched
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
        logger.info(
            "digests due at %s: fetched %d new papers; posted %d papers to %d channels; failed %s",
            now.isoformat(timespec="minutes"),
            fetched.new,
            total.papers_posted,
            len(total.posted_channels),
            sorted(total.failed),
        )
        return total
