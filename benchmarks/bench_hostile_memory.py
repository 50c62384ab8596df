"""Memory of `papers-bot run` under unsigned 50 MB requests.

Run from the repo root: `.venv/bin/python benchmarks/bench_hostile_memory.py` (about half a
minute). It starts the real console script, `papers-bot run --host 127.0.0.1 --port P`, in
HTTP mode with fake tokens, the loopback fake Slack of `tests/fakes/slack_api.py` (Bolt
checks the token with `auth.test` at start) and an empty SQLite database, waits for
`GET /healthz`, then sends unsigned 50 MB bodies over raw sockets: one with a
Content-Length, one chunked, then three at once. After each it reads the process's resident
memory (VmRSS) and peak (VmHWM) from /proc, and times a signed `/papers help` sent right
after. Target: a 50 MB body costs the process less than 10 MB.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402

from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.fakes.slack_requests import post_signed, slash_command_body  # noqa: E402

BODY_MB = 50
TARGET_MB = 10.0
SECRET = "bench-signing-secret"
BOT = Path(sys.executable).with_name("papers-bot")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=0.5) as answer:
            return answer.status == 200
    except OSError:
        return False


def send_big(port: int, chunked: bool) -> str:
    """POST 50 MB unsigned; the status line the bot answered (or how the connection ended)."""
    head = "POST /slack/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    head += (
        "Transfer-Encoding: chunked\r\n\r\n"
        if chunked
        else f"Content-Length: {BODY_MB << 20}\r\n\r\n"
    )
    block = b"[" + b"1," * (512 * 1024 - 1) + b"1"  # 1 MB of a JSON array
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for _ in range(BODY_MB):
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the bot answered and closed before the whole body was sent
        try:
            answer = sock.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError as exc:
            answer = f"connection closed ({type(exc).__name__})"
    return answer or "connection closed"


def help_seconds(url: str, slack: FakeSlack) -> float:
    body = slash_command_body("help", response_url=slack.response_url(1))
    started = time.perf_counter()
    status = post_signed(url, body, SECRET).status_code
    took = time.perf_counter() - started
    if status != 200:
        raise SystemExit(f"/papers help answered {status}")
    return took


def main() -> None:
    rows = []
    worst = 0.0
    with FakeSlack() as slack, tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {
            **os.environ,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{tmp}/papers.db",
            "HF_API_URL": "http://127.0.0.1:9/api",  # never called: no job is due
            "DIGEST_TIME": "23:59",
            "SEMANTIC_MODEL": "off",
            "XDG_CACHE_HOME": tmp,
        }
        env.pop("SLACK_APP_TOKEN", None)
        with open(Path(tmp) / "bot.log", "w+") as log:
            bot = subprocess.Popen(
                [str(BOT), "run", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                cwd=tmp,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 120
                while not healthy(port):
                    if bot.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise SystemExit("papers-bot did not start:\n" + log.read()[-3000:])
                    time.sleep(0.05)
                url = f"http://127.0.0.1:{port}/slack/events"
                help_seconds(url, slack)  # warm up: first request, first answer
                time.sleep(0.5)
                cases = [
                    ("one 50 MB body, Content-Length", 1, False),
                    ("one 50 MB body, chunked", 1, True),
                    ("three 50 MB bodies at once", 3, False),
                ]
                for label, count, chunked in cases:
                    rss, peak = common.rss_mb(bot.pid), common.peak_mb(bot.pid)
                    answers: list[str] = []
                    threads = [
                        threading.Thread(
                            target=lambda out=answers, c=chunked: out.append(send_big(port, c))
                        )
                        for _ in range(count)
                    ]
                    for thread in threads:
                        thread.start()
                    for thread in threads:
                        thread.join()
                    took = help_seconds(url, slack)
                    time.sleep(0.3)
                    grew = common.rss_mb(bot.pid) - rss
                    peak_grew = common.peak_mb(bot.pid) - peak
                    worst = max(worst, grew, peak_grew)
                    rows.append(
                        [
                            label,
                            ", ".join(sorted(set(answers))),
                            f"{rss:.1f}",
                            f"{grew:+.1f}",
                            f"{peak_grew:+.1f}",
                            f"{took * 1000:.0f} ms",
                        ]
                    )
            finally:
                bot.terminate()
                try:
                    bot.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    bot.kill()
    verdict = "met" if worst < TARGET_MB else "MISSED"
    text = "".join(
        [
            "# Memory under unsigned 50 MB requests\n\n",
            f"Generated by `benchmarks/bench_hostile_memory.py` on {dt.date.today()} "
            f"({common.machine()}). `papers-bot run` in HTTP mode (fake tokens, fake Slack on "
            "127.0.0.1, empty SQLite, words-only matching); raw-socket POSTs of unsigned "
            f"{BODY_MB} MB JSON bodies to `/slack/events`; memory from /proc of the bot.\n\n",
            common.table(
                [
                    "request",
                    "bot's answer",
                    "RSS before (MB)",
                    "RSS change (MB)",
                    "peak RSS change (MB)",
                    "signed `/papers help` right after",
                ],
                rows,
                "ll" + "r" * 4,
            ),
            f"\nTarget: under {TARGET_MB:.0f} MB per 50 MB body: {verdict} "
            f"(largest change {worst:.1f} MB). waitress refuses a body over 1 MB "
            "(`max_request_body_size`) as soon as the Content-Length, or the chunks so far, "
            "pass it, so neither Bolt nor the gate ever reads it.\n",
        ]
    )
    common.write_result("hostile_memory", text)


if __name__ == "__main__":
    main()
