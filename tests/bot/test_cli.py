"""The command line's promise: one line on stderr and a non-zero status, never a traceback."""

from __future__ import annotations

import pytest

from bot import cli


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET", "PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return monkeypatch


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("papers.db", "DATABASE_URL is not a database URL I can use"),
        ("mysql://x/y", "DATABASE_URL is not a database URL I can use"),
        ("postgresql://u:secret@127.0.0.1:1/x", "cannot open the database (postgresql://u:***@"),
    ],
)
def test_bad_database_url_is_one_line(env, capsys, url, message):
    env.setenv("DATABASE_URL", url)
    assert cli.main(["search", "foo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"papers-bot: {message}")
    assert "secret" not in err and "Traceback" not in err


def test_bad_port_is_one_line(env, capsys):
    env.setenv("PORT", "abc")
    env.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    env.setenv("SLACK_SIGNING_SECRET", "s")
    assert cli.main(["run"]) == 1
    assert capsys.readouterr().err == "papers-bot: PORT='abc' must be a port number\n"


def test_bad_setting_is_one_line(env, capsys):
    env.setenv("DIGEST_TIME", "9am")
    assert cli.main(["search", "foo"]) == 2
    assert "DIGEST_TIME='9am' must be HH:MM" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "foo", "since:someday"], "is not a date filter"),
        (["search", "the", "of"], "meaningful"),
        (["search", "x", "--limit", "0"], "--limit must be between 1 and 1000"),
        (["fetch", "--until", "2024-07-01"], "--until needs --since"),
        (["fetch", "--since", "2024-07-02", "--until", "2024-07-01"], "--until is before --since"),
        (["digest", "--topic", "x"], "--topic only works with --dry-run"),
        (["digest"], "SLACK_BOT_TOKEN is not set"),
    ],
)
def test_user_mistakes_are_one_line(env, capsys, args, message):
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("papers-bot: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_far_since_filter_is_not_an_error(env, capsys):
    assert cli.main(["search", "contrastive", "since:3000y"]) == 0
    assert "nothing found" in capsys.readouterr().out


def test_bad_date_is_a_usage_error(env, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["digest", "--date", "2024-13-01"])
    assert exit_.value.code == 2
    assert "is not a date; use YYYY-MM-DD" in capsys.readouterr().err
