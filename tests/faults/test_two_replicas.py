"""Two replicas at once against one database: each paper reaches each channel once.

Two real `papers-bot digest` processes start together (both fetch, both plan, both post);
and, at the storage level, two sessions store the same day's papers at the same moment,
the second blocking on the first's uncommitted rows, as two replicas fetching at once do.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import threading

from sqlmodel import Session, select

from bot.sources import PaperRecord
from storage import queries
from storage.db import ensure_schema, open_engine
from storage.models import FetchedDay
from tests.faults.conftest import (
    DAY,
    TOPICS,
    assert_delivered_exactly_once,
    deliveries,
    in_lockstep,
    leases,
    start_cli,
    subscribe,
)


def test_two_digest_processes_at_once_post_each_paper_once(stack, record_property):
    subscribe(stack)
    in_lockstep(stack.hf)  # both fetch and store each day at the same moment
    env = {"DIGEST_POST_INTERVAL": "0.1", "DIGEST_MAX_PAPERS": "4"}
    procs = [start_cli(stack, "digest", "--date", DAY, **env) for _ in range(2)]
    try:
        results = [proc.communicate(timeout=60) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for proc, (_, err) in zip(procs, results, strict=True):
        assert "Traceback" not in err, err
        assert proc.returncode == 0, err
    outs = [out for out, _ in results]
    posted = assert_delivered_exactly_once(stack, list(TOPICS))
    assert all(posted.values())
    rows = deliveries(stack)
    assert len(rows) == len({(d.channel_id, d.paper_id) for d in rows})
    assert len(stack.slack.posts()) == len(rows) + len(TOPICS)
    assert leases(stack) == []
    record_property("outputs", " | ".join(o.replace("\n", "; ") for o in outs))


def _records(n: int) -> list[PaperRecord]:
    day = dt.date.fromisoformat(DAY)
    return [
        PaperRecord(id=f"2407.{i:05d}", title=f"Paper {i}", abstract="An abstract.", listed_on=day)
        for i in range(n)
    ]


def test_two_sessions_storing_the_same_day_at_once(db_url):
    """Replica A has stored the day's papers but not committed; replica B stores the same
    papers meanwhile and blocks on A's rows. When A commits, B must find them there, not
    fail on the unique key."""
    day = dt.date.fromisoformat(DAY)
    engine_a, engine_b = open_engine(db_url), open_engine(db_url)
    ensure_schema(engine_a)
    outcome: dict[str, object] = {}
    try:
        with Session(engine_a) as a:
            assert queries.upsert_papers(_records(30), session=a) == (30, 0)
            queries.record_fetched_day("hf", day, 30, 0, session=a)
            a.flush()

            def replica_b():
                try:
                    with Session(engine_b) as b:
                        outcome["b"] = queries.upsert_papers(_records(40), session=b)
                        queries.record_fetched_day("hf", day, 40, 1, session=b)
                        b.commit()
                except Exception as exc:  # reported below, with its type
                    outcome["b"] = exc

            thread = threading.Thread(target=replica_b)
            thread.start()
            thread.join(timeout=0.5)  # B is now waiting for A's lock or rows
            a.commit()
            thread.join(timeout=30)
        assert not thread.is_alive()
        assert outcome["b"] == (10, 0), outcome["b"]
        with Session(engine_a) as s:
            assert queries.count_papers(session=s) == 40
            row = s.exec(select(FetchedDay)).one()
            assert (row.papers, row.skipped) == (40, 1)
    finally:
        engine_a.dispose()
        engine_b.dispose()


def test_only_a_dead_process_of_this_host_and_pid_namespace_loses_its_lease(engine):
    """A replica that died here (its pid is gone) leaves a lease the next run takes at once;
    a replica in another container that shares the hostname (host networking) is not
    judged by pids it cannot see, so its lease is only taken once it expires."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    here = f"{queries.HOST_ID}:{dead.pid}:cafe0001"
    elsewhere = f"{socket.gethostname()}/4026599999:{dead.pid}:cafe0002"
    with Session(engine) as session:
        assert queries.acquire_lease("digest:T1:C1", here, 900, session=session)
        assert queries.acquire_lease("digest:T1:C2", elsewhere, 900, session=session)
        me = f"{queries.PROCESS_OWNER}:cafe0003"
        assert queries.acquire_lease("digest:T1:C1", me, 900, session=session)
        assert not queries.acquire_lease("digest:T1:C2", me, 900, session=session)
