"""`papers-bot fetch`: store the papers listed on some days."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack

from sqlmodel import Session

from bot.cli.common import UserError, open_archive, open_database, progress
from bot.settings import Settings


def cmd_fetch(args, settings: Settings) -> int:
    from bot.jobs import LABELS, SOURCE_NAMES, fetch_days, open_sources

    today = settings.today()
    if args.since:
        until = args.until or today
        if until < args.since:
            raise UserError("--until is before --since")
        days = [args.since + dt.timedelta(days=i) for i in range((until - args.since).days + 1)]
    elif args.until:
        raise UserError("--until needs --since")
    else:
        days = [args.date or today]
    if len(days) > 366:
        raise UserError("fetch at most 366 days at a time")
    if args.source == "arxiv" and not settings.arxiv_categories:
        raise UserError(
            "ARXIV_CATEGORIES is empty, so there is nothing to harvest from arXiv; "
            "set it, e.g. ARXIV_CATEGORIES=cs.CL,cs.LG"
        )
    engine = open_database(settings)
    archive = open_archive(settings, engine)
    names = SOURCE_NAMES if args.source == "all" else (args.source,)
    errors: list[str] = []
    with ExitStack() as stack, Session(engine) as session:
        sources = [stack.enter_context(s) for s in open_sources(settings, names)]
        for source in sources:
            summary = fetch_days(
                days, session=session, source=source, archive=archive, progress=progress
            )
            label = f"{LABELS[source.name]}: " if len(sources) > 1 else ""
            print(
                f"{label}fetched {summary.days}/{len(days)} days: {summary.new} new papers, "
                f"{summary.updated} updated, {summary.skipped} skipped"
            )
            errors += summary.errors
    if errors:
        raise UserError(
            errors[0] + (f" (+{len(errors) - 1} more failures)" if len(errors) > 1 else "")
        )
    return 0
