"""Delivery at scale: a digest to 200 channels against a rate-limiting fake Slack, one command.

Run from the repo root: `.venv/bin/python benchmarks/bench_delivery.py` (about half a
minute). Options: `--channels 200 --papers-per-digest 5 --interval 1.0`.

In a fresh worker process, with nothing faked but Slack:

- a real SQLite database (a new file each run) holds 3,000 synthetic papers, the last
  three days' 300 of them recent, and 200 channels each subscribed to three topics;
- the loopback fake Slack of `tests/fakes/slack_api.py` enforces one message per second
  per channel (token bucket, burst 1), answering HTTP 429 with `Retry-After` beyond it;
- `bot.digest.run.run_digest` runs as the daily job does: the client from `bot.app.make_client`
  (which retries 429s after `Retry-After`), DIGEST_MAX_PAPERS = 5 (so a digest is up to six
  messages: the parent and five threaded replies), DIGEST_POST_INTERVAL = 1.0 s (default).

Measured: the wall time of `run_digest` (planning included; the posting part apart), the
messages Slack accepted, 429 answers, duplicates (`FakeSlack.duplicate_posts`: same channel,
thread and text), and losses: planned papers without an accepted reply in their channel's
thread, digests without a parent. A second `run_digest` must post nothing.
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

TARGET_S = 30.0
STORED = 3000
TOPICS = (
    "contrastive learning",
    "face recognition",
    "recommender systems",
    "medical imaging",
    "neural networks",
    "language models",
    "reinforcement learning",
    "image segmentation",
    "diffusion models",
    "adversarial robustness",
    "vision transformers",
    "graph neural networks",
    "object detection",
    "knowledge distillation",
    "federated learning",
    "explainability",
)


def worker(channels: int, per_digest: int, interval: float) -> dict:
    from sqlmodel import Session

    from bot.app import make_client
    from bot.archive.live import Archive
    from bot.digest.run import run_digest
    from bot.matching.ranking import parse_topic
    from bot.settings import Settings
    from bot.subscriptions import topic_key
    from storage import queries
    from storage.db import ensure_schema, open_engine
    from tests.fakes.slack_api import FakeSlack

    rng = random.Random(17)
    today = synthetic.day_of(STORED - 1)
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as slack:
        url = f"sqlite:///{Path(tmp) / 'papers.db'}"
        engine = open_engine(url)
        ensure_schema(engine)
        with Session(engine) as session:
            queries.upsert_papers(synthetic.records(STORED), session=session)
            for number in range(channels):
                for text in rng.sample(TOPICS, 3):
                    key = topic_key(parse_topic(text))
                    channel = f"C{number:05d}"
                    queries.add_subscription("T0001", channel, text, key, "U1", session=session)
            session.commit()
        slack.enforce_rate_limit(per_channel_per_second=1.0, burst=1)
        settings = Settings(
            slack_bot_token="xoxb-bench",
            slack_signing_secret="bench",
            slack_api_url=slack.base_url,
            database_url=url,
            digest_max_papers=per_digest,
            post_interval=interval,
        )
        client = make_client(settings)
        archive = Archive(engine, snapshot=None)
        marks: dict[str, float] = {}

        def progress(message: str) -> None:
            if message.startswith("posting"):
                marks["posting"] = time.perf_counter()

        with Session(engine, expire_on_commit=False) as session:
            started = time.perf_counter()
            summary = run_digest(
                session=session,
                client=client,
                settings=settings,
                archive=archive,
                today=today,
                interval=settings.post_interval,
                progress=progress,
            )
            wall_s = time.perf_counter() - started
            posts_first = len(slack.posts())
            again = run_digest(
                session=session,
                client=client,
                settings=settings,
                archive=archive,
                today=today,
                interval=settings.post_interval,
            )
            deliveries = queries.all_deliveries(session=session)
            digests = {
                d.id: d
                for d in (
                    queries.get_digest("T0001", f"C{n:05d}", today, session=session)
                    for n in range(channels)
                )
                if d is not None
            }
        posts = slack.posts()
        parents = {(p.channel, p.ts) for p in posts if p.thread_ts is None}
        replies = {}
        for post in posts:
            if post.thread_ts is not None:
                replies.setdefault((post.channel, post.thread_ts), []).append(post)
        lost = 0
        for delivery in deliveries:
            digest = digests.get(delivery.digest_id)
            thread = replies.get((delivery.channel_id, digest.parent_ts if digest else None), [])
            mine = [p for p in thread if p.ts == delivery.reply_ts]
            if not mine or delivery.paper_id not in json.dumps(mine[0].blocks) + (
                mine[0].text or ""
            ):
                lost += 1
        lost_parents = sum(
            1 for d in digests.values() if (d.channel_id, d.parent_ts) not in parents
        )
        per_channel = {}
        for post in posts:
            per_channel[post.channel] = per_channel.get(post.channel, 0) + 1
        rate_limited = sum(1 for c in slack.calls("chat.postMessage") if c.status == 429)
        return {
            "channels": channels,
            "per_digest": per_digest,
            "interval": interval,
            "wall_s": wall_s,
            "planning_s": marks.get("posting", started) - started,
            "posting_s": wall_s - (marks.get("posting", started) - started),
            "posts": posts_first,
            "posts_second_run": len(posts) - posts_first,
            "channels_posted": len(per_channel),
            "most_per_channel": max(per_channel.values(), default=0),
            "planned": len(deliveries),
            "digests": len(digests),
            "duplicates": len(slack.duplicate_posts()),
            "lost": lost + lost_parents,
            "rate_limited": rate_limited,
            "left_pending": summary.left_pending + again.left_pending,
            "failed": len(summary.failed),
        }


def report(r: dict) -> str:
    rows = [
        [
            f"{r['channels']}",
            f"1 + {r['per_digest']}",
            f"{r['interval']:.1f} s",
            f"{r['wall_s']:.1f} s",
            f"{r['planning_s']:.1f} s",
            f"{r['posting_s']:.1f} s",
            f"{r['posts']:,}",
            f"{r['rate_limited']}",
            f"{r['duplicates']}",
            f"{r['lost']}",
            f"{r['posts_second_run']}",
        ]
    ]
    ok = r["wall_s"] <= TARGET_S and r["duplicates"] == 0 and r["lost"] == 0
    out = [
        "# Delivery at scale\n\n",
        f"Generated by `benchmarks/bench_delivery.py` on {dt.date.today()} "
        f"({common.machine()}). `bot.digest.run.run_digest` on a real SQLite database against "
        "the loopback fake Slack enforcing one message per second per channel (429 + "
        "Retry-After); "
        f"{r['digests']} digests with {r['planned']:,} papers planned.\n\n",
        common.table(
            [
                "channels",
                "messages per digest",
                "DIGEST_POST_INTERVAL",
                "wall time",
                "of which planning",
                "posting",
                "messages accepted",
                "429 answers",
                "duplicates",
                "lost",
                "posted by a second run",
            ],
            rows,
        ),
        f"\nMost messages to one channel: {r['most_per_channel']}; channels posted to: "
        f"{r['channels_posted']}; left pending: {r['left_pending']}; failed channels: "
        f"{r['failed']}. Lost: planned papers with no accepted reply (carrying the paper's "
        "id) in their channel's digest thread, plus digests without an accepted parent.\n\n",
        common.table(
            ["target", "measured", ""],
            [
                [
                    f"{r['channels']}-channel digest ≤ {TARGET_S:.0f} s, 0 duplicates, 0 losses",
                    f"{r['wall_s']:.1f} s, {r['duplicates']} duplicates, {r['lost']} lost",
                    "met" if ok else "missed",
                ]
            ],
            "lll",
        ),
    ]
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=200)
    parser.add_argument("--papers-per-digest", type=int, default=5)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.channels, args.papers_per_digest, args.interval)))
        return 0
    print(f"delivery: {args.channels} channels", file=sys.stderr, flush=True)
    done = common.run_worker(
        Path(__file__),
        "--channels",
        str(args.channels),
        "--papers-per-digest",
        str(args.papers_per_digest),
        "--interval",
        str(args.interval),
        timeout=600,
    )
    common.write_result("delivery", report(done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
