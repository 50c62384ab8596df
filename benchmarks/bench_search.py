"""Search at archive scale, measured against rank-bm25: one command, one table.

Run from the repo root: `.venv/bin/python benchmarks/bench_search.py` (about two minutes
the first time, which builds the synthetic databases under `benchmarks/.cache/`). Options:
`--sizes 10000,100000`, `--backends sqlite,postgres` (PostgreSQL from TEST_POSTGRES_URL or
`postgresql://postgres@127.0.0.1:5432/test`; skipped, and said so, if it does not answer),
`--reps 3`.

The archives are `benchmarks/synthetic.py`'s: the 70 sample abstracts recombined with a
seeded RNG into 10,000 and 100,000 papers, stored in a real database. Each measurement runs
in a fresh worker process:

- served: `bot.archive.live.Archive` builds the index from the database, as `papers-bot run`
  does (no snapshot: every abstract tokenized), then `bot.archive.search.search_papers` answers
  the fixed queries (`synthetic.queries()`: the eight graded topics and 44 realistic
  searches, some with topic syntax) exactly as `/papers search` does, database look-up of
  the page included, Slack excluded. "first" is each query's first run after the build
  (word-pair statistics not cached yet), "repeated" the median of `--reps` more runs.
  Refresh is `Archive.add` of one day's 100 new papers (median of 5 days). RSS is the
  worker's resident memory (VmRSS) after imports, after the build, and at the end; peak
  is VmHWM. "From snapshot" is a second build reusing the tokens saved by the first.
- reference: the same papers' tokens (title tokens three times, then the abstract's: the
  exact lists our index scores) go to `rank_bm25.BM25Okapi`, built once; then each query
  runs `--reps` times, alternately through our `bot.matching.ranking.search` (the served ranking),
  our plain `Bm25Index.scores`, and rank-bm25's `get_scores`, on the same tokens, in the
  same process. Speed-ups are ratios of those medians and 95th percentiles.
  Agreement: the top ten of `Bm25Index(idf="okapi")` scores against rank-bm25's (same
  formula; ties by row), and the top ten that `search` serves with rank-bm25's IDF and the
  proximity term off (the two documented differences, see `docs/ranking.md` and
  `tests/bot/matching/test_ranking.py::test_search_differs_from_rank_bm25_only_by_idf_and_proximity`);
  plus how much of rank-bm25's top ten the served search (Lucene IDF, proximity) keeps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402
import synthetic  # noqa: E402

TARGET_P95_MS = 20.0
TARGET_SPEEDUP = 10.0


# --------------------------------------------------------------------------- workers


def served_worker(n: int, url: str, reps: int) -> dict:
    from sqlmodel import Session

    from bot.archive.live import Archive
    from bot.archive.search import search_papers
    from bot.matching.index import Doc
    from storage.db import open_engine

    engine = open_engine(url)
    today = synthetic.day_of(n - 1)
    queries = synthetic.queries()
    rss_start = common.rss_mb()
    archive = Archive(engine, snapshot=None)
    started = time.perf_counter()
    index = archive.index
    build_s = time.perf_counter() - started
    rss_built = common.rss_mb()
    first: list[float] = []
    repeated: list[float] = []
    found = 0
    with Session(engine) as session:

        def timed(query: str) -> float:
            nonlocal found
            t0 = time.perf_counter()
            page = search_papers(query, session=session, archive=archive, today=today, limit=5)
            elapsed = time.perf_counter() - t0
            found += len(page.hits)
            return elapsed

        first = [timed(q) for q in queries]
        runs = [[timed(q) for q in queries] for _ in range(reps)]
        repeated = [common.median(column) for column in zip(*runs, strict=True)]
        adds = []
        for day in range(5):
            new = [
                Doc(p["id"], p["title"], p["abstract"], tuple(p["authors"]), p["upvotes"])
                for p in synthetic.papers(100, first=n + 100 * day)
            ]
            t0 = time.perf_counter()
            archive.add(new)
            adds.append(time.perf_counter() - t0)
        after_add = [timed(q) for q in queries]
    rss_end = common.rss_mb()
    peak = common.peak_mb()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "index"
        t0 = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - t0
        size_mb = sum(f.stat().st_size for f in path.resolve().iterdir()) / 1e6
        archive = index = None  # freed before the restart
        restarted = Archive(engine, snapshot=path)  # a restart: same database, saved tokens
        t0 = time.perf_counter()
        reused = restarted.index.reused
        snapshot_s = time.perf_counter() - t0
    return {
        "n": n,
        "build_s": build_s,
        "snapshot_s": snapshot_s,
        "snapshot_reused": reused,
        "snapshot_mb": size_mb,
        "save_s": save_s,
        "add_ms": 1000 * common.median(adds),
        "first": first,
        "repeated": repeated,
        "after_add": after_add,
        "hits": found,
        "rss_start": rss_start,
        "rss_built": rss_built,
        "rss_end": rss_end,
        "peak": peak,
    }


def top_ten(scores, positive_only: bool = True) -> list[int]:
    import numpy as np

    order = np.lexsort((np.arange(len(scores)), -scores))[:10]
    return [int(i) for i in order if scores[i] > 0 or not positive_only]


def reference_worker(n: int, reps: int) -> dict:
    import numpy as np
    from rank_bm25 import BM25Okapi

    import bot.matching.scoring as scoring
    from bot.matching.index import Bm25Index, Doc
    from bot.matching.ranking import parse_topic, search

    docs = (
        Doc(p["id"], p["title"], p["abstract"], tuple(p["authors"]), p["upvotes"])
        for p in synthetic.papers(n)
    )
    index = Bm25Index.build(docs)
    okapi = index.with_idf("okapi")
    state, terms = index._state, index._vocab.terms
    corpus = []
    for row in range(len(index)):
        stream = state.stream(row).tolist()
        cut = int(state.title_lens[row])
        title = [terms[t] for t in stream[:cut] if t >= 0]
        corpus.append(title * index.title_weight + [terms[t] for t in stream[cut:] if t >= 0])
    t0 = time.perf_counter()
    reference = BM25Okapi(corpus)
    reference_build_s = time.perf_counter() - t0
    del corpus
    ids = index.ids
    samples: dict[str, list[float]] = {"search": [], "scores": [], "reference": []}
    agree_scores = agree_search = comparable = 0
    overlap = []
    worst = 0.0
    for rep in range(reps):
        for query in synthetic.queries():
            tokens = list(parse_topic(query).terms)
            t0 = time.perf_counter()
            served = search(index, query, limit=10)[0]
            t1 = time.perf_counter()
            index.scores(dict.fromkeys(tokens, 1.0))
            t2 = time.perf_counter()
            expected = reference.get_scores(tokens)
            t3 = time.perf_counter()
            samples["search"].append(t1 - t0)
            samples["scores"].append(t2 - t1)
            samples["reference"].append(t3 - t2)
            if rep:
                continue
            ours = okapi.scores(dict.fromkeys(tokens, 1.0))
            worst = max(worst, float(np.max(np.abs(ours - expected) / np.maximum(expected, 1))))
            want = top_ten(expected)
            agree_scores += top_ten(ours) == want
            want_ids = [ids[i] for i in want]
            overlap.append(len(set(served) & set(want_ids)) / max(len(want_ids), 1))
            topic = parse_topic(query)
            if not (topic.phrases or topic.excluded or topic.authors):
                comparable += 1
                proximity, scoring.PROXIMITY_WEIGHT = scoring.PROXIMITY_WEIGHT, 0.0
                try:
                    agree_search += search(okapi, query, limit=10)[0] == want_ids
                finally:
                    scoring.PROXIMITY_WEIGHT = proximity
    return {
        "n": n,
        "reference_build_s": reference_build_s,
        "samples": samples,
        "queries": len(synthetic.queries()),
        "agree_scores": agree_scores,
        "agree_search": agree_search,
        "comparable": comparable,
        "overlap": sum(overlap) / len(overlap),
        "worst_relative_diff": worst,
        "peak": common.peak_mb(),
    }


# --------------------------------------------------------------------------- report


def report(served: list[dict], references: list[dict], skipped: list[str]) -> str:
    p = common.percentile
    out = [
        "# Search at archive scale\n\n",
        f"Generated by `benchmarks/bench_search.py` on {dt.date.today()} "
        f"({common.machine()}; a shared, noisy machine: compare ratios and medians measured "
        "side by side). Synthetic archives from the 70 sample papers "
        f"(`benchmarks/synthetic.py`); {len(synthetic.queries())} fixed queries.\n\n",
        "## As served: `search_papers` on a real database (times in ms unless said)\n\n",
    ]
    rows = []
    for r in served:
        rows.append(
            [
                f"{r['n']:,}",
                r["backend"],
                common.fmt(r["build_s"]) + " s",
                common.fmt(r["snapshot_s"]) + " s",
                common.fmt(r["add_ms"], 0),
                common.ms(p(r["first"], 50)),
                common.ms(p(r["first"], 95)),
                common.ms(p(r["repeated"], 50)),
                common.ms(p(r["repeated"], 95)),
                common.ms(p(r["after_add"], 95)),
                f"{r['rss_start']:.0f} → {r['rss_built']:.0f} → {r['rss_end']:.0f}",
                f"{r['peak']:.0f}",
            ]
        )
    out.append(
        common.table(
            [
                "papers",
                "database",
                "index build",
                "from snapshot",
                "refresh: add 100",
                "p50 first",
                "p95 first",
                "p50 repeated",
                "p95 repeated",
                "p95 after refresh",
                "RSS MB: start → built → end",
                "peak MB",
            ],
            rows,
            "ll" + "r" * 10,
        )
    )
    if skipped:
        out.append("\nNot measured: " + "; ".join(skipped) + ".\n")
    out.append(
        "\nIndex build: every stored title and abstract read and tokenized (what a first "
        "start does); from snapshot: the same index rebuilt from the database with the "
        "tokens saved by the last run (what every later start does). RSS is the worker "
        "process (imports, database, index); the bot's own is in `startup.md`.\n"
    )
    out.append("\n## Against rank-bm25 on the same tokens, same process (ms)\n\n")
    rows = []
    for r in references:
        s = r["samples"]
        rows.append(
            [
                f"{r['n']:,}",
                common.ms(p(s["search"], 50)),
                common.ms(p(s["search"], 95)),
                common.ms(p(s["scores"], 50)),
                common.ms(p(s["reference"], 50)),
                common.ms(p(s["reference"], 95)),
                f"{p(s['reference'], 50) / p(s['search'], 50):.0f}x",
                f"{p(s['reference'], 95) / p(s['search'], 95):.0f}x",
                f"{p(s['reference'], 50) / p(s['scores'], 50):.0f}x",
                common.fmt(r["reference_build_s"]) + " s",
                f"{r['agree_scores']}/{r['queries']}",
                f"{r['agree_search']}/{r['comparable']}",
                f"{100 * r['overlap']:.0f}%",
            ]
        )
    out.append(
        common.table(
            [
                "papers",
                "search p50",
                "search p95",
                "scores() p50",
                "rank-bm25 p50",
                "rank-bm25 p95",
                "speed-up p50",
                "speed-up p95",
                "scores() speed-up",
                "rank-bm25 build",
                "same top 10 (okapi IDF)",
                "same top 10 (served, okapi IDF, no proximity)",
                "served top 10 in rank-bm25's",
            ],
            rows,
        )
    )
    worst = max((r["worst_relative_diff"] for r in references), default=0.0)
    out.append(
        "\n`search` is the full served ranking (parse, BM25 over the archive, word-pair "
        "re-rank of the best 1,000, filters, order); `scores()` is plain BM25 over every "
        "paper. Same top 10 (okapi IDF): our scores with rank-bm25's IDF against its "
        f"`get_scores` (largest relative difference {worst:.1e}). The served search differs "
        "from rank-bm25 by design in two documented, tested ways: Lucene's IDF (rank-bm25 "
        "floors negative IDFs at 0.25 x the mean, which is not monotone in document "
        "frequency) and the word-pair proximity term; with both undone its top ten is "
        "rank-bm25's (second agreement column, queries without topic syntax).\n"
    )
    big = [r for r in served if r["n"] == max(x["n"] for x in served)]
    ref = max(references, key=lambda r: r["n"]) if references else None
    if big and ref:
        worst_p95 = max(p(r["first"], 95) for r in big) * 1000
        speedup = p(ref["samples"]["reference"], 50) / p(ref["samples"]["search"], 50)
        rows = [
            [
                f"search p95 ≤ {TARGET_P95_MS:.0f} ms at {big[0]['n']:,} papers",
                f"{worst_p95:.1f} ms (first runs, worst database)",
                "met" if worst_p95 <= TARGET_P95_MS else "missed",
            ],
            [
                f"≥ {TARGET_SPEEDUP:.0f}x faster than rank-bm25",
                f"{speedup:.0f}x (p50)",
                "met" if speedup >= TARGET_SPEEDUP else "missed",
            ],
            [
                "same top ten as the reference on the same tokens",
                f"{ref['agree_scores']}/{ref['queries']} (okapi IDF); served: "
                f"{ref['agree_search']}/{ref['comparable']} once IDF and proximity are undone",
                "met (documented, tested differences)"
                if ref["agree_scores"] == ref["queries"]
                and ref["agree_search"] == ref["comparable"]
                else "missed",
            ],
        ]
        out.append("\n## Targets\n\n")
        out.append(common.table(["target", "measured", ""], rows, "lll"))
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, n = args.worker[0], int(args.worker[1])
        if kind == "served":
            result = served_worker(n, args.worker[2], args.reps)
        else:
            result = reference_worker(n, args.reps)
        print(json.dumps(result))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    served, references, skipped = [], [], []
    script = Path(__file__)
    for n in sizes:
        for backend in args.backends.split(","):

            def progress(msg: str, backend: str = backend) -> None:
                print(f"  {backend}: {msg}", file=sys.stderr, flush=True)

            if backend == "sqlite":
                url = synthetic.sqlite_archive(n, progress)
            else:
                url = synthetic.postgres_archive(n, progress, base=synthetic.postgres_base())
                if url is None:
                    skipped.append(f"PostgreSQL at {n:,} papers (not reachable)")
                    continue
            print(f"search: {n:,} papers on {backend}", file=sys.stderr, flush=True)
            result = common.run_worker(script, "served", str(n), url, "--reps", str(args.reps))
            served.append({**result, "backend": "SQLite" if backend == "sqlite" else "PostgreSQL"})
        print(f"search: rank-bm25 reference at {n:,} papers", file=sys.stderr, flush=True)
        references.append(common.run_worker(script, "reference", str(n), "--reps", str(args.reps)))
    common.write_result("search", report(served, references, skipped))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
