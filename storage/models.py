"""SQLModel tables: the only schema of papers-bot.

Papers are public and shared by every workspace; everything that comes from Slack
(subscriptions, digests, deliveries, reactions, events) carries the Slack `team_id`.
Unique keys make every write idempotent. Used by `storage.queries` only; the Alembic
migrations in `storage/migrations` create exactly these tables.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Paper(SQLModel, table=True):
    __tablename__ = "papers"

    id: str = Field(primary_key=True, max_length=32)  # arXiv id, no version
    title: str = Field(sa_column=Column(Text, nullable=False))
    abstract: str = Field(sa_column=Column(Text, nullable=False))
    authors: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # "\n"
    upvotes: int = 0
    ai_summary: str | None = Field(default=None, sa_column=Column(Text))
    github_repo: str | None = Field(default=None, max_length=500)
    project_page: str | None = Field(default=None, max_length=500)
    published_at: dt.datetime | None = None
    listed_on: dt.date = Field(index=True)
    source: str = Field(default="hf", max_length=16)  # the source that listed it first
    fetched_at: dt.datetime = Field(default_factory=utcnow)
    # set when the row is stored and whenever a source changes it; None: before 0008
    changed_at: dt.datetime | None = Field(default_factory=utcnow, index=True)
    sources: str = Field(default="", max_length=64)  # every source that listed it: "arxiv,hf"
    categories: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # " "
    primary_category: str | None = Field(default=None, max_length=32)

    @property
    def source_list(self) -> list[str]:
        return [s for s in self.sources.split(",") if s] or [self.source]

    @property
    def category_list(self) -> list[str]:
        return self.categories.split()

    @property
    def author_list(self) -> list[str]:
        return [a for a in self.authors.split("\n") if a]


class ArchiveRevision(SQLModel, table=True):
    """One counter, raised by every transaction that stores or changes papers, so a process can
    tell with one cheap read whether its index misses any."""

    __tablename__ = "archive_revision"

    id: int = Field(default=1, primary_key=True)
    revision: int = 0


class PaperVector(SQLModel, table=True):
    """A paper's title + abstract embedded by the sentence encoder named in `model`."""

    __tablename__ = "paper_vectors"

    paper_id: str = Field(foreign_key="papers.id", primary_key=True, max_length=32)
    model: str = Field(primary_key=True, max_length=64)
    text_hash: str = Field(max_length=16)  # of the text encoded: a changed paper is redone
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # float16, unit norm


class Subscription(SQLModel, table=True):
    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "topic_key"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32, index=True)
    channel_id: str = Field(max_length=32)
    topic: str = Field(max_length=200)
    topic_key: str = Field(max_length=200)  # normalised, for duplicate detection
    created_by: str = Field(max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)


