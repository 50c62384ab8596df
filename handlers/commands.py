"""The `/papers` slash command: subscribe, unsubscribe, list, search, liked, why, settings, help.

Acknowledges at once, then does the work and answers through the command's
`response_url`: help, errors and search results are ephemeral (only the caller sees
them), while subscription changes are confirmed in the channel so the team sees who
changed what. A refused command stores nothing. Registered by `bot.app.create_app`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import OperationalError

from bot.archive.search import search_papers
from bot.channel_settings import from_row
from bot.digest import blocks
from bot.digest.delivery import CHANNEL_ERRORS
from bot.digest.planning import make_view
from bot.home import LIKED_DAYS, most_liked
from bot.matching.categories import parse_channel_topic
from bot.matching.ranking import TopicError, explain, parse_topic, reading_text
from bot.subscriptions import MAX_TOPICS, Refused, check_new_topic, find_topic
from handlers.context import Deps
from handlers.replies import checked
from handlers.settings_modal import open_settings
from handlers.slack_text import plain
from handlers.work import BUSY, DB_WAIT, bounded
from storage import queries
from storage.checks import fits
from storage.db import session_scope
from storage.models import Subscription

logger = logging.getLogger(__name__)
MAX_TEXT = 2000
NOT_IN_CHANNEL = (
    "I can't post in this channel yet, so I stored nothing. Invite me with "
    "`/invite @papers-bot` and run the command again."
)
ID_COLUMN = Subscription.__table__.c.channel_id  # Slack ids: team, channel, user
DB_BUSY = "The database is busy, so nothing was changed. Please try again in a minute."
UNKNOWN_PLACE = "I can't work in this conversation (its id is not a Slack channel id I know)."


def register(app: App, deps: Deps) -> None:
    @app.command("/papers")
    def papers_command(ack, command, respond, client):
        def task() -> None:
            run_command(deps, command, checked(bounded(respond)), client)

        if deps.work.submit(task, "/papers"):
            ack()
        else:
            ack(text=BUSY, response_type="ephemeral")


def run_command(deps: Deps, command: dict, respond, client) -> None:
    """Do what a `/papers` command asks (on the work pool, after the ack)."""
    text = _clean(command.get("text", ""))
    verb, _, rest = text.partition(" ")
    handler = COMMANDS.get(verb.lower())
    if not all(fits(command.get(n, ""), ID_COLUMN) for n in ("team_id", "channel_id", "user_id")):
        respond(text=UNKNOWN_PLACE, response_type="ephemeral")
        return
    try:
        if handler is None:
            hint = f"I don't know `{blocks.escape(verb[:40])}`. Here is what I can do:"
            text, body = blocks.help_message(
                MAX_TOPICS,
                hint if verb.lower() != "help" and verb else None,
                by_meaning=deps.archive.encoder is not None,
            )
            respond(text=text, blocks=body, response_type="ephemeral")
            return
        handler(deps, command, rest.strip(), respond, client)
    except (Refused, TopicError) as exc:
        respond(text=str(exc), response_type="ephemeral")
    except OSError as exc:  # Slack unreachable or past its deadline: no answer can get through
        logger.warning("/papers %s: could not reach Slack: %s", verb[:20], exc)
    except OperationalError as exc:  # locked past DB_WAIT, or the database is unreachable
        logger.warning("/papers %s: database busy: %s", verb[:20], str(exc.orig)[:200])
        respond(text=DB_BUSY, response_type="ephemeral")
    except Exception:
        logger.exception("/papers %s failed", verb[:20])
        respond(
            text="Sorry, something went wrong on my side and nothing was changed. "
            "Please try again in a minute.",
            response_type="ephemeral",
        )


def _clean(text: str) -> str:
    """The text as typed (Slack's escaping undone; everything shown is escaped again),
    without control or invisible characters, spaces collapsed, length capped."""
    return plain(text[: MAX_TEXT * 5])[:MAX_TEXT]


_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _who(command: dict) -> str:
    user = command.get("user_id", "")
    return f"<@{user}>" if _USER.match(user) else "Someone"


def _subscribe(deps: Deps, command, arg: str, respond, client) -> None:
    team, channel = command["team_id"], command["channel_id"]
    if not arg:
        raise Refused("Say what to follow, e.g. `/papers subscribe contrastive learning`.")
    with session_scope(deps.engine, wait=DB_WAIT) as session:
        queries.lock_channel(team, channel, session=session)  # count and insert as one step
        existing = queries.channel_subscriptions(team, channel, session=session)
        topic, key = check_new_topic(arg, existing)
        added = queries.add_subscription(
            team, channel, topic.text, key, command.get("user_id", ""), session=session
        )
        if added is None:
            raise Refused(f"This channel already follows *{blocks.escape(topic.text)}*.")
        schedule = from_row(queries.channel_settings(team, channel, session=session), deps.settings)
    # Committed before talking to Slack, so no database lock is held during the call.
    when = f"{schedule.days_text()} at {schedule.time:%H:%M} {schedule.timezone}"
    note = (
        f"{_who(command)} subscribed this channel to *{blocks.escape(topic.text)}*. "
        f"New papers on it arrive in the digest ({blocks.escape(when)})."
    )
    if reading := reading_text(topic, deps.archive.acronyms):
        note += f"\nI read it as: _{blocks.escape(reading)}_."
    try:
        client.chat_postMessage(channel=channel, text=note, blocks=blocks.notice(note)[1])
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error not in ("not_in_channel", "channel_not_found"):
            respond(
                text=f"Done: this channel now follows *{blocks.escape(topic.text)}* "
                f"(I could not announce it in the channel: `{error}`).",
                response_type="ephemeral",
            )
            return
        with session_scope(deps.engine, wait=DB_WAIT) as session:
            queries.delete_subscription(added, session=session)
        respond(text=NOT_IN_CHANNEL, response_type="ephemeral")


def _unsubscribe(deps: Deps, command, arg: str, respond, client) -> None:
    team, channel = command["team_id"], command["channel_id"]
    with session_scope(deps.engine, wait=DB_WAIT) as session:
        sub = find_topic(arg, queries.channel_subscriptions(team, channel, session=session))
        removed = queries.delete_subscription(sub.id, session=session)
        topic = blocks.escape(sub.topic)
    if not removed:  # a concurrent identical command removed it first and announced it
        respond(text=f"This channel no longer follows *{topic}*.", response_type="ephemeral")
        return
    note = f"{_who(command)} unsubscribed this channel from *{topic}*."
    try:
        client.chat_postMessage(channel=channel, text=note, blocks=blocks.notice(note)[1])
    except SlackApiError:
        respond(text=f"Done: this channel no longer follows *{topic}*.", response_type="ephemeral")


def _reading(deps: Deps, text: str) -> str:
    """How the bot reads a stored topic ("" when it no longer parses)."""
    try:
        return reading_text(parse_channel_topic(text)[0], deps.archive.acronyms)
    except TopicError:
        return ""


def _list(deps: Deps, command, arg: str, respond, client) -> None:
    with session_scope(deps.engine, wait=DB_WAIT) as session:
        subs = queries.channel_subscriptions(
            command["team_id"], command["channel_id"], session=session
        )
        state = queries.channel_state(command["team_id"], command["channel_id"], session=session)
        row = queries.channel_settings(command["team_id"], command["channel_id"], session=session)
    schedule = from_row(row, deps.settings).describe()
    warning = None
    if state is not None and state.error:
        hint = CHANNEL_ERRORS.get(state.error, "the next run retries")
        warning = f"My last digest here failed (`{state.error}`): {hint}."
    readings = [_reading(deps, s.topic) for s in subs]
    text, body = blocks.topic_list([s.topic for s in subs], warning, readings, schedule=schedule)
    respond(text=text, blocks=body, response_type="ephemeral")


def _search(deps: Deps, command, arg: str, respond, client) -> None:
    respond(**search_reply(deps, arg, 0), response_type="ephemeral")


def search_reply(deps: Deps, query: str, offset: int) -> dict:
    """The text and blocks of one page of search results (also used by the More button)."""
    with session_scope(deps.engine, wait=DB_WAIT) as session:
        deps.archive.sync(session=session)  # papers any process stored until now
        page = search_papers(
            query,
            session=session,
            archive=deps.archive,
            today=deps.settings.today(),
            offset=offset,
        )
        views = [make_view(p, deps.archive.index) for p, _ in page.hits]
    text, body = blocks.search_results(query, views, offset, page.more)
    return {"text": text, "blocks": body}


def _liked(deps: Deps, command, arg: str, respond, client) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=LIKED_DAYS)
    with session_scope(deps.engine, wait=DB_WAIT) as session:
        items = most_liked(
            command["team_id"],
            command["channel_id"],
            session=session,
            settings=deps.settings,
            since=since,
        )
    text, body = blocks.liked_papers(items, LIKED_DAYS)
    respond(text=text, blocks=body, response_type="ephemeral")


_ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5})(?:v\d+)?")


def _why(deps: Deps, command, arg: str, respond, client) -> None:
    """How each of the channel's topics scored one stored paper, and why it is in or out."""
    found = _ARXIV_ID.search(arg)
    if not found:
        raise Refused(
            "Say which paper: `/papers why 2401.01234` or its arXiv or Hugging Face link."
        )
    paper_id = found.group(1)
    team, channel = command["team_id"], command["channel_id"]
    deps.archive.sync()
    with session_scope(deps.engine) as session:
        subs = queries.channel_subscriptions(team, channel, session=session)
        paper = queries.get_papers([paper_id], session=session).get(paper_id)
        sent = paper_id in queries.delivered_or_planned_ids(team, channel, session=session)
        view = make_view(paper) if paper is not None else None
    if not subs:
        raise Refused("This channel follows no topics yet: `/papers subscribe <topic>` first.")
    index = deps.archive.index
    if view is None or paper_id not in index:
        raise Refused(
            f"I have not stored {paper_id}: I only know papers listed on Hugging Face Daily "
            "Papers. Try `/papers search` with words from its title."
        )
    deps.archive.embed([paper_id])
    semantics = deps.archive.semantics_for([paper_id])
    verdicts = []
    for sub in subs:
        try:
            topic = parse_topic(sub.topic)
        except TopicError:
            continue
        verdict = explain(
            index, topic, paper_id, semantics=semantics, acronyms=deps.archive.acronyms
        )
        verdicts.append((sub.topic, verdict.reading, verdict.passes, verdict.reason))
    text, body = blocks.why_report(view, verdicts, sent)
    respond(text=text, blocks=body, response_type="ephemeral")


COMMANDS = {
    "subscribe": _subscribe,
    "follow": _subscribe,
    "unsubscribe": _unsubscribe,
    "unfollow": _unsubscribe,
    "list": _list,
    "search": _search,
    "liked": _liked,
    "settings": open_settings,
    "why": _why,
}
