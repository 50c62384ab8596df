"""Button clicks: "More results" under a search answer shows the next page in place.

Registered by `bot.app.create_app`.
"""

from __future__ import annotations

import logging

from slack_bolt import App

from bot.digest.blocks import read_more_value
from bot.matching.ranking import TopicError
from bot.subscriptions import Refused
from handlers.commands import search_reply
from handlers.context import Deps
from handlers.replies import checked
from handlers.work import bounded

logger = logging.getLogger(__name__)
MAX_OFFSET = 10_000  # far past any real page; bigger is a forged or garbled button


def register(app: App, deps: Deps) -> None:
    @app.action("search_more")
    def on_search_more(ack, action, respond):
        ack()
        deps.work.submit(lambda: _more(deps, action, checked(bounded(respond))), "search_more")


def _more(deps: Deps, action: dict, respond) -> None:
    try:
        query, offset = read_more_value(action.get("value") or "")
        if not 0 <= offset <= MAX_OFFSET:
            raise ValueError(f"offset {offset} is out of range")
        respond(
            replace_original=True,
            response_type="ephemeral",
            **search_reply(deps, query, offset),
        )
    except (ValueError, KeyError, TypeError, Refused, TopicError):
        respond(
            text="That search has expired; run `/papers search` again.",
            response_type="ephemeral",
        )
    except Exception:
        logger.exception("search_more failed")
        respond(
            text="Sorry, I could not load more results. Please try again.",
            response_type="ephemeral",
        )
