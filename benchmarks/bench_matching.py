"""Daily matching at scale: 2,000 new papers against 5,000 channel topics, one command.

Run from the repo root: `.venv/bin/python benchmarks/bench_matching.py` (about a minute).
Options: `--papers 100000 --new 2000 --channels 1000 --topics-per-channel 5`.

In a fresh worker process: the 100,000-paper synthetic archive of `benchmarks/synthetic.py`
is indexed (not timed); its last 2,000 papers are the new ones. 1,000 channels follow 5
topics each, drawn with a seeded RNG from realistic topic phrases: the graded topics, common
ML subjects (`synthetic.topic_phrases()`) and two- and three-word phrases of the sample
titles (the way people name what they follow); a few use topic syntax ("quoted phrases",
-exclusions). Each channel's candidates are the new papers minus up to 20 it already got,
and one channel in ten has team feedback (`bot.matching.feedback.expansion` of three voted
papers).

Timed: `bot.digest.planning.plan_channel` for every channel, as `run_digest` calls it (topics
parsed, `bot.matching.ranking.match_topics` with the threshold, filters, feedback and
popularity), run twice over all channels: the first run starts cold (no candidate block, no
cached word-pair statistics), the second shows the steady state. Side by side: the same channels
through the unbatched path (every topic scored over the whole archive, as before the candidate
block), on the first 50 channels, with its results compared to the batched ones. Then, when the
sentence encoder is installed, every channel again with closeness in meaning (the distinct
topics encoded in one batch, as `run_digest` does, timed apart; random paper vectors)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402
import synthetic  # noqa: E402

TARGET_S = 5.0
UNBATCHED_SAMPLE = 50
_TITLE_WORD = re.compile(r"[A-Za-z][A-Za-z-]+")


def title_phrases() -> list[str]:
    """Two- and three-word phrases of the sample titles, e.g. "noise mask"."""
    from bot.matching.text import STOPWORDS

    out = []
    for item in synthetic.seed_items():
        words = [w.lower() for w in _TITLE_WORD.findall(item["paper"]["title"])]
        for size in (2, 3):
            for i in range(len(words) - size + 1):
                gram = words[i : i + size]
                if gram[0] not in STOPWORDS and gram[-1] not in STOPWORDS:
                    out.append(" ".join(gram))
    return list(dict.fromkeys(out))


def channel_topics(channels: int, per_channel: int, seed: int = 5) -> list[list[str]]:
    rng = random.Random(seed)
    pool = [*synthetic.topic_phrases(), *title_phrases()]
    syntax = ['"contrastive learning"', "diffusion -video", '"language models" reasoning']
    out = []
    for _ in range(channels):
        topics = rng.sample(pool, per_channel)
        if rng.random() < 0.05:
            topics[-1] = rng.choice(syntax)
        out.append(topics)
    return out


def worker(n: int, new: int, channels: int, per_channel: int) -> dict:
    import bot.matching.ranking as ranking
    from bot.digest.planning import plan_channel
    from bot.matching import feedback
    from bot.matching.index import Bm25Index, Doc
    from storage.models import Paper

    t0 = time.perf_counter()
    index = Bm25Index.build(
        Doc(p["id"], p["title"], p["abstract"], tuple(p["authors"]), p["upvotes"])
        for p in synthetic.papers(n)
    )
    build_s = time.perf_counter() - t0
    fresh = synthetic.papers(new, first=n - new)
    papers = [
        Paper(
            id=p["id"],
            title=p["title"],
            abstract=p["abstract"],
            authors="\n".join(p["authors"]),
            upvotes=p["upvotes"],
            listed_on=p["listed_on"],
        )
        for p in fresh
    ]
    rng = random.Random(9)
    topics = channel_topics(channels, per_channel)
    plans = []
    for number, channel in enumerate(topics):
        got = set(rng.sample(range(new), rng.randint(0, 20)))
        candidates = [p for i, p in enumerate(papers) if i not in got]
        extra = None
        if number % 10 == 0:
            votes = {papers[i].id: rng.choice([1, 1, 2, -1]) for i in rng.sample(range(new), 3)}
            extra = feedback.expansion(index, votes) or None
        plans.append((channel, candidates, extra))

    def plan_all(sample: int | None = None, semantics=None) -> tuple[float, list[float], list]:
        per_channel_s, results = [], []
        started = time.perf_counter()
        for channel, candidates, extra in plans[:sample]:
            t = time.perf_counter()
            results.append(
                plan_channel(
                    index, channel, candidates, limit=10, extra_terms=extra, semantics=semantics
                )
            )
            per_channel_s.append(time.perf_counter() - t)
        return time.perf_counter() - started, per_channel_s, results

    rss_before = common.rss_mb()
    first_s, first_each, first = plan_all()
    second_s, second_each, second = plan_all()
    limit, ranking.BLOCK_MAX_ROWS = ranking.BLOCK_MAX_ROWS, 0  # the whole-index path
    try:
        plain_s, _each, plain = plan_all(UNBATCHED_SAMPLE)
    finally:
        ranking.BLOCK_MAX_ROWS = limit
    same = all(
        [(m.paper_id, m.topic, m.terms, m.boosted) for m in a]
        == [(m.paper_id, m.topic, m.terms, m.boosted) for m in b]
        and all(abs(x.score - y.score) <= 2e-4 for x, y in zip(a, b, strict=True))
        for a, b in zip(plain, first, strict=False)
    )
    meaning = with_meaning(index, topics, plan_all)
    return {
        **meaning,
        "n": n,
        "new": new,
        "channels": channels,
        "per_channel": per_channel,
        "distinct_topics": len({t for channel in topics for t in channel}),
        "build_s": build_s,
        "first_s": first_s,
        "second_s": second_s,
        "first_each": first_each,
        "second_each": second_each,
        "plain_s": plain_s,
        "plain_channels": len(plain),
        "same": same,
        "with_papers": sum(1 for r in first if r),
        "planned": sum(len(r) for r in first),
        "stable": [[m.paper_id for m in r] for r in first]
        == [[m.paper_id for m in r] for r in second],
        "feedback_channels": sum(1 for _c, _p, extra in plans if extra),
        "rss_before": rss_before,
        "rss_after": common.rss_mb(),
        "peak": common.peak_mb(),
    }


def with_meaning(index, topics: list[list[str]], plan_all) -> dict:
    """The same channels with closeness in meaning: the bundled encoder for the topics, and
    random unit vectors for the newest REFERENCE_SIZE papers, the new ones among them
    (encoding 100,000 synthetic abstracts would take hours; scoring costs the same). As a
    digest run has it, those are both the reference sample and the papers scored. Empty
    without the encoder."""
    import numpy as np

    from bot.digest.planning import topic_words
    from bot.matching.embedding import Encoder, bundled_model_dir
    from bot.matching.semantic import REFERENCE_SIZE, Semantics

    folder = bundled_model_dir()
    if folder is None:
        return {}
    encoder = Encoder.load(folder)
    newest = index.ids[-REFERENCE_SIZE:]  # synthetic ids grow with the day listed
    vectors = np.random.default_rng(1).standard_normal((len(newest), encoder.dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    semantics = Semantics(encoder, vectors, zip(newest, vectors, strict=True))
    words = topic_words({t for channel in topics for t in channel})
    started = time.perf_counter()
    semantics.warm(words)
    warm_s = time.perf_counter() - started
    first_s, _each, first = plan_all(semantics=semantics)
    second_s, _each, _second = plan_all(semantics=semantics)
    return {
        "meaning_topics": len(words),
        "meaning_warm_s": warm_s,
        "meaning_first_s": first_s,
        "meaning_second_s": second_s,
        "meaning_planned": sum(len(r) for r in first),
        "meaning_let_in": sum(m.semantic for r in first for m in r),
    }


def report(r: dict) -> str:
    p = common.percentile
    per_1000 = r["plain_s"] / r["plain_channels"] * r["channels"]
    rows = [
        [
            f"{r['n']:,}",
            f"{r['new']:,}",
            f"{r['channels']:,} × {r['per_channel']} = {r['channels'] * r['per_channel']:,} "
            f"({r['distinct_topics']} distinct)",
            common.fmt(r["first_s"], 2) + " s",
            common.fmt(r["second_s"], 2) + " s",
            f"{common.ms(p(r['first_each'], 50))} / {common.ms(p(r['first_each'], 95))}",
            f"{common.ms(r['first_each'][0])} / {common.ms(p(r['first_each'], 100))}",
            f"{r['with_papers']:,}",
            f"{r['planned']:,}",
            f"{common.fmt(per_1000, 1)} s ({r['first_s'] and per_1000 / r['first_s']:.0f}x)",
            "yes" if r["same"] else "NO",
        ]
    ]
    out = [
        "# Daily matching at scale\n\n",
        f"Generated by `benchmarks/bench_matching.py` on {dt.date.today()} "
        f"({common.machine()}; a shared, noisy machine). Every channel planned with "
        "`bot.digest.planning.plan_channel` (as `run_digest` does) against the new papers of a "
        "synthetic archive; one channel in ten has team feedback.\n\n",
        common.table(
            [
                "archive",
                "new papers",
                "channels × topics",
                "all channels, first run",
                "second run",
                "per channel p50 / p95 (ms)",
                "first / slowest channel (ms)",
                "channels with papers",
                "papers planned",
                "unbatched path, per 1,000 channels",
                "same plans",
            ],
            rows,
            "rrl" + "r" * 7 + "l",
        ),
        "\nFirst run: cold (the candidate block and the word-pair statistics are built by the "
        "first channels; the first channel builds the block); second run: the same channels "
        "again, all cached. Unbatched path: the first "
        f"{r['plain_channels']} channels with every topic scored over the whole archive "
        "(this engine without the candidate block), scaled to all channels; the ratio is to the "
        "first batched run. Same plans: its papers, topics, words and flags equal the batched "
        "ones (scores to 4 decimals).\n\n",
        meaning_note(r),
        common.table(
            ["target", "measured", ""],
            [
                [
                    f"{r['new']:,} papers × {r['channels'] * r['per_channel']:,} topics "
                    f"≤ {TARGET_S:.0f} s",
                    f"{r['first_s']:.2f} s (first run)",
                    "met" if r["first_s"] <= TARGET_S else "missed",
                ]
            ],
            "lll",
        ),
    ]
    return "".join(out)


def meaning_note(r: dict) -> str:
    if "meaning_first_s" not in r:
        return "Closeness in meaning not measured: the sentence encoder is not installed.\n\n"
    total = r["meaning_warm_s"] + r["meaning_first_s"]
    return (
        "With closeness in meaning (`semantics`, as `run_digest` passes it): encoding the "
        f"{r['meaning_topics']} distinct topics in one batch {r['meaning_warm_s']:.2f} s, then "
        f"all channels {r['meaning_first_s']:.2f} s (first run) and "
        f"{r['meaning_second_s']:.2f} s (second); {r['meaning_planned']:,} papers planned, "
        f"{r['meaning_let_in']:,} of them let in on closeness (paper vectors are random "
        f"here, so which ones means nothing). Words and meaning, first run: {total:.2f} s.\n\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--new", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--topics-per-channel", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(args.papers, args.new, args.channels, args.topics_per_channel)
        print(json.dumps(result))
        return 0
    print(f"matching: {args.papers:,}-paper archive", file=sys.stderr, flush=True)
    done = common.run_worker(
        Path(__file__),
        "--papers",
        str(args.papers),
        "--new",
        str(args.new),
        "--channels",
        str(args.channels),
        "--topics-per-channel",
        str(args.topics_per_channel),
    )
    common.write_result("matching", report(done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
