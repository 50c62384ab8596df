"""CLI failures nothing else explains (SQLite locked past its busy timeout, a full disk) are
one `papers-bot:` line on stderr and exit status 1, never a traceback. (A bad source item is
skipped, not an error: see test_hostile_items.py.)
"""

from __future__ import annotations

import resource
import sqlite3
import subprocess
import sys

import pytest

from tests.faults.conftest import DAY, ROOT, child_env, error_lines


def _run(stack, *args: str, limit_file_size: int | None = None, **env: str):
    def limits() -> None:  # in the child: writes past this size fail with EFBIG
        if limit_file_size is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size, limit_file_size))

    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=child_env(stack, **env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limits,
    )
    return done.returncode, done.stdout, done.stderr


def _sqlite_only(stack) -> str:
    url = stack.env["DATABASE_URL"]
    if not url.startswith("sqlite"):
        pytest.skip("a SQLite file's lock and size")
    return url


def test_sqlite_locked_past_the_busy_timeout_is_one_line(stack):
    url = _sqlite_only(stack)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        url += "?timeout=1"  # seconds a write waits for the lock (30 by default)
        code, _, err = _run(stack, "fetch", "--date", DAY, DATABASE_URL=url)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 1
    assert "Traceback" not in err
    assert error_lines(err) == [
        f"papers-bot: database error ({url}): database is locked "
        "(another process held it past the busy timeout; try again)"
    ]


def test_a_full_disk_is_one_line(stack):
    _sqlite_only(stack)
    code, _, err = _run(stack, "fetch", "--date", DAY, limit_file_size=16 * 1024)
    assert code == 1
    assert "Traceback" not in err
    [line] = error_lines(err)
    # A file-size limit gives EFBIG ("disk I/O error"); a full disk ENOSPC ("database or
    # disk is full"): the same one line either way.
    assert line.startswith("papers-bot: database error (")
    assert line.endswith(" (check the free space where the database lives)")
