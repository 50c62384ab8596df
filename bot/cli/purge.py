"""`papers-bot purge`: delete what is stored of workspaces that uninstalled the app."""

from __future__ import annotations

import datetime as dt

from bot.cli.common import UserError, database_errors, open_database
from bot.settings import Settings


def cmd_purge(args, settings: Settings) -> int:
    from bot.workspaces import purge

    if args.days < 0:
        raise UserError("--days must be 0 or more")
    engine = open_database(settings)
    with database_errors(settings):
        deleted = purge(engine, now=dt.datetime.now(dt.UTC), grace_days=args.days)
    if not deleted:
        print(f"no workspace uninstalled {args.days} or more days ago; nothing deleted")
    for team, rows in sorted(deleted.items()):
        print(f"workspace {team}: {rows} rows deleted")
    return 0
