"""`papers-bot embed`: encode the stored papers that have no vector yet."""

from __future__ import annotations

import time

from bot.cli.common import UserError, database_errors, open_archive, open_database, progress
from bot.settings import Settings


def cmd_embed(args, settings: Settings) -> int:
    engine = open_database(settings)
    archive = open_archive(settings, engine)
    if archive.encoder is None:
        raise UserError(
            f"matching by meaning is off (SEMANTIC_MODEL={settings.semantic_model}), "
            "so there is nothing to encode with"
        )
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done == total or done % 1024 == 0:
            rate = done / max(time.monotonic() - started, 1e-9)
            progress(f"encoded {done}/{total} papers ({rate:.0f} per second)")

    with database_errors(settings):
        encoded = archive.embed(progress=report)
    print(f"encoded {encoded} papers")
    return 0
