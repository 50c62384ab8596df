"""The `papers-bot` command line: run, fetch, digest, search, feedback, migrate, embed, purge.

The only entry point: it reads the settings, configures logging, and turns every expected
failure (a bad date, a missing token, an unreachable service, an old schema) into one
line on stderr and a non-zero exit status. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack, contextmanager

from sqlmodel import Session

from bot.settings import Settings, SettingsError

log = logging.getLogger("papers_bot")

TOKEN_HELP = {
    "SLACK_BOT_TOKEN": "Bot User OAuth Token (xoxb-…): api.slack.com/apps → your app → "
    "OAuth & Permissions, after 'Install to Workspace'",
    "SLACK_SIGNING_SECRET": "Signing Secret: api.slack.com/apps → your app → Basic Information "
    "→ App Credentials (HTTP mode only)",
    "SLACK_CLIENT_SECRET": "Client Secret: Basic Information → App Credentials (OAuth installs)",
    "SLACK_STATE_SECRET": "any long random string of yours; it signs the OAuth install's state",
    "SLACK_APP_TOKEN": "App-Level Token (xapp-…, scope connections:write): Basic Information → "
    "App-Level Tokens; set it to use Socket Mode (no public URL needed)",
}


class UserError(Exception):
    """A failure the user can act on: printed as one line, exit status 1 (or .status)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


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
        return f"database error ({_safe_url(settings)}): {reason}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error ({_safe_url(settings)}): {str(exc).splitlines()[0]}"
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    text = (str(exc).strip().splitlines() or [""])[0][:300]
    return f"unexpected error: {type(exc).__name__}: {text} (LOG_LEVEL=DEBUG shows details)"


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def database_errors(settings: Settings):
    """Turn a bad DATABASE_URL, an unreachable server or a wrong schema into one line."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    from storage.db import SchemaError

    try:
        yield
    except SchemaError as exc:
        raise UserError(str(exc)) from None
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise UserError(
            f"DATABASE_URL is not a database URL I can use ({exc}); "
            "e.g. sqlite:///papers.db or postgresql://user:password@host:5432/papers"
        ) from None
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise UserError(f"cannot open the database ({_safe_url(settings)}): {reason}") from None


def open_database(settings: Settings):
    from storage.db import ensure_schema, open_engine

    with database_errors(settings):
        engine = open_engine(settings.database_url)
        ensure_schema(engine)
    return engine


def open_archive(settings: Settings, engine):
    """The archive of `engine`, with the sentence encoder SEMANTIC_MODEL asks for."""
    from bot.archive.live import Archive
    from bot.matching.embedding import EncoderError
    from bot.matching.semantic import load_encoder

    try:
        encoder = load_encoder(settings.semantic_model)
    except EncoderError as exc:
        raise UserError(f"SEMANTIC_MODEL={settings.semantic_model}: {exc}") from None
    return Archive(engine, encoder=encoder)


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(settings.database_url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL may still hold a password: show nothing of it
        return "DATABASE_URL"


def cmd_migrate(args, settings: Settings) -> int:
    from storage.db import open_engine, upgrade

    with database_errors(settings):
        before, after = upgrade(open_engine(settings.database_url))
    if before == after:
        print(f"database schema is up to date ({after})")
    else:
        print(f"database schema upgraded from {before or 'empty'} to {after}")
    return 0


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


def cmd_digest(args, settings: Settings) -> int:
    from bot.digest.delivery import SlackUnreachable
    from bot.digest.planning import preview, run_digest
    from bot.jobs import fetch_recent
    from bot.matching.categories import parse_channel_topic
    from bot.matching.ranking import TopicError

    if args.topic and not args.dry_run:
        raise UserError("--topic only works with --dry-run (it previews a channel)")
    if args.topic and args.channel:
        raise UserError("use --topic or --channel, not both")
    for topic in args.topic:
        try:
            parse_channel_topic(topic)
        except TopicError as exc:
            raise UserError(f"--topic {topic!r}: {exc}") from None
    if not args.dry_run and not settings.slack_bot_token and not settings.oauth:
        raise UserError(
            "SLACK_BOT_TOKEN is not set, so I cannot post. Set it (see the README), or try "
            "`papers-bot digest --dry-run --topic 'contrastive learning'` to preview."
        )
    today = args.date or settings.today()
    engine = open_database(settings)
    archive = open_archive(settings, engine)
    fetch_error = None
    with Session(engine, expire_on_commit=False) as session:
        if not args.no_fetch:
            fetched = fetch_recent(today, session=session, settings=settings, progress=progress)
            if fetched.errors:
                fetch_error = fetched.errors[0]
        stored = len(archive.index)
        progress(f"ranking against {stored} stored papers")
        if stored == 0:
            progress("no papers are stored yet: check HF_API_URL, or run `papers-bot fetch`")
        if args.dry_run:
            if args.topic:
                plans = [preview(session, archive, settings, args.topic, today)]
            else:
                plans = run_digest(
                    session=session,
                    client=None,
                    settings=settings,
                    archive=archive,
                    today=today,
                    channel=args.channel,
                    dry_run=True,
                ).plans
                if not plans:
                    print("No channel is subscribed yet. Preview one with --topic TEXT.")
            for plan in plans:
                print(_plan_text(plan, today))
        else:
            from bot.app import make_client
            from bot.digest.planning import DigestSummary
            from bot.workspaces import client_for
            from storage import queries

            clients = client_for(settings, engine, make_client(settings))
            subscribed = queries.subscribed_channels(session=session, channel_id=args.channel)
            teams = sorted({team for team, _ in subscribed})
            summary = DigestSummary(day=today)
            try:
                for team in teams:
                    client = clients(team)
                    if client is None:
                        progress(f"workspace {team} is not installed: no digests for it")
                        continue
                    part = run_digest(
                        session=session,
                        client=client,
                        settings=settings,
                        archive=archive,
                        today=today,
                        channel=args.channel,
                        team=team,
                        interval=settings.post_interval,
                        progress=progress,
                    )
                    summary.add(part)
            except SlackUnreachable as exc:
                raise UserError(
                    f"{exc} ({settings.slack_api_url}); nothing more was marked "
                    "delivered, run the command again later"
                ) from None
            print(_summary_text(summary))
            if summary.failed:
                raise UserError(
                    "some channels failed: "
                    + ", ".join(f"{c} ({e})" for c, e in sorted(summary.failed.items()))
                )
            if summary.left_pending:
                why = ", ".join(summary.retry_errors)
                raise UserError(
                    f"{summary.left_pending} messages were not posted"
                    + (f" (Slack answered {why})" if why else "")
                    + "; run the command again to post them"
                )
    if fetch_error:
        used = "ranked" if args.dry_run else "posted from"
        raise UserError(f"{used} stored papers only: {fetch_error}")
    return 0


def _plan_text(plan, today: dt.date) -> str:
    from bot.digest.blocks import paper_plain_text

    where = f"#{plan.channel_id}" if plan.channel_id else "a channel"
    head = f"== {where} following {', '.join(plan.topics)} — {today} =="
    if not plan.papers:
        return f"{head}\nnothing relevant today; nothing would be posted\n"
    noun = "paper" if len(plan.papers) == 1 else "papers"
    body = "\n\n".join(f"{i}. {paper_plain_text(p)}" for i, p in enumerate(plan.papers, 1))
    return f"{head}\n{len(plan.papers)} {noun}:\n\n{body}\n"


def _summary_text(summary) -> str:
    lines = [
        f"digest {summary.day}: {summary.papers_posted} papers posted to "
        f"{len(summary.posted_channels)} of {summary.channels} subscribed channels"
    ]
    if summary.nothing_new:
        lines.append(f"nothing new for {len(summary.nothing_new)} channels")
    if summary.not_today:
        lines.append(f"no digest on this day by their settings: {', '.join(summary.not_today)}")
    if summary.busy:
        lines.append(f"skipped (another process is posting): {', '.join(summary.busy)}")
    for channel, error in sorted(summary.failed.items()):
        lines.append(f"FAILED {channel}: {error}")
    if summary.left_pending:
        lines.append(f"{summary.left_pending} messages left for the next run")
    return "\n".join(lines)


def cmd_search(args, settings: Settings) -> int:
    from bot.archive.live import Archive
    from bot.archive.search import search_papers
    from bot.digest.blocks import paper_url
    from bot.matching.ranking import TopicError
    from bot.subscriptions import Refused

    if not 1 <= args.limit <= 1000:
        raise UserError("--limit must be between 1 and 1000")
    engine = open_database(settings)
    with Session(engine) as session:
        try:
            page = search_papers(
                " ".join(args.query),
                session=session,
                archive=Archive(engine),  # search matches by words only: no encoder
                today=settings.today(),
                limit=args.limit,
            )
        except (Refused, TopicError) as exc:
            raise UserError(str(exc).replace("`/papers search", "`papers-bot search")) from None
    rows = [
        {
            "id": p.id,
            "title": p.title,
            "score": round(score, 4),
            "url": paper_url(p.id),
            "listed_on": p.listed_on.isoformat(),
            "upvotes": p.upvotes,
        }
        for p, score in page.hits
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("nothing found; try fewer or broader words")
    else:
        for i, row in enumerate(rows, 1):
            print(f"{i:>3}. {row['score']:7.3f}  {row['title']}\n      {row['url']}")
    return 0


def cmd_feedback(args, settings: Settings) -> int:
    from bot.matching.feedback import polarity
    from storage import queries

    engine = open_database(settings)
    with Session(engine) as session:
        reactions = queries.reactions_in_force(session=session, channel_id=args.channel)
        titles = {
            p.id: p.title
            for p in queries.get_papers(
                list({r.paper_id for r in reactions}), session=session
            ).values()
        }
    rows = [
        {
            "team": r.team_id,
            "channel": r.channel_id,
            "paper_id": r.paper_id,
            "title": titles.get(r.paper_id, ""),
            "user": r.user_id,
            "reaction": r.reaction,
            "polarity": polarity(r.reaction, settings),
            "message_ts": r.message_ts,
            "at": r.created_at.isoformat(),
        }
        for r in reactions
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("no reactions stored yet")
    else:
        for row in rows:
            sign = {1: "+", -1: "-", 0: " "}[row["polarity"]]
            print(
                f"{sign} {row['channel']:<12} {row['paper_id']:<12} :{row['reaction']}: "
                f"by {row['user']}  {row['title'][:60]}"
            )
    return 0


def _program() -> str:
    """How the user invoked papers-bot, so a suggested command can be pasted as is."""
    invoked = sys.argv[0] if sys.argv else ""
    if not invoked.endswith("papers-bot") or os.sep not in invoked:
        return "papers-bot"
    return os.path.relpath(invoked)


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


def cmd_run(args, settings: Settings) -> int:
    port = args.port
    if port is None:
        raw = os.environ.get("PORT") or "3000"
        if not raw.isdigit():
            raise UserError(f"PORT={raw!r} must be a port number")
        port = int(raw)
    socket_mode = bool(settings.slack_app_token)
    missing = settings.missing_for_slack(http=not socket_mode)
    if missing:
        lines = ["papers-bot: cannot start, these settings are missing:"]
        lines += [f"  {name}: {TOKEN_HELP[name]}" for name in missing]
        if not socket_mode and not settings.oauth:
            lines.append(f"  (or SLACK_APP_TOKEN: {TOKEN_HELP['SLACK_APP_TOKEN']})")
        lines.append("Put them in the environment or in a .env file (see README.md).")
        lines.append(
            f"No Slack app yet? Preview a digest without one: {_program()} digest --dry-run "
            "--topic 'contrastive learning'"
        )
        print("\n".join(lines), file=sys.stderr)
        return 2
    from urllib.error import URLError

    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from bot.server import serve

    engine = open_database(settings)
    archive = open_archive(settings, engine)
    try:
        return serve(settings, archive, host=args.host, port=port, socket_mode=socket_mode)
    except (URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach Slack at {settings.slack_api_url}: {reason}") from None
    except (SlackApiError, BoltError) as exc:
        raise UserError(f"Slack refused the bot token or app token: {exc}") from None


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

if __name__ == "__main__":
    sys.exit(main())
