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

logger = logging.getLogger(__name__)


def register(app: App, deps: Deps) -> None:
    @app.action("search_more")
    def on_search_more(ack, action, respond):
        ack()
        respond = checked(respond)
        try:
            query, offset = read_more_value(action.get("value") or "")
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
