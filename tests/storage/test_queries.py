"""Storage against real SQLite files and the real PostgreSQL: idempotent writes, leases."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.sources import PaperRecord
from storage import queries as q
from storage.models import utcnow

DAY = dt.date(2024, 7, 29)


def record(pid: str, title: str = "A title", upvotes: int = 1) -> PaperRecord:
    return PaperRecord(id=pid, title=title, abstract="An abstract.", listed_on=DAY, upvotes=upvotes)


def test_upsert_papers_is_idempotent(engine):
    with Session(engine) as s:
        assert q.upsert_papers([record("2407.00001"), record("2407.00002")], session=s) == (2, 0)
        s.commit()
        assert q.upsert_papers([record("2407.00001"), record("2407.00002")], session=s) == (0, 0)
        assert q.upsert_papers([record("2407.00001", upvotes=9)], session=s) == (0, 1)
        s.commit()
        assert q.count_papers(session=s) == 2
        assert q.get_papers(["2407.00001"], session=s)["2407.00001"].upvotes == 9


def test_changed_papers_are_found_by_when_they_changed(engine):
    with Session(engine) as s:
        q.upsert_papers([record("2407.00001"), record("2407.00002")], session=s)
        s.commit()
        cut = utcnow()
        assert q.index_rows_changed_since(cut, session=s) == []
        q.upsert_papers([record("2407.00001"), record("2407.00002", upvotes=5)], session=s)
        q.upsert_papers([record("2407.00003")], session=s)
        s.commit()
        changed = [row[0] for row in q.index_rows_changed_since(cut, session=s)]
        assert changed == ["2407.00002", "2407.00003"]  # not the one stored again unchanged
        assert len(q.index_rows_changed_since(cut - dt.timedelta(hours=1), session=s)) == 3


def test_subscription_unique_per_channel(engine):
    with Session(engine) as s:
        assert q.add_subscription(
            "T1", "C1", "Contrastive learning", "contrastive learning", "U1", session=s
        )
        assert not q.add_subscription(
            "T1", "C1", "contrastive  learning", "contrastive learning", "U2", session=s
        )
        assert q.add_subscription(
            "T1", "C2", "contrastive learning", "contrastive learning", "U1", session=s
        )
        s.commit()
        subs = q.channel_subscriptions("T1", "C1", session=s)
        assert [x.topic for x in subs] == ["Contrastive learning"]
        assert set(q.subscribed_channels(session=s)) == {("T1", "C1"), ("T1", "C2")}


def test_deliveries_once_per_channel_and_paper(engine):
    with Session(engine) as s:
        q.upsert_papers([record("2407.00001"), record("2407.00002")], session=s)
        digest = q.create_digest("T1", "C1", DAY, ["topic"], session=s)
        again = q.create_digest("T1", "C1", DAY, ["topic"], session=s)
        assert digest.id == again.id
        rows = [{"paper_id": "2407.00001", "score": 0.5}, {"paper_id": "2407.00002", "score": 0.4}]
        assert q.plan_deliveries(digest, rows, session=s) == 2
        later = q.create_digest("T1", "C1", DAY + dt.timedelta(days=1), ["topic"], session=s)
        assert q.plan_deliveries(later, rows, session=s) == 0
        s.commit()
        assert [d.paper_id for d in q.digest_deliveries(digest.id, session=s)] == [
            "2407.00001",
            "2407.00002",
        ]
        assert q.unfinished_digests("T1", "C1", session=s)[0].id == digest.id


def test_event_ids_seen_once(engine):
    with Session(engine) as s:
        assert q.first_sight_of_event("Ev1", "T1", session=s)
        assert not q.first_sight_of_event("Ev1", "T1", session=s)
        s.commit()


def test_lease_excludes_second_owner_until_expiry(engine):
    with Session(engine) as s:
        assert q.acquire_lease("digest:T1:C1", "host-a:1:x", 60, session=s)
        assert q.acquire_lease("digest:T1:C1", "host-a:1:x", 60, session=s)  # renew
        assert not q.acquire_lease("digest:T1:C1", "host-b:2:y", 60, session=s)
        q.release_lease("digest:T1:C1", "host-a:1:x", session=s)
        assert q.acquire_lease("digest:T1:C1", "host-b:2:y", -1, session=s)  # already expired
        assert q.acquire_lease("digest:T1:C1", "host-c:3:z", 60, session=s)


def test_papers_of_both_sources_and_many_at_once(engine):
    hf = PaperRecord(
        id="2407.00001",
        title="A",
        abstract="An abstract.",
        listed_on=DAY,
        upvotes=7,
        github_repo="https://github.com/x/y",
    )
    arxiv = PaperRecord(
        id="2407.00002",
        title="B",
        abstract="An abstract.",
        listed_on=DAY,
        source="arxiv",
        categories=("cs.LG", "stat.ML"),
    )
    many = [record(f"2408.{n:05d}") for n in range(1200)]
    with Session(engine) as s:
        q.upsert_papers(many[:300:3], session=s)  # some of them stored before
        s.commit()
        assert q.upsert_papers([hf, arxiv, *many], session=s) == (1102, 0)
        assert q.upsert_papers([arxiv, hf], session=s) == (0, 0)
        s.commit()
        got = q.get_papers(["2407.00001", "2407.00002"], session=s)
        assert (got["2407.00001"].upvotes, got["2407.00001"].github_repo) == (7, hf.github_repo)
        assert got["2407.00001"].categories == "" and got["2407.00001"].primary_category is None
        assert got["2407.00002"].categories == "cs.LG stat.ML"
        assert (got["2407.00002"].primary_category, got["2407.00002"].upvotes) == ("cs.LG", 0)
        assert q.count_papers(session=s) == 1202
