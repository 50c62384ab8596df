"""One arXiv day end to end: harvest 2,000 new papers from the loopback fake OAI-PMH server,
store them, encode them, and match them against 1,000 channels x 5 topics.

Run from the repo root: `.venv/bin/python benchmarks/bench_arxiv_day.py` (about four minutes,
most of it encoding). Options: `--papers 2000 --channels 1000 --topics-per-channel 5
--page-size 1000`.

In a fresh worker process, with a new SQLite database: `tests.fakes.arxiv_server.FakeArxiv`
serves `--papers` synthetic papers (`benchmarks/synthetic.py`, texts grown from the sample
abstracts) datestamped on one day, in pages of `--page-size` records with resumption tokens,
spread over cs.CL, cs.LG, cs.CV, cs.RO and stat.ML (a fifth cross-listed to a second
category). Timed, each through the product's own code path:

1. harvest + store: `bot.jobs.fetch_days` with `ArxivSource` (no pause between requests,
   `ARXIV_REQUEST_INTERVAL=0`), each page stored with its resumption point;
2. encode: `Archive.embed` with the bundled sentence encoder (papers per second);
3. match: `bot.digest.planning.plan_channel` for every channel over the day's papers, topics
   encoded once in a batch and closeness from the stored vectors, as `run_digest` does.

The archive holds only the day's papers (no older archive): IDF comes from those 2,000.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
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
from bench_matching import channel_topics  # noqa: E402

TARGET_S = 300.0
DAY = dt.date(2024, 7, 29)
CATEGORIES = ["cs.CL", "cs.LG", "cs.CV", "cs.RO", "stat.ML"]


def worker(n: int, channels: int, per_channel: int, page_size: int) -> dict:
    from sqlmodel import Session

    from bot.archive.live import Archive
    from bot.digest.planning import plan_channel, topic_words
    from bot.jobs import fetch_days
    from bot.matching.semantic import load_encoder
    from bot.sources.arxiv import ArxivSource
    from storage import queries
    from storage.db import ensure_schema, open_engine
    from tests.fakes.arxiv_server import FakeArxiv, arxiv_record

    rng = random.Random(3)
    records = []
    for number, paper in enumerate(synthetic.papers(n)):
        cats = [rng.choice(CATEGORIES)]
        if rng.random() < 0.2:
            cats.append(rng.choice([c for c in CATEGORIES if c != cats[0]]))
        records.append(
            arxiv_record(
                f"2407.{number:05d}",
                DAY.isoformat(),
                title=paper["title"],
                abstract=paper["abstract"],
                categories=" ".join(cats),
                authors=tuple((a.split()[-1], a.split()[0]) for a in paper["authors"]),
            )
        )
    folder = Path(tempfile.mkdtemp(prefix="bench-arxiv-"))
    engine = open_engine(f"sqlite:///{folder / 'papers.db'}")
    ensure_schema(engine)
    encoder = load_encoder("auto")
    with FakeArxiv(page_size=page_size) as oai:
        oai.add(*records)
        source = ArxivSource(oai.base_url, categories=CATEGORIES, interval=0.0)
        started = time.perf_counter()
        with Session(engine) as session:
            summary = fetch_days([DAY], session=session, source=source)
        harvest_s = time.perf_counter() - started
        requests = len(oai.requests)
        source.close()
    with Session(engine) as session:
        ids = [p.id for p in queries.papers_listed_between(DAY, DAY, session=session)]
    archive = Archive(engine, snapshot=None, encoder=encoder)
    started = time.perf_counter()
    encoded = archive.embed(ids)
    encode_s = time.perf_counter() - started

    topics = channel_topics(channels, per_channel)
    started = time.perf_counter()
    index = archive.index
    with Session(engine) as session:
        candidates = queries.papers_listed_between(DAY, DAY, session=session)
    semantics = archive.semantics_for(ids)
    if semantics is not None:
        semantics.warm(topic_words({t for channel in topics for t in channel}))
    prepare_s = time.perf_counter() - started
    started = time.perf_counter()
    planned = [
        plan_channel(index, channel, candidates, limit=10, semantics=semantics)
        for channel in topics
    ]
    match_s = time.perf_counter() - started
    return {
        "n": n,
        "stored": len(ids),
        "new": summary.new,
        "pages": requests,
        "channels": channels,
        "per_channel": per_channel,
        "harvest_s": harvest_s,
        "encoder": encoder.model_id if encoder else None,
        "encoded": encoded,
        "encode_s": encode_s,
        "prepare_s": prepare_s,
        "match_s": match_s,
        "with_papers": sum(1 for r in planned if r),
        "planned": sum(len(r) for r in planned),
        "peak": common.peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--topics-per-channel", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    numbers = (args.papers, args.channels, args.topics_per_channel, args.page_size)
    if args.worker:
        print(json.dumps(worker(*numbers)))
        return
    r = common.run_worker(
        Path(__file__),
        *[
            f"--{k}={v}"
            for k, v in zip(
                ("papers", "channels", "topics-per-channel", "page-size"), numbers, strict=True
            )
        ],
    )
    total = r["harvest_s"] + r["encode_s"] + r["prepare_s"] + r["match_s"]
    rate = r["encoded"] / r["encode_s"] if r["encode_s"] else float("nan")
    rows = [
        [
            "harvest + store",
            f"{r['stored']:,} papers, {r['pages']} requests",
            common.fmt(r["harvest_s"]),
        ],
        [
            "encode",
            f"{r['encoded']:,} papers ({rate:.1f} papers/s, {r['encoder'] or 'no encoder'})",
            common.fmt(r["encode_s"]),
        ],
        [
            "index + topics",
            f"{r['channels']:,} × {r['per_channel']} topics",
            common.fmt(r["prepare_s"]),
        ],
        [
            "match",
            f"{r['planned']:,} papers planned for {r['with_papers']:,} channels",
            common.fmt(r["match_s"]),
        ],
        ["**total**", "", f"**{common.fmt(total)}**"],
    ]
    verdict = "met" if total <= TARGET_S else "missed"
    if r["n"] < 2000:
        verdict = "not comparable (the target is for 2,000 papers)"
    text = (
        "# One arXiv day end to end\n\n"
        f"Generated by `benchmarks/bench_arxiv_day.py` on {dt.date.today()} ({common.machine()}; "
        "a shared, noisy machine). A fresh SQLite database; the loopback fake arXiv serving "
        f"{r['n']:,} synthetic papers of one day in pages of {numbers[3]:,}, without pauses; "
        f"peak RSS {r['peak']:.0f} MB.\n\n"
        + common.table(["stage", "what", "seconds"], rows, "llr")
        + f"\nTarget: harvest + store + encode + match ≤ {TARGET_S:.0f} s: "
        f"{total:.1f} s, {verdict}.\n"
    )
    common.write_result("arxiv_day", text)


if __name__ == "__main__":
    main()
