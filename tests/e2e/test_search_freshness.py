"""A search sees every paper committed before it started, even one another process stored."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.conftest import DAY

TITLE = "Understanding the Behaviour of Contrastive Loss"


def test_papers_stored_by_another_process_are_found_at_once(stack, tmp_path):
    _, reply = stack.command("search contrastive loss temperature")
    assert reply["text"].startswith("Nothing found")  # the index is built, and empty
    done = subprocess.run(  # `papers-bot fetch` in a process of its own
        [sys.executable, "-m", "bot.cli", "fetch", "--date", DAY],
        env={**os.environ, **stack.env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    _, reply = stack.command("search contrastive loss temperature")
    assert reply["text"].startswith("Results 1–5"), reply["text"]
    assert TITLE in reply["blocks"][2]["text"]["text"]
