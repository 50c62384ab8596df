"""The `papers-bot` command line: run, fetch, digest, search, feedback, migrate, embed, purge.

The only entry point: it reads the settings, configures logging, and turns every expected
failure (a bad date, a missing token, an unreachable service, an old schema) into one
line on stderr and a non-zero exit status. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence

from bot.cli.common import UserError, safe_url
from bot.cli.digest import cmd_digest
from bot.cli.embed import cmd_embed
from bot.cli.feedback import cmd_feedback
from bot.cli.fetch import cmd_fetch
from bot.cli.migrate import cmd_migrate
from bot.cli.purge import cmd_purge
from bot.cli.run import cmd_run
from bot.cli.search import cmd_search
from bot.settings import Settings, SettingsError

log = logging.getLogger("papers_bot")


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="papers-bot",
        description="Daily research-paper digests for Slack channels.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the bot (Socket Mode or HTTP) and the daily job")
    run.add_argument("--port", type=int, help="HTTP mode: port (default $PORT or 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on")

    fetch = sub.add_parser(
        "fetch",
        help="store (and encode, about 10 papers/s; SEMANTIC_MODEL=off skips it) the papers "
        "listed on some days",
    )
    when = fetch.add_mutually_exclusive_group()
    when.add_argument("--date", type=parse_date, help="one day (default: today)")
    when.add_argument("--since", type=parse_date, help="first day of a range")
    fetch.add_argument("--until", type=parse_date, help="last day of the range (default: today)")
    fetch.add_argument(
        "--source",
        choices=("all", "hf", "arxiv"),
        default="all",
        help="Hugging Face, arXiv (the categories in ARXIV_CATEGORIES) or all configured (default)",
    )

    digest = sub.add_parser("digest", help="fetch, rank and post today's digests now")
    digest.add_argument("--date", type=parse_date, help="the digest's day (default: today)")
    digest.add_argument("--channel", help="only this channel id")
    digest.add_argument("--dry-run", action="store_true", help="print instead of posting")
    digest.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="TEXT",
        help="with --dry-run: show what a channel following TEXT would get (repeatable)",
    )
    digest.add_argument("--no-fetch", action="store_true", help="use stored papers only")

    search = sub.add_parser("search", help="search the stored papers")
    search.add_argument("query", nargs="+")
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--json", action="store_true", help="print a JSON array")

    feedback = sub.add_parser("feedback", help="the reactions in force")
    feedback.add_argument("--channel", help="only this channel id")
    feedback.add_argument("--json", action="store_true", help="print a JSON array")

    purge = sub.add_parser(
        "purge", help="delete what is stored of workspaces that uninstalled the app"
    )
    purge.add_argument(
        "--days", type=int, default=30, help="grace period in days since the uninstall (default 30)"
    )

    sub.add_parser("migrate", help="create or upgrade the database schema")
    sub.add_parser("embed", help="encode the stored papers that have no vector yet")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"papers-bot: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=getattr(logging, settings.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("httpx", "alembic", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args, settings) or 0
    except UserError as exc:
        print(f"papers-bot: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("papers-bot: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # never a traceback on the terminal; LOG_LEVEL=DEBUG shows it
        log.debug("%s failed", args.command, exc_info=True)
        print(f"papers-bot: {_failure(exc, settings)}", file=sys.stderr)
        return 1


def _failure(exc: Exception, settings: Settings) -> str:
    """One line for a failure nothing else explained (a locked or full database, a bug)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        reason = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
        if "locked" in reason:
            reason += " (another process held it past the busy timeout; try again)"
        elif "disk" in reason:
            reason += " (check the free space where the database lives)"
        return f"database error ({safe_url(settings)}): {reason}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error ({safe_url(settings)}): {str(exc).splitlines()[0]}"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"unexpected error: {type(exc).__name__}: {text} (LOG_LEVEL=DEBUG shows details)"


COMMANDS = {
    "run": cmd_run,
    "fetch": cmd_fetch,
    "digest": cmd_digest,
    "search": cmd_search,
    "feedback": cmd_feedback,
    "migrate": cmd_migrate,
    "embed": cmd_embed,
    "purge": cmd_purge,
}
