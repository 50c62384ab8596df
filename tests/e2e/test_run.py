"""`papers-bot run` as a real process: HTTP mode under waitress, answering signed requests."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time

import httpx

from tests.e2e.conftest import bot_process
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import post_signed, slash_command_body

SECRET = "run-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_mode_env(slack: FakeSlack, tmp_path, **extra: str) -> dict[str, str]:
    """Environment for `papers-bot run` in HTTP mode against the fake Slack."""
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-run",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.base_url,
        "HF_API_URL": "http://127.0.0.1:9/api",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        **extra,
    }
    env.pop("SLACK_APP_TOKEN", None)
    return env


def test_run_serves_slash_commands_and_health(tmp_path):
    port = free_port()
    with FakeSlack() as slack:
        env = http_mode_env(slack, tmp_path)
        with bot_process(env, tmp_path, "--host", "127.0.0.1", "--port", str(port)) as (
            proc,
            output,
        ):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok\n":
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise AssertionError("papers-bot run did not become ready")
            body = slash_command_body("help", response_url=slack.response_url(1))
            url = f"http://127.0.0.1:{port}/slack/events"
            assert post_signed(url, body, SECRET).status_code == 200
            reply = slack.wait_for("response_url", 1)[0].params
            assert "/papers subscribe" in reply["text"]
            assert post_signed(url, body, "wrong-secret").status_code == 401
    output = output[0]
    assert proc.returncode == 0  # SIGTERM is a clean stop
    assert "INFO bot.server: stopped" in output
    assert "listening on http://127.0.0.1" in output
    assert re.search(r"at each channel's own time \(default 23:59 Etc/GMT[+-]\d+, Monday", output)
    assert "xoxb-run" not in output and SECRET not in output


def test_run_without_tokens_names_what_is_missing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    for needle in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "--dry-run"):
        assert needle in done.stderr
    assert "Traceback" not in done.stderr


def test_run_with_slack_unreachable_or_token_refused_is_one_line(tmp_path):
    with FakeSlack() as slack:
        slack.revoke_token("xoxb-revoked")
        cases = {
            "http://127.0.0.1:9/api/": ("xoxb-run", "papers-bot: cannot reach Slack at"),
            slack.base_url: ("xoxb-revoked", "papers-bot: Slack refused the bot token"),
        }
        for url, (token, message) in cases.items():
            env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
            env |= {
                "SLACK_BOT_TOKEN": token,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": url,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
            }
            done = subprocess.run(
                [sys.executable, "-m", "bot.cli", "run", "--host", "127.0.0.1", "--port", "0"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert done.returncode == 1
            assert done.stderr.splitlines()[-1].startswith(message), done.stderr
            assert "Traceback" not in done.stderr
