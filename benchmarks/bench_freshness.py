"""What a fresh search costs: the per-search look for papers other processes stored.

Every `/papers search` first calls `Archive.sync()`, which reads the archive revision (one
row) and reads papers only when it moved. This measures, on synthetic archives in SQLite
and PostgreSQL: `sync()` when nothing is new, a search with and without it, and the first
search after another connection committed 100 new papers (those papers read, indexed and
found). Writes `benchmarks/results/freshness.md`.

    .venv/bin/python benchmarks/bench_freshness.py [--sizes 10000,100000]
        [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402
import synthetic  # noqa: E402

SCHEMA = "bench_freshness_{n}"  # a schema of its own, dropped afterwards
NEW = 100


def worker(n: int, url: str) -> dict:
    from sqlalchemy import delete
    from sqlmodel import Session, col

    from bot.archive.live import Archive
    from bot.archive.search import search_papers
    from storage import queries
    from storage.db import open_engine
    from storage.models import Paper

    engine = open_engine(url)
    today = synthetic.day_of(n + NEW)
    archive = Archive(engine, snapshot=None)
    _ = archive.index
    queries_ = synthetic.queries()

    def ms(fn) -> float:
        t0 = time.perf_counter()
        fn()
        return 1000 * (time.perf_counter() - t0)

    with Session(engine) as session:
        checks = [ms(lambda: archive.sync(session=session)) for _ in range(300)]

        def search(q: str) -> None:
            search_papers(q, session=session, archive=archive, today=today)

        def synced_search(q: str) -> None:  # as `/papers search` does
            archive.sync(session=session)
            search(q)

        for q in queries_:  # warm both paths
            synced_search(q)
        plain = [ms(lambda q=q: search(q)) for _ in range(3) for q in queries_]
        synced = [ms(lambda q=q: synced_search(q)) for _ in range(3) for q in queries_]
        new = list(synthetic.records(NEW, first=n))
        with Session(open_engine(url)) as other:  # "another process" stores papers
            queries.upsert_papers(new, session=other)
            other.commit()
        session.rollback()  # a new search: a new transaction
        t0 = time.perf_counter()
        archive.sync(session=session)
        query = f"{new[0].title} since:{new[0].listed_on.isoformat()}"  # titles repeat
        page = search_papers(query, session=session, archive=archive, today=today)
        first_after = 1000 * (time.perf_counter() - t0)
        found = new[0].id in [p.id for p, _ in page.hits]
    with Session(engine) as session:  # leave the archive as it was
        ids = [r.id for r in new]
        session.execute(delete(Paper).where(col(Paper.id).in_(ids)))
        session.commit()
    return {
        "n": n,
        "check_p50": common.percentile(checks, 50),
        "check_p95": common.percentile(checks, 95),
        "search_p50": common.percentile(plain, 50),
        "search_p95": common.percentile(plain, 95),
        "synced_p50": common.percentile(synced, 50),
        "synced_p95": common.percentile(synced, 95),
        "first_after_ms": first_after,
        "found": found,
    }


def postgres_url(n: int, progress) -> str | None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from storage.db import open_engine, upgrade

    schema = SCHEMA.format(n=n)
    base = synthetic.postgres_base()
    try:
        admin = create_engine(base, connect_args={"connect_timeout": 3})
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        admin.dispose()
    except OperationalError:
        return None
    url = f"{base}?options=-csearch_path%3D{schema}"
    engine = open_engine(url)
    upgrade(engine)
    synthetic._fill(engine, n, progress)
    engine.dispose()
    return url


def drop_postgres(n: int) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(synthetic.postgres_base())
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA.format(n=n)} CASCADE"))
    admin.dispose()


def report(rows: list[dict], skipped: list[str]) -> str:
    body = common.table(
        [
            "papers",
            "database",
            "revision check p50 / p95",
            "search p50 / p95",
            "check + search p50 / p95",
            f"first search after {NEW} papers stored elsewhere",
            "found",
        ],
        [
            [
                f"{r['n']:,}",
                r["backend"],
                f"{r['check_p50']:.2f} / {r['check_p95']:.2f}",
                f"{r['search_p50']:.1f} / {r['search_p95']:.1f}",
                f"{r['synced_p50']:.1f} / {r['synced_p95']:.1f}",
                f"{r['first_after_ms']:.0f}",
                "yes" if r["found"] else "NO",
            ]
            for r in rows
        ],
    )
    note = f"\n\nSkipped: {', '.join(skipped)}.\n" if skipped else "\n"
    return (
        "# Search freshness: the per-search check\n\n"
        f"Generated by `benchmarks/bench_freshness.py` ({common.machine()}). Times in ms. "
        "Synthetic archives (`benchmarks/synthetic.py`), the 52 fixed queries, three rounds. "
        "Revision check: `Archive.sync()` when nothing is new (one one-row query). "
        "First search after: another connection commits 100 new papers, then one `sync()` "
        "and a search for one of them by its title and listing day; it includes reading "
        "every paper stored within the 10-minute clock margin before the index was built, "
        "which for an archive filled just before the run is all of it (a running bot reads "
        "only the new ones).\n\n" + body + note
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(int(args.worker[0]), args.worker[1])))
        return 0
    rows, skipped = [], []
    for n in (int(s) for s in args.sizes.split(",")):
        for backend in args.backends.split(","):

            def progress(msg: str, backend: str = backend) -> None:
                print(f"  {backend}: {msg}", file=sys.stderr, flush=True)

            if backend == "sqlite":
                url = synthetic.sqlite_archive(n, progress)
            else:
                url = postgres_url(n, progress)
                if url is None:
                    skipped.append(f"PostgreSQL at {n:,} papers (not reachable)")
                    continue
            try:
                result = common.run_worker(Path(__file__), str(n), url)
            finally:
                if backend != "sqlite":
                    drop_postgres(n)
            rows.append({**result, "backend": "SQLite" if backend == "sqlite" else "PostgreSQL"})
    common.write_result("freshness", report(rows, skipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
