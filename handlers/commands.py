"""The `/papers` slash command: subscribe, unsubscribe, list, search, liked, why, help.

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

from bot.archive.search import search_papers
from bot.digest import blocks
from bot.digest.delivery import CHANNEL_ERRORS
from bot.digest.planning import make_view
from bot.matching import feedback
from bot.matching.ranking import TopicError, explain, parse_topic, reading_text
from bot.subscriptions import MAX_TOPICS, Refused, check_new_topic, find_topic
from handlers.context import Deps
from storage import queries
from storage.db import session_scope

logger = logging.getLogger(__name__)
MAX_TEXT = 2000
NOT_IN_CHANNEL = (
    "I can't post in this channel yet, so I stored nothing. Invite me with "
    "`/invite @papers-bot` and run the command again."
)
LIKED_DAYS = 7


def register(app: App, deps: Deps) -> None:
    @app.command("/papers")
    def papers_command(ack, command, respond, client):
        ack()
        text = _clean(command.get("text", ""))
        verb, _, rest = text.partition(" ")
        handler = COMMANDS.get(verb.lower())
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
        except Exception:
            logger.exception("/papers %s failed", verb[:20])
            respond(
                text="Sorry, something went wrong on my side and nothing was changed. "
                "Please try again in a minute.",
                response_type="ephemeral",
            )


def _clean(text: str) -> str:
    """Undo Slack's &amp;/&lt;/&gt; escaping (everything shown is escaped again), drop
    control characters, collapse whitespace and cap the length."""
    text = text[: MAX_TEXT * 5].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())[:MAX_TEXT]


_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _who(command: dict) -> str:
    user = command.get("user_id", "")
    return f"<@{user}>" if _USER.match(user) else "Someone"


def _subscribe(deps: Deps, command, arg: str, respond, client) -> None:
    team, channel = command["team_id"], command["channel_id"]
    if not arg:
        raise Refused("Say what to follow, e.g. `/papers subscribe contrastive learning`.")
    with session_scope(deps.engine) as session:
        existing = queries.channel_subscriptions(team, channel, session=session)
        topic, key = check_new_topic(arg, existing)
        added = queries.add_subscription(
            team, channel, topic.text, key, command.get("user_id", ""), session=session
        )
        if added is None:
            raise Refused(f"This channel already follows *{blocks.escape(topic.text)}*.")
    # Committed before talking to Slack, so no database lock is held during the call.
    when = f"{deps.settings.digest_time:%H:%M} {deps.settings.digest_timezone}"
    note = (
        f"{_who(command)} subscribed this channel to *{blocks.escape(topic.text)}*. "
        f"New papers on it arrive in the daily digest at {when}."
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
        with session_scope(deps.engine) as session:
            queries.delete_subscription(added, session=session)
        respond(text=NOT_IN_CHANNEL, response_type="ephemeral")


def _unsubscribe(deps: Deps, command, arg: str, respond, client) -> None:
    team, channel = command["team_id"], command["channel_id"]
    with session_scope(deps.engine) as session:
        sub = find_topic(arg, queries.channel_subscriptions(team, channel, session=session))
        queries.delete_subscription(sub.id, session=session)
        topic = blocks.escape(sub.topic)
    note = f"{_who(command)} unsubscribed this channel from *{topic}*."
    try:
        client.chat_postMessage(channel=channel, text=note, blocks=blocks.notice(note)[1])
    except SlackApiError:
        respond(text=f"Done: this channel no longer follows *{topic}*.", response_type="ephemeral")


def _list(deps: Deps, command, arg: str, respond, client) -> None:
    with session_scope(deps.engine) as session:
        subs = queries.channel_subscriptions(
            command["team_id"], command["channel_id"], session=session
        )
        state = queries.channel_state(command["team_id"], command["channel_id"], session=session)
    warning = None
    if state is not None and state.error:
        hint = CHANNEL_ERRORS.get(state.error, "the next run retries")
        warning = f"My last digest here failed (`{state.error}`): {hint}."
    readings = [reading_text(parse_topic(s.topic), deps.archive.acronyms) for s in subs]
    text, body = blocks.topic_list([s.topic for s in subs], warning, readings)
    respond(text=text, blocks=body, response_type="ephemeral")


def _search(deps: Deps, command, arg: str, respond, client) -> None:
    respond(**search_reply(deps, arg, 0), response_type="ephemeral")


def search_reply(deps: Deps, query: str, offset: int) -> dict:
    """The text and blocks of one page of search results (also used by the More button)."""
    deps.archive.sync()
    with session_scope(deps.engine) as session:
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
    with session_scope(deps.engine) as session:
        reactions = queries.reactions_in_force(
            session=session,
            team_id=command["team_id"],
            channel_id=command["channel_id"],
            since=since,
        )
        votes = feedback.paper_votes(reactions, deps.settings)
        top = sorted((v, p) for p, v in votes.items() if v > 0)[::-1][:10]
        papers = queries.get_papers([p for _, p in top], session=session)
        items = [(make_view(papers[p]), v) for v, p in top if p in papers]
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
    "why": _why,
}
