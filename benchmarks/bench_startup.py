"""Start-up at archive scale: `papers-bot run` to a healthy server, one command.

Run from the repo root: `.venv/bin/python benchmarks/bench_startup.py` (about three minutes
the first time, which stores the synthetic archive in `benchmarks/.cache/`). Options:
`--papers 100000`, `--runs 3`, `--backends sqlite,postgres` (PostgreSQL from
TEST_POSTGRES_URL or `postgresql://postgres@127.0.0.1:5432/test`, skipped if it does not
answer).

Each run starts the real console script, `.venv/bin/papers-bot run --host 127.0.0.1 --port
P`, in HTTP mode with fake tokens, `SLACK_API_URL` pointing at the loopback fake Slack of
`tests/fakes/slack_api.py` (Bolt checks the token with `auth.test` at start), and
`DATABASE_URL` at a database pre-filled with the synthetic archive (`benchmarks/synthetic.py`).
The archive's papers are dated a day back (`synthetic.settle`), as on any day after the
first import: a restart re-reads the papers changed within 10 minutes before its snapshot.
It polls `GET /healthz` every 20 ms; ready is the first `ok`, which `bot.server` only
serves once the index over every stored paper is built. Then it reads the process's
resident memory (VmRSS) and peak (VmHWM) from /proc, and stops it.

Two kinds of start, each `--runs` times: "first start" with an empty cache directory
(`XDG_CACHE_HOME`), so every abstract is tokenized (a new install, or the first start after
an upgrade that changed the tokenizer), and "restart" with the index snapshot that the
previous start wrote (every later start; see `bot/archive.py`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402
import synthetic  # noqa: E402

TARGET_S = 10.0
TARGET_MB = 500.0
READY_TIMEOUT_S = 120.0
BOT = Path(sys.executable).with_name("papers-bot")
_INDEXED = re.compile(r"indexed (\d+) papers in ([\d.]+) s \((\d+) from the snapshot\)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as answer:
            return answer.status == 200 and answer.read().strip() == b"ok"
    except OSError:
        return False


def snapshot_written(cache: Path) -> bool:
    """Whether the bot's index snapshot (a link to its folder) exists under `cache`."""
    return any(path.is_symlink() for path in cache.rglob("index-*"))


