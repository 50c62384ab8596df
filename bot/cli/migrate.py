"""`papers-bot migrate`: create or upgrade the database schema."""

from __future__ import annotations

from bot.cli.common import database_errors
from bot.settings import Settings


def cmd_migrate(args, settings: Settings) -> int:
    from storage.db import open_engine, upgrade

    with database_errors(settings):
        before, after = upgrade(open_engine(settings.database_url))
    if before == after:
        print(f"database schema is up to date ({after})")
    else:
        print(f"database schema upgraded from {before or 'empty'} to {after}")
    return 0
