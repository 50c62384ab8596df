"""End-to-end harness: the real Bolt app served by waitress on 127.0.0.1, a fake Slack Web
API and a fake Hugging Face API on loopback, and the real `papers-bot` CLI in-process.

`bot` gives a running stack; `bot.command(text)` sends a signed `/papers` request to
`POST /slack/events` and returns the reply the bot sent to the command's response_url;
`bot.cli(...)` runs `papers-bot` with the stack's environment.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot import cli
from bot.app import create_app, make_client
from bot.archive.live import Archive
from bot.server import create_http_server, slack_wsgi
from bot.settings import Settings
from storage.db import ensure_schema, open_engine
from tests.fakes.hf_server import FakeHF
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import post_signed, reaction_event_body, slash_command_body

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
DAY = "2024-07-29"


@dataclass
class Stack:
    url: str
    slack: FakeSlack
    hf: FakeHF
    settings: Settings
    engine: object
    archive: Archive
    env: dict
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture
    _responses: int = 0

    def command(
        self, text: str, *, channel: str = "C0001", user: str = "U0001", wait="reply", **kw
    ):
        """Send `/papers <text>` and wait for the bot's answer.

        `wait="reply"` waits for a message to the response_url and returns its params;
        `wait="post"` waits for a channel message (subscription confirmations) instead, and
        any other `wait` for a call to that Web API method (e.g. `views.open`).
        """
        self._responses += 1
        response_url = self.slack.response_url(self._responses)
        body = slash_command_body(
            text, channel_id=channel, user_id=user, response_url=response_url, **kw
        )
        method = {"reply": "response_url", "post": "chat.postMessage"}.get(wait, wait)
        before = len(self.slack.calls(method))
        response = post_signed(self.url, body, SECRET)
        assert response.status_code == 200, response.text
        answers = self.slack.wait_for(method, before + 1, timeout=10)
        return response, answers[-1].params

    def interact(self, body: str):
        """Send a signed interactivity or event body (a modal submission, a click, …)."""
        return post_signed(self.url, body, SECRET)

    def react(
        self,
        kind: str,
        *,
        reaction: str,
        channel: str,
        ts: str,
        user: str = "U0002",
        event_id: str | None = None,
        retry_num: int | None = None,
    ):
        body = reaction_event_body(
            kind, reaction=reaction, user=user, channel=channel, ts=ts, event_id=event_id
        )
        return post_signed(self.url, body, SECRET, retry_num=retry_num)

    def cli(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def cli_json(self, *args: str):
        code, out, err = self.cli(*args)
        assert code == 0, err
        return json.loads(out)


@contextmanager
def bot_process(env: dict, cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen, list]]:
    """`papers-bot run ARGS` as a real process; on exit it gets SIGTERM (killed after 10 s)
    and its combined output lands in the yielded list. Unless `env` says otherwise, digests
    are due at 23:59 in a zone where it is just past midnight, so the scheduler (which
    catches up on a time passed earlier the same day) never starts one during the test."""
    hour = dt.datetime.now(dt.UTC).hour
    zone = f"Etc/GMT+{hour}" if hour <= 12 else f"Etc/GMT-{24 - hour}"  # local time 00:xx
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", *args],
        env={"DIGEST_TIMEZONE": zone, "DIGEST_TIME": "23:59", **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        yield proc, output
    finally:
        proc.terminate()
        try:
            output.append(proc.communicate(timeout=10)[0])
        except subprocess.TimeoutExpired:
            proc.kill()
            output.append(proc.communicate(timeout=5)[0])


OAUTH_ENV = {
    "SLACK_BOT_TOKEN": "",
    "SLACK_CLIENT_ID": "1111.2222",
    "SLACK_CLIENT_SECRET": "oauth-client-secret",
    "SLACK_STATE_SECRET": "state-signing-secret",
}


def oauth_install(stack: Stack, team: str, token: str, *, state: str | None = None):
    """Install the app in `team` the way a browser does: `/slack/install` hands out a state
    (and its cookie) and the link to Slack's consent page (never fetched here); Slack would
    then send the browser to `/slack/oauth_redirect` with a one-time code, which the bot
    exchanges at the fake's `oauth.v2.access` for `token`. `state` replaces the issued one.
    Returns the redirect's response."""
    code = f"code-{team}-{token}"
    stack.slack.oauth_app(OAUTH_ENV["SLACK_CLIENT_ID"], OAUTH_ENV["SLACK_CLIENT_SECRET"])
    stack.slack.add_install(code, team, token)
    base = stack.url.removesuffix("/slack/events")
    page = httpx.get(f"{base}/slack/install")
    assert page.status_code == 200
    link = html.unescape(re.search(r'<a href="([^"]+)"', page.text)[1])
    assert link.startswith("https://slack.com/oauth/v2/authorize?")
    assert f"client_id={OAUTH_ENV['SLACK_CLIENT_ID']}" in link
    issued = re.search(r"state=([^&]+)", link)[1]
    assert page.cookies.get("slack-app-oauth-state") == issued
    state = state or issued
    return httpx.get(
        f"{base}/slack/oauth_redirect",
        params={"code": code, "state": state},
        headers={"cookie": f"slack-app-oauth-state={state}"},
    )


@pytest.fixture
def seed_items(shared_dir: Path) -> list[dict]:
    return json.loads((shared_dir / "data" / "seed_daily_papers.json").read_text())


@pytest.fixture
def stack(db_url, seed_items, tmp_path, monkeypatch, capsys):
    with running_stack(db_url, seed_items, tmp_path, monkeypatch, capsys) as running:
        yield running


@contextmanager
def running_stack(db_url, seed_items, tmp_path, monkeypatch, capsys, **extra_env: str):
    """The Bolt app on waitress with the fakes, its environment from `extra_env` on top of
    the single-token defaults (an empty value unsets a setting)."""
    with FakeSlack() as slack, FakeHF(days={DAY: seed_items}) as hf:
        env = {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.base_url,
            "HF_API_URL": hf.base_url,
            "DATABASE_URL": db_url,
            "DIGEST_POST_INTERVAL": "0",
            **extra_env,
        }
        env = {name: value for name, value in env.items() if value}
        monkeypatch.chdir(tmp_path)
        for name in ("SLACK_APP_TOKEN", "DIGEST_TIME", "DIGEST_TIMEZONE", "DIGEST_MAX_PAPERS"):
            monkeypatch.delenv(name, raising=False)
        for name in ("SLACK_BOT_TOKEN", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings = Settings.from_env()
        engine = open_engine(db_url)
        ensure_schema(engine)
        archive = Archive(engine)
        app = create_app(settings, make_client(settings), engine=engine, archive=archive)
        server = create_http_server(
            slack_wsgi(app, settings, engine), host="127.0.0.1", port=0, threads=4
        )
        closing = threading.Event()

        def serve() -> None:
            try:
                server.run()
            except OSError:  # closing the socket under waitress's select() at teardown
                if not closing.is_set():
                    raise

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield Stack(
                url=f"http://127.0.0.1:{server.effective_port}/slack/events",
                slack=slack,
                hf=hf,
                settings=settings,
                engine=engine,
                archive=archive,
                env=env,
                monkeypatch=monkeypatch,
                capsys=capsys,
            )
        finally:
            closing.set()
            server.close()
            thread.join(timeout=5)
            engine.dispose()