class ChannelState(SQLModel, table=True):
    """Delivery health of one channel: paused after a permanent Slack error until fixed."""

    __tablename__ = "channel_states"
    __table_args__ = (UniqueConstraint("team_id", "channel_id"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    error: str | None = Field(default=None, max_length=64)  # e.g. not_in_channel
    failed_at: dt.datetime | None = None
    failures: int = 0


class Digest(SQLModel, table=True):
    __tablename__ = "digests"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "digest_date"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    digest_date: dt.date
    topics: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # "\n"
    paper_count: int = 0
    parent_ts: str | None = Field(default=None, max_length=32)
    created_at: dt.datetime = Field(default_factory=utcnow)
    completed_at: dt.datetime | None = None


class Delivery(SQLModel, table=True):
    """A paper planned for, then posted to, one channel: at most once ever."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "paper_id"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    paper_id: str = Field(foreign_key="papers.id", max_length=32)
    digest_id: int = Field(foreign_key="digests.id", index=True)
    position: int = 0
    score: float = 0.0
    topic: str = Field(default="", max_length=200)
    terms: str = Field(default="", max_length=500)  # ", "-joined matched words
    boosted: bool = False  # team feedback lifted it
    semantic: bool = False  # let in by closeness in meaning (words mentioned only briefly)
    reply_ts: str | None = Field(default=None, max_length=32, index=True)
    delivered_at: dt.datetime | None = None


class Reaction(SQLModel, table=True):
    """An emoji in force on a paper reply (removed reactions are deleted)."""

    __tablename__ = "reactions"
    __table_args__ = (
        UniqueConstraint("team_id", "channel_id", "message_ts", "user_id", "reaction"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    message_ts: str = Field(max_length=32)
    paper_id: str = Field(foreign_key="papers.id", max_length=32, index=True)
    user_id: str = Field(max_length=32)
    reaction: str = Field(max_length=100)  # base name, skin tone stripped
    created_at: dt.datetime = Field(default_factory=utcnow)


class SlackEvent(SQLModel, table=True):
    """Event ids already handled, so a redelivered event changes nothing."""

    __tablename__ = "slack_events"

    event_id: str = Field(primary_key=True, max_length=64)
    team_id: str = Field(max_length=32)
    received_at: dt.datetime = Field(default_factory=utcnow)


class SeenRequest(SQLModel, table=True):
    """Signatures of recent signed Slack requests, so a replayed one is ignored."""

    __tablename__ = "seen_requests"

    signature: str = Field(primary_key=True, max_length=80)  # "v0=" + 64 hex digits
    sent_at: dt.datetime = Field(index=True)  # the request's signed timestamp


class Lease(SQLModel, table=True):
    """A named, expiring lock shared by every replica (digest per channel, daily job)."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=200)
    owner: str = Field(max_length=200)
    expires_at: dt.datetime


class HarvestPoint(SQLModel, table=True):
    """Where an interrupted OAI-PMH harvest of one set and day stopped: its next token."""

    __tablename__ = "harvest_points"

    source: str = Field(primary_key=True, max_length=16)
    day: dt.date = Field(primary_key=True)
    set_spec: str = Field(primary_key=True, max_length=64)
    token: str = Field(sa_column=Column(Text, nullable=False))
    saved_at: dt.datetime = Field(default_factory=utcnow)


class FetchedDay(SQLModel, table=True):
    """A source day read successfully (so a later run can catch up on the missed ones)."""

    __tablename__ = "fetched_days"

    source: str = Field(primary_key=True, max_length=16)
    day: dt.date = Field(primary_key=True)
    papers: int = 0
    skipped: int = 0
    fetched_at: dt.datetime = Field(default_factory=utcnow)


class ChannelSettings(SQLModel, table=True):
    """A channel's own digest schedule, set with `/papers settings`; no row: the defaults."""

    __tablename__ = "channel_settings"
    __table_args__ = (UniqueConstraint("team_id", "channel_id"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    digest_time: str = Field(max_length=5)  # HH:MM, local to `timezone`
    timezone: str = Field(max_length=64)  # IANA name
    weekdays: str = Field(max_length=20)  # ","-joined, 0 = Monday (daily digests)
    max_papers: int
    weekly_day: int | None = None  # None: daily; else the weekday of the weekly digest
    sources: str | None = Field(default=None, max_length=64)  # ","-joined; None: every source
    updated_by: str = Field(default="", max_length=32)
    updated_at: dt.datetime = Field(default_factory=utcnow)


class ChannelRun(SQLModel, table=True):
    """One channel's scheduled digest for one local day: tried at, and finished (once)."""

    __tablename__ = "channel_runs"
    __table_args__ = (UniqueConstraint("team_id", "channel_id", "run_date"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str = Field(max_length=32)
    channel_id: str = Field(max_length=32)
    run_date: dt.date = Field(index=True)  # the channel's local date
    attempted_at: dt.datetime
    finished_at: dt.datetime | None = None


class WorkspaceRemoval(SQLModel, table=True):
    """A workspace that uninstalled the app or revoked its token: no digests from then on;
    `papers-bot purge` deletes its rows after the grace period."""

    __tablename__ = "workspace_removals"

    team_id: str = Field(primary_key=True, max_length=32)
    removed_at: dt.datetime = Field(default_factory=utcnow)
    reason: str = Field(default="", max_length=32)  # app_uninstalled or tokens_revoked
