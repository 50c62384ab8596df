"""Posting each channel's digest exactly once, under a per-channel lease.

`run_digest` does it for every subscribed channel with a digest that day: under a
per-channel lease it writes the plan (`bot.digest.planning`: one digest row, one delivery
row per paper) before posting anything, then posts parent and replies through
`bot.digest.delivery`, recording each Slack `ts` as it arrives. A digest cut short by a
crash, a Slack outage or a channel error is finished in the same thread by the next run. A
channel Slack refuses (not invited, archived, …) is paused: no new digests are planned for
it, and each run retries only its oldest unfinished one, so fixing it brings one thread,
not a backlog. With `dry_run` nothing is written or posted: the plans are returned for
printing. Called by `bot.jobs` (scheduler, CLI) and tests.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from slack_sdk import WebClient
from sqlmodel import Session

from bot.archive.live import Archive
from bot.channel_settings import from_row
from bot.digest.blocks import digest_parent, paper_message
from bot.digest.delivery import CHANNEL_ERRORS, DeliveryReport, Outbox, Post, deliver
from bot.digest.planning import (
    ChannelPlan,
    lookback_days,
    make_view,
    paper_views,
    plan_today,
    reading_of,
    topic_words,
)
from bot.matching.ranking import Match
from bot.settings import Settings
from storage import queries
from storage.models import Digest, utcnow

logger = logging.getLogger(__name__)
LEASE_SECONDS = 900


@dataclass
class DigestSummary:
    day: dt.date
    channels: int = 0
    posted_channels: list[str] = field(default_factory=list)
    papers_posted: int = 0
    nothing_new: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # another process holds the channel
    not_today: list[str] = field(default_factory=list)  # their schedule has no digest today
    failed: dict[str, str] = field(default_factory=dict)
    left_pending: int = 0
    retry_errors: list[str] = field(default_factory=list)  # why messages were left pending
    plans: list[ChannelPlan] = field(default_factory=list)  # dry run only

    def add(self, part: DigestSummary) -> None:
        """Count another run in (the runs of other workspaces or other local days)."""
        self.channels += part.channels
        self.posted_channels = sorted({*self.posted_channels, *part.posted_channels})
        self.papers_posted += part.papers_posted
        self.nothing_new += part.nothing_new
        self.busy += part.busy
        self.not_today = sorted({*self.not_today, *part.not_today})
        self.failed.update(part.failed)
        self.left_pending += part.left_pending
        self.retry_errors = sorted({*self.retry_errors, *part.retry_errors})


def run_digest(
    *,
    session: Session,
    client: WebClient | None,
    settings: Settings,
    archive: Archive,
    today: dt.date,
    channel: str | None = None,
    team: str | None = None,
    only: Collection[tuple[str, str]] | None = None,
    dry_run: bool = False,
    interval: float = 1.0,
    progress: Callable[[str], None] = lambda _msg: None,
) -> DigestSummary:
    """Plan and post `today`'s digest of every subscribed channel whose schedule has a
    digest that day (all of `only`, or `channel`, whatever their schedule), of every
    workspace or of `team`."""
    summary = DigestSummary(day=today)
    channels = queries.subscribed_channels(session=session, channel_id=channel, team_id=team)
    stored = queries.all_channel_settings(session=session)
    schedules = {key: from_row(stored.get(key), settings) for key in channels}
    if only is not None:
        wanted = set(only)
        channels = {key: subs for key, subs in channels.items() if key in wanted}
    elif channel is None:
        summary.not_today = sorted(c for (_, c), s in schedules.items() if not s.runs_on(today))
        channels = {key: subs for key, subs in channels.items() if schedules[key].runs_on(today)}
    summary.channels = len(channels)
    semantics = None
    if channels and archive.encoder is not None:
        # Every candidate paper and topic is encoded once, in batches, before planning.
        lookback = max(
            lookback_days(session, settings, team, chan, today, schedules[(team, chan)])
            for team, chan in channels
        )
        start = today - dt.timedelta(days=lookback)
        window = queries.paper_ids_listed_since(start, until=today, session=session)
        if encoded := archive.embed(window):
            progress(f"encoded {encoded} papers for matching by meaning")
        semantics = archive.semantics_for(window)
        if semantics is not None:
            semantics.warm(topic_words(s.topic for subs in channels.values() for s in subs))

    def plan(team_id: str, channel_id: str, topics: list[str]) -> tuple[list[Match], dict]:
        schedule = schedules[(team_id, channel_id)]
        return plan_today(
            session, archive, settings, team_id, channel_id, topics, today, semantics, schedule
        )

    if dry_run:
        for (team_id, channel_id), subs in channels.items():
            topics = [s.topic for s in subs]
            matches, papers = plan(team_id, channel_id, topics)
            views = paper_views(matches, papers, archive)
            summary.plans.append(ChannelPlan(team_id, channel_id, topics, views))
        return summary
    if client is None:
        raise ValueError("posting a digest needs a Slack client")

    owner = f"{queries.PROCESS_OWNER}:{uuid.uuid4().hex[:8]}"
    leased: list[str] = []
    outboxes: list[Outbox] = []
    try:
        for (team_id, channel_id), subs in channels.items():
            lease = _lease_name(team_id, channel_id)
            if not queries.acquire_lease(lease, owner, LEASE_SECONDS, session=session):
                summary.busy.append(channel_id)
                continue
            leased.append(lease)
            state = queries.channel_state(team_id, channel_id, session=session)
            unfinished = queries.unfinished_digests(team_id, channel_id, session=session)
            # Paused while Slack refuses it; its oldest unfinished digest is the probe.
            paused = state is not None and state.error is not None and bool(unfinished)
            if (
                not paused
                and queries.get_digest(team_id, channel_id, today, session=session) is None
            ):
                topics = [s.topic for s in subs]
                matches, _ = plan(team_id, channel_id, topics)
                if matches:
                    digest = queries.create_digest(
                        team_id, channel_id, today, topics, session=session
                    )
                    queries.plan_deliveries(
                        digest, [_delivery_row(m) for m in matches], session=session
                    )
                    session.commit()
                    unfinished = queries.unfinished_digests(team_id, channel_id, session=session)
            if paused:  # one probe; new digests wait until the channel works again
                unfinished = unfinished[:1]
            boxes = [_outbox(session, archive, digest) for digest in unfinished]
            if not any(box.posts for box in boxes):
                summary.nothing_new.append(channel_id)
            outboxes.extend(box for box in boxes if box.posts)
        total = sum(len(box.posts) for box in outboxes)
        progress(f"posting {total} messages to {len({b.channel_id for b in outboxes})} channels")
        report, replies = _post(session, client, outboxes, interval, progress, (leased, owner))
    finally:
        for lease in leased:
            queries.release_lease(lease, owner, session=session)
    summary.papers_posted = replies
    summary.failed = report.failed_channels
    summary.left_pending = report.left_pending
    summary.retry_errors = sorted(report.retry_errors)
    summary.posted_channels = sorted(
        {b.channel_id for b in outboxes if b.channel_id not in report.failed_channels}
    )
    return summary


def _lease_name(team_id: str, channel_id: str) -> str:
    return f"digest:{team_id}:{channel_id}"


def _delivery_row(match: Match) -> dict:
    return {
        "paper_id": match.paper_id,
        "score": float(match.score),
        "topic": match.topic[:200],
        "terms": ", ".join(match.terms)[:500],
        "boosted": match.boosted,
        "semantic": match.semantic,
    }


def _outbox(session: Session, archive: Archive, digest: Digest) -> Outbox:
    box = Outbox(digest.team_id, digest.channel_id, thread_ts=digest.parent_ts, key=digest.id)
    pending = queries.digest_deliveries(digest.id, session=session, pending_only=True)
    if digest.parent_ts is None:
        topics = [t for t in digest.topics.split("\n") if t]
        box.posts.append(
            Post(
                key=digest,
                render=lambda: digest_parent(digest.digest_date, digest.paper_count, topics),
                is_parent=True,
            )
        )
    papers = queries.get_papers([d.paper_id for d in pending], session=session)
    for delivery in pending:
        view = make_view(
            papers[delivery.paper_id],
            archive.index,
            topic=delivery.topic,
            terms=[t for t in delivery.terms.split(", ") if t],
            boosted=delivery.boosted,
            semantic=delivery.semantic,
            reading=reading_of(delivery.topic, archive.acronyms),
        )
        box.posts.append(Post(key=delivery, render=lambda v=view: paper_message(v)))
    return box


def _post(
    session: Session,
    client: WebClient,
    outboxes: list[Outbox],
    interval: float,
    progress: Callable[[str], None],
    leases: tuple[list[str], str],
) -> tuple[DeliveryReport, int]:
    replies = 0
    renewed = 0.0
    names, owner = leases
    lost: set[str] = set()

    def renew_leases() -> None:
        """A long run keeps its channels: planning and posting may outlast a lease. A
        channel whose lease expired and went to another process is left to it (it resumes
        the same digests): this run stops posting there as soon as it notices."""
        nonlocal renewed
        for name in names:
            if name in lost or queries.acquire_lease(name, owner, LEASE_SECONDS, session=session):
                continue
            lost.add(name)
            logger.warning("%s: taken over by another process, which posts the rest", name)
        for box in outboxes:
            if _lease_name(box.team_id, box.channel_id) in lost:
                box.posts.clear()
        renewed = time.monotonic()

    renew_leases()  # the first channels were taken before every channel was planned

    def on_posted(box: Outbox, post: Post, ts: str) -> None:
        nonlocal replies
        row = session.merge(post.key)
        if isinstance(row, Digest):
            row.parent_ts = ts
        else:
            row.reply_ts, row.delivered_at = ts, utcnow()
            replies += 1
        if not box.posts:
            session.get(Digest, box.key).completed_at = utcnow()
        queries.clear_channel_failure(box.team_id, box.channel_id, session=session)
        session.commit()
        if time.monotonic() - renewed > LEASE_SECONDS / 3:
            renew_leases()

    def on_channel_error(box: Outbox, error: str) -> None:
        queries.mark_channel_failed(box.team_id, box.channel_id, error, session=session)
        session.commit()
        progress(f"channel {box.channel_id}: {error} ({CHANNEL_ERRORS.get(error, '')})")

    report = deliver(
        outboxes, client, on_posted=on_posted, on_channel_error=on_channel_error, interval=interval
    )
    return report, replies
