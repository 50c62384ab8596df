"""The bot at a million papers: search, start-up, memory and ingest on one archive, one command.

Run from the repo root: `.venv/bin/python benchmarks/bench_million.py` (`--papers 1000000`,
`--reps 3`, `--pool real`). The first run stores the synthetic archive (`benchmarks/synthetic.py`,
words only: no paper vectors) in `benchmarks/.cache/archive-real-<n>.db`, which takes minutes
and is kept; its time is written beside it and reported. SQLite only. The archive recombines
the sentences of real papers (`--pool real`, results in `results/million.md`) or, as earlier
runs did, of the 70 sample papers (`--pool sample`, in `archive-<n>.db` and
`results/million-sample.md`), whose words are far commoner than in real listings.

Each measurement runs in a fresh worker process, as the bot runs it:

- start-up: `Archive(engine).index` with an empty cache directory ("first start": every
  title and abstract tokenized; it then writes the snapshot) and again with that snapshot
  ("restart", what every later start does). Ready is when `index` returns; RSS (VmRSS) is
  read then, and peak is VmHWM. Also a start whose snapshot holds over 10% retired rows
  (replaced papers' old rows), forced: they are dropped, and the result saved and mapped.
- search: in the restarted worker, each fixed query (`synthetic.queries()`) goes through
  what `/papers search` runs, `Archive.sync` then `bot.archive.search.search_papers`,
  database look-up of the page included, Slack excluded. "first" is each query's first run
  after start-up (no word-pair statistics cached), "repeated" the median of `--reps` more.
  RSS again after the searches.
- ingest: on a copy of the database, restarted from the snapshot, `bot.jobs._store` (what
  `papers-bot fetch` and the daily job run per listed day: store, commit, read back, index;
  words only) of five days of 2,000 new papers each, an arXiv day. Papers per second of
  the whole step, and of the database and index parts. Then a day of 2,000 papers of which
  200 replace stored papers with a changed abstract, as arXiv's new versions do: its time,
  and resident and peak memory from its start.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402
import synthetic  # noqa: E402

TARGET_P95_MS = 20.0
TARGET_START_S = 10.0
TARGET_RSS_MB = 1000.0
TARGET_INGEST = 3000.0
INGEST_DAYS = 5
INGEST_DAY_PAPERS = 2000
REPLACED = 200  # papers of the replacement day whose abstracts changed
POOLS = {
    "real": "4,987 real Hugging Face papers of `hf_daily_real.json`",
    "sample": "70 sample papers of `seed_daily_papers.json` (which makes many query words "
    "up to 13x commoner than in real papers: see `synthetic.py`)",
}


def archive_url(n: int, pool: str, progress) -> tuple[str, float | None]:
    """The cached words-only SQLite archive of n papers, and how long storing it took (None
    if that was not recorded)."""

    from storage.db import open_engine, upgrade

    synthetic.CACHE.mkdir(parents=True, exist_ok=True)
    db = synthetic.CACHE / (f"archive-{n}.db" if pool == "sample" else f"archive-{pool}-{n}.db")
    timing = db.with_name(db.name + ".json")
    url = f"sqlite:///{db}"
    engine = open_engine(url)
    upgrade(engine)
    started = time.perf_counter()
    synthetic._fill(engine, n, progress, pool)
    took = time.perf_counter() - started
    synthetic.settle(engine)
    engine.dispose()
    if not timing.exists() and took > 1.0:
        timing.write_text(json.dumps({"papers": n, "store_s": took}))
    recorded = json.loads(timing.read_text()) if timing.exists() else {}
    return url, recorded.get("store_s")


def snapshot_of(url: str, cache: Path) -> Path:
    """Where the bot keeps the index snapshot of `url` under the cache directory `cache`."""
    from bot.archive.live import default_snapshot_path
    from storage.db import open_engine

    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(cache)
    try:
        path = default_snapshot_path(open_engine(url))
    finally:
        if saved is None:
            del os.environ["XDG_CACHE_HOME"]
        else:
            os.environ["XDG_CACHE_HOME"] = saved
    assert path is not None
    return path


def snapshot_as(url: str, cache: Path, snapshot: Path) -> None:
    """Copy a snapshot to where the bot looks for that of `url` under `cache`."""
    target = snapshot_of(url, cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    if snapshot.is_dir():
        shutil.copytree(snapshot, target)
    else:
        shutil.copyfile(snapshot, target)


def on_disk(*paths: Path) -> None:
    """Write the files under `paths` to disk. Part of a copy just made may be in the page
    cache only: the ingest's first commit (an fsync of the database file) would otherwise
    wait for it to be written, 0.4-0.5 s of set-up charged to the first day."""
    for path in paths:
        for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# --------------------------------------------------------------------------- workers


def start_worker(url: str, cache: str, reps: int, search: bool) -> dict:
    """Start-up (and, with `search`, the served searches) in this fresh process."""
    from bot.archive.live import Archive

    os.environ["XDG_CACHE_HOME"] = cache
    rss_start = common.rss_mb()
    from storage.db import open_engine

    engine = open_engine(url)
    archive = Archive(engine)
    started = time.perf_counter()
    index = archive.index
    ready_s = time.perf_counter() - started
    out = {
        "papers": len(index),
        "reused": index.reused,
        "ready_s": ready_s,
        "rss_start": rss_start,
        "rss_ready": common.rss_mb(),
        "peak_ready": common.peak_mb(),
    }
    if search:
        out.update(search_runs(engine, archive, len(index), reps))
    saved = time.perf_counter()
    archive.flush()
    out["save_wait_s"] = time.perf_counter() - saved
    out["peak"] = common.peak_mb()
    return out


def search_runs(engine, archive, n: int, reps: int) -> dict:
    from sqlmodel import Session

    from bot.archive.search import search_papers

    today = synthetic.day_of(n - 1)
    queries = synthetic.queries()
    found = 0
    with Session(engine) as session:

        def timed(query: str) -> float:
            nonlocal found
            t0 = time.perf_counter()
            archive.sync(session=session)
            page = search_papers(query, session=session, archive=archive, today=today, limit=5)
            elapsed = time.perf_counter() - t0
            found += len(page.hits)
            return elapsed

        first = [timed(q) for q in queries]
        runs = [[timed(q) for q in queries] for _ in range(reps)]
    repeated = [common.median(column) for column in zip(*runs, strict=True)]
    slowest = sorted(zip(first, queries, strict=True), reverse=True)[:5]
    return {
        "first": first,
        "repeated": repeated,
        "slowest": [[q, t] for t, q in slowest],
        "hits": found,
        "rss_searched": common.rss_mb(),
        "anon_searched": common.anon_mb(),
    }


def compact_worker(url: str, cache: str) -> dict:
    """A start whose snapshot holds over `RETIRED_SHARE` retired rows, forced (the share set
    below 0, so this snapshot counts as one): `Archive.index` opens it, drops those rows
    (`Bm25Index.compacted`, whose cost depends on the live rows only), saves the result and
    maps it again."""
    import bot.archive.live as live
    from storage.db import open_engine

    os.environ["XDG_CACHE_HOME"] = cache
    live.RETIRED_SHARE = -1.0
    archive = live.Archive(open_engine(url))
    started = time.perf_counter()
    index = archive.index
    return {
        "s": time.perf_counter() - started,
        "papers": len(index),
        "rss": common.rss_mb(),
        "peak": common.peak_mb(),
    }


def ingest_worker(url: str, cache: str, n: int, pool: str) -> dict:
    """Five arXiv days stored and indexed into a copy of the archive, started from the
    snapshot."""
    from sqlmodel import Session

    from bot import jobs
    from bot.archive.live import Archive
    from storage import queries
    from storage.db import open_engine

    os.environ["XDG_CACHE_HOME"] = cache
    engine = open_engine(url)
    archive = Archive(engine)
    index = archive.index
    store_s = index_s = 0.0
    days = []
    real_add = archive.add

    def timed_add(docs):
        nonlocal index_s
        t0 = time.perf_counter()
        real_add(docs)
        index_s += time.perf_counter() - t0

    archive.add = timed_add  # type: ignore[method-assign]
    for day in range(INGEST_DAYS):
        first = n + day * INGEST_DAY_PAPERS
        records = list(synthetic.records(INGEST_DAY_PAPERS, first=first, pool=pool))
        before = index_s
        t0 = time.perf_counter()
        with Session(engine) as session:
            new, _updated, _encoded = jobs._store(records, session, archive)
        took = time.perf_counter() - t0
        store_s += took - (index_s - before)
        days.append({"new": new, "s": took, "index_s": index_s - before})
    t0 = time.perf_counter()
    archive.flush()  # the snapshot, written once the days are stored (SAVE_QUIET)
    save_s = time.perf_counter() - t0
    rss_days, peak_days, anon_days = common.rss_mb(), common.peak_mb(), common.anon_mb()
    # a day with replacements: arXiv lists new versions whose abstracts changed
    first_new = n + INGEST_DAYS * INGEST_DAY_PAPERS
    records = list(synthetic.records(INGEST_DAY_PAPERS - REPLACED, first=first_new, pool=pool))
    for record in synthetic.records(REPLACED, first=n // 2, pool=pool):
        records.append(replace(record, abstract=record.abstract + " Code is released."))
    with contextlib.suppress(OSError):  # peak memory measured from here on
        Path("/proc/self/clear_refs").write_text("5")
    before = index_s
    t0 = time.perf_counter()
    with Session(engine) as session:
        new, updated, _encoded = jobs._store(records, session, archive)
    replaced = {
        "new": new,
        "updated": updated,
        "s": time.perf_counter() - t0,
        "index_s": index_s - before,
        "rss": common.rss_mb(),
        "peak": common.peak_mb(),
    }
    index_s = before
    archive.flush()
    with Session(engine) as session:
        stored = queries.count_papers(session=session)
    return {
        "replaced": replaced,
        "days": days,
        "store_s": store_s,
        "index_s": index_s,
        "save_s": save_s,
        "papers": len(index),
        "stored": stored,
        "rss": rss_days,
        "anon": anon_days,
        "peak": peak_days,
    }


# --------------------------------------------------------------------------- report


def report(
    n: int,
    pool: str,
    store_s: float | None,
    first: dict,
    restart: dict,
    compact: dict,
    ingest: dict,
) -> str:
    p = common.percentile
    ms = common.ms
    days = ingest["days"]

    def rate_of(some: list[dict]) -> float:
        return sum(d["new"] for d in some) / sum(d["s"] for d in some)

    rate, first_day, later_days = rate_of(days), rate_of(days[:1]), rate_of(days[1:])
    rows = [
        [
            "first start (tokenize all)",
            f"{first['ready_s']:.1f} s",
            f"{first['reused']:,}",
            f"{first['rss_ready']:.0f}",
            f"{first['peak_ready']:.0f}",
        ],
        [
            "restart (snapshot)",
            f"{restart['ready_s']:.1f} s",
            f"{restart['reused']:,}",
            f"{restart['rss_ready']:.0f}",
            f"{restart['peak_ready']:.0f}",
        ],
        [
            "restart, snapshot over 10% retired rows (compacted, saved, mapped)",
            f"{compact['s']:.1f} s",
            f"{compact['papers']:,}",
            f"{compact['rss']:.0f}",
            f"{compact['peak']:.0f}",
        ],
    ]
    out = [
        f"# The bot at {n:,} papers\n\n",
        f"Generated by `benchmarks/bench_million.py --papers {n} --pool {pool}` on "
        f"{dt.date.today()} ({common.machine()}; a shared, noisy machine). SQLite; the "
        f"synthetic archive of `benchmarks/synthetic.py` recombining the {POOLS[pool]}, "
        "words only (no paper vectors, no encoder loaded).",
        f" Storing it took {store_s:.0f} s ({n / store_s:,.0f} papers/s, synthetic text "
        "included).\n\n"
        if store_s
        else "\n\n",
        "## Start-up: `Archive.index` to ready\n\n",
        common.table(
            ["start", "ready", "papers from snapshot", "RSS MB when ready", "peak MB"], rows
        ),
        "\n## Search as served: `Archive.sync` + `search_papers` (ms)\n\n",
        common.table(
            [
                "papers",
                "p50 first",
                "p95 first",
                "p50 repeated",
                "p95 repeated",
                "RSS MB after searches",
                "of it anonymous",
            ],
            [
                [
                    f"{restart['papers']:,}",
                    ms(p(restart["first"], 50)),
                    ms(p(restart["first"], 95)),
                    ms(p(restart["repeated"], 50)),
                    ms(p(restart["repeated"], 95)),
                    f"{restart['rss_searched']:.0f}",
                    f"{restart['anon_searched']:.0f}",
                ]
            ],
        ),
        "\nSlowest first runs: "
        + "; ".join(f"`{q}` {1000 * t:.0f} ms" for q, t in restart["slowest"])
        + ".\n\nResident memory (VmRSS) counts the pages of the mapped snapshot files that "
        "searches have read: clean pages shared with the page cache, which the kernel drops "
        "under memory pressure and reads again when needed. Anonymous (RssAnon) is the "
        "process's own memory.\n",
        f"\n## Ingest: {INGEST_DAYS} days of {INGEST_DAY_PAPERS:,} new papers "
        "(`jobs._store`, words only)\n\n",
        common.table(
            [
                "papers/s, whole step",
                "first day",
                "later days",
                "database part",
                "index part",
                "snapshot written after",
                "RSS MB after",
                "of it anonymous",
                "peak MB",
            ],
            [
                [
                    f"{rate:,.0f}",
                    f"{first_day:,.0f}",
                    f"{later_days:,.0f}",
                    f"{ingest['store_s']:.1f} s",
                    f"{ingest['index_s']:.1f} s",
                    f"{ingest['save_s']:.1f} s",
                    f"{ingest['rss']:.0f}",
                    f"{ingest['anon']:.0f}",
                    f"{ingest['peak']:.0f}",
                ]
            ],
        ),
        "\nThe index snapshot is written in the background once no new papers came for "
        "`SAVE_QUIET` seconds (`bot.archive.live`), so the five days cost one write, after "
        "them: its time is the wait for it, not counted in the papers per second. RSS is "
        "read after it. The first day is the first ingest after the restart: it meets every "
        "word of its papers for the first time in this process, so it stems and numbers them "
        "all (`Vocabulary`'s word cache is not in the snapshot); later days only their new "
        "words.\n",
        f"\nThen one day of {INGEST_DAY_PAPERS:,} papers of which {REPLACED} replace stored "
        "papers with a changed abstract (arXiv's new versions):\n\n",
        common.table(
            ["papers", "new", "updated", "whole step", "index part", "RSS MB after", "peak MB"],
            [
                [
                    f"{INGEST_DAY_PAPERS:,}",
                    f"{ingest['replaced']['new']:,}",
                    f"{ingest['replaced']['updated']:,}",
                    f"{ingest['replaced']['s']:.1f} s",
                    f"{ingest['replaced']['index_s']:.1f} s",
                    f"{ingest['replaced']['rss']:.0f}",
                    f"{ingest['replaced']['peak']:.0f}",
                ]
            ],
        ),
    ]
    p95 = p(restart["first"], 95) * 1000
    rss = max(restart["rss_ready"], restart["rss_searched"])
    targets = [
        [
            f"search p95 ≤ {TARGET_P95_MS:.0f} ms",
            f"{p95:.1f} ms (first runs)",
            p95 <= TARGET_P95_MS,
        ],
        [
            f"restart to ready ≤ {TARGET_START_S:.0f} s",
            f"{restart['ready_s']:.1f} s",
            restart["ready_s"] <= TARGET_START_S,
        ],
        [
            f"RSS ≤ {TARGET_RSS_MB:,.0f} MB, ready and after searches",
            f"{rss:,.0f} MB",
            rss <= TARGET_RSS_MB,
        ],
        [
            f"RSS ≤ {TARGET_RSS_MB:,.0f} MB after ingesting new papers",
            f"{ingest['rss']:,.0f} MB",
            ingest["rss"] <= TARGET_RSS_MB,
        ],
        [f"ingest ≥ {TARGET_INGEST:,.0f} papers/s", f"{rate:,.0f} papers/s", rate >= TARGET_INGEST],
    ]
    out.append("\n## Targets\n\n")
    out.append(
        common.table(
            ["target", "measured", ""],
            [[t, m, "met" if ok else "missed"] for t, m, ok in targets],
            "lll",
        )
    )
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--pool",
        choices=("real", "sample"),
        default="real",
        help="the papers the synthetic archive recombines (benchmarks/synthetic.py)",
    )
    parser.add_argument("--keep", help="keep the cache directories (snapshots) here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, url, cache = args.worker
        if kind == "compact":
            result = compact_worker(url, cache)
        elif kind == "ingest":
            result = ingest_worker(url, cache, args.papers, args.pool)
        else:
            result = start_worker(url, cache, args.reps, search=kind == "restart")
        print(json.dumps(result))
        return 0
    n = args.papers
    progress = lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)  # noqa: E731
    url, store_s = archive_url(n, args.pool, progress)
    script = Path(__file__)
    base = Path(args.keep or tempfile.mkdtemp(prefix="papers-bot-million-"))
    shutil.rmtree(base, ignore_errors=True)
    try:
        cache = str(base / "cache")
        extra = ("--papers", str(n), "--reps", str(args.reps), "--pool", args.pool)
        print(f"million: first start, {n:,} papers", file=sys.stderr, flush=True)
        first = common.run_worker(script, "first", url, cache, *extra, timeout=3600)
        print("million: restart and searches", file=sys.stderr, flush=True)
        restart = common.run_worker(script, "restart", url, cache, *extra, timeout=3600)
        print("million: a start dropping retired rows", file=sys.stderr, flush=True)
        compact = common.run_worker(script, "compact", url, cache, *extra, timeout=3600)
        print("million: ingest on a copy", file=sys.stderr, flush=True)
        copy = base / "copy.db"
        shutil.copyfile(url.removeprefix("sqlite:///"), copy)
        copy_cache = base / "copy-cache"
        snapshot_as(f"sqlite:///{copy}", copy_cache, snapshot_of(url, Path(cache)))
        on_disk(copy, copy_cache)
        ingest = common.run_worker(
            script, "ingest", f"sqlite:///{copy}", str(copy_cache), *extra, timeout=3600
        )
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    name = "million" if args.pool == "real" else f"million-{args.pool}"
    common.write_result(name, report(n, args.pool, store_s, first, restart, compact, ingest))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