def start_once(url: str, slack_url: str, cache: Path, wait_for_snapshot: bool) -> dict:
    """Start the bot, wait until /healthz answers, measure, stop it."""
    port = free_port()
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": "bench-signing-secret",
        "SLACK_API_URL": slack_url,
        "DATABASE_URL": url,
        "HF_API_URL": "http://127.0.0.1:9/api",  # never called: no job is due
        "DIGEST_TIME": "23:59",
        "XDG_CACHE_HOME": str(cache),
        "LOG_LEVEL": "INFO",
    }
    env.pop("SLACK_APP_TOKEN", None)
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        bot = subprocess.Popen(
            [str(BOT), "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=tempfile.gettempdir(),  # no .env file of the repo
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            ready = None
            while time.perf_counter() - started < READY_TIMEOUT_S:
                if bot.poll() is not None:
                    break
                if healthy(port):
                    ready = time.perf_counter() - started
                    break
                time.sleep(0.02)
            rss, peak = common.rss_mb(bot.pid), common.peak_mb(bot.pid)
            if ready is not None and wait_for_snapshot:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not any(
                    p.is_symlink() for p in cache.rglob("index-*")
                ):
                    time.sleep(0.1)
                time.sleep(0.5)  # the rename is the last step; let the writer thread end
            settled = common.rss_mb(bot.pid)
        finally:
            bot.terminate()
            try:
                bot.wait(timeout=10)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait(timeout=10)
        log.seek(0)
        output = log.read()
    if ready is None:
        sys.stderr.write(output[-3000:])
        raise SystemExit("papers-bot did not become ready")
    found = _INDEXED.search(output)
    return {
        "ready_s": ready,
        "index_s": float(found[2]) if found else float("nan"),
        "papers": int(found[1]) if found else 0,
        "reused": int(found[3]) if found else 0,
        "rss": rss,
        "peak": peak,
        "settled": settled,
    }


def measure(url: str, slack_url: str, runs: int) -> dict:
    first, restart = [], []
    base = Path(tempfile.mkdtemp(prefix="papers-bot-bench-"))
    try:
        for run in range(runs):
            cache = base / f"cold-{run}"
            first.append(start_once(url, slack_url, cache, wait_for_snapshot=True))
            restart.append(start_once(url, slack_url, cache, wait_for_snapshot=False))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"first": first, "restart": restart}


def report(results: list[tuple[str, int, dict]], skipped: list[str], encoder_id: str | None) -> str:
    med = common.median
    rows = []
    verdicts = []
    for backend, n, r in results:
        for kind, label in (("first", "first start (tokenize all)"), ("restart", "restart")):
            runs = r[kind]
            ready = med([x["ready_s"] for x in runs])
            rss = med([x["rss"] for x in runs])
            rows.append(
                [
                    backend,
                    f"{n:,}",
                    label,
                    f"{ready:.1f} s",
                    f"{min(x['ready_s'] for x in runs):.1f}–{max(x['ready_s'] for x in runs):.1f}",
                    f"{med([x['index_s'] for x in runs]):.1f} s",
                    f"{runs[0]['reused']:,}",
                    f"{rss:.0f}",
                    f"{med([x['peak'] for x in runs]):.0f}",
                ]
            )
            verdicts.append((backend, label, ready, rss))
    out = [
        "# Start-up at archive scale\n\n",
        f"Generated by `benchmarks/bench_startup.py` on {dt.date.today()} ({common.machine()}; "
        "a shared, noisy machine: medians of "
        f"{len(results[0][2]['first']) if results else 0} runs). Time from launching "
        "`papers-bot run` (HTTP mode, fake tokens, fake Slack on 127.0.0.1) to the first "
        "`GET /healthz` answered `ok`, which comes after the index over every stored paper "
        "is built; resident memory of that process then.\n\n",
        common.table(
            [
                "database",
                "papers",
                "start",
                "ready (median)",
                "range",
                "of which index",
                "papers from snapshot",
                "RSS MB when ready",
                "peak RSS MB",
            ],
            rows,
            "lrl" + "r" * 6,
        ),
    ]
    if skipped:
        out.append("\nNot measured: " + "; ".join(skipped) + ".\n")
    out.append(
        "\nFirst start: empty cache, so every title and abstract is tokenized; the bot then "
        "writes the index snapshot in the background. Restart: the index mapped from that "
        "snapshot, and only the papers changed since it read from the database. "
        + (
            f"Matching by meaning on ({encoder_id}): the encoder's weights are loaded and "
            "every paper has a stored vector (random unit vectors: encoding the synthetic "
            "archive would take hours, and loading costs the same).\n\n"
            if encoder_id
            else "The sentence encoder is not installed: words only.\n\n"
        )
    )
    target_rows = []
    for backend, label, ready, rss in verdicts:
        target_rows.append(
            [
                f"{backend}, {label}: start-up ≤ {TARGET_S:.0f} s",
                f"{ready:.1f} s",
                "met" if ready <= TARGET_S else "missed",
            ]
        )
        target_rows.append(
            [
                f"{backend}, {label}: RSS ≤ {TARGET_MB:.0f} MB",
                f"{rss:.0f} MB",
                "met" if rss <= TARGET_MB else "missed",
            ]
        )
    out.append(common.table(["target", "measured", ""], target_rows, "lll"))
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    from tests.fakes.slack_api import FakeSlack

    encoder_id = synthetic.encoder_id()  # with the encoder installed, `run` loads it
    results, skipped = [], []
    with FakeSlack() as slack:
        for backend in args.backends.split(","):

            def progress(msg: str, backend: str = backend) -> None:
                print(f"  {backend}: {msg}", file=sys.stderr, flush=True)

            if backend == "sqlite":
                url = synthetic.sqlite_archive(args.papers, progress)
                name = "SQLite"
            else:
                url = synthetic.postgres_archive(args.papers, progress, synthetic.postgres_base())
                name = "PostgreSQL"
                if url is None:
                    skipped.append(f"PostgreSQL (not reachable at {synthetic.postgres_base()})")
                    continue
            print(f"startup: {name}, {args.papers:,} papers", file=sys.stderr, flush=True)
            results.append((name, args.papers, measure(url, slack.base_url, args.runs)))
    common.write_result("startup", report(results, skipped, encoder_id))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
