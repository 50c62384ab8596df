"""`papers-bot digest`: fetch, rank and post (or print, with --dry-run) today's digests."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session

from bot.cli.common import UserError, open_archive, open_database, progress
from bot.settings import Settings


def cmd_digest(args, settings: Settings) -> int:
    from bot.digest.delivery import SlackUnreachable
    from bot.digest.planning import preview
    from bot.digest.run import run_digest
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
            from bot.digest.run import DigestSummary
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
