"""Answers through a command's or a button's `response_url`, checked.

Slack answers a `response_url` post with HTTP 200, or with an error such as
`invalid_blocks` or `expired_url` and the message not shown. `checked(respond)` wraps
Bolt's `respond` so that a refused answer is logged with Slack's reason and, when it had
blocks, sent again as its plain fallback text, so the user still sees something.
Used by `handlers.commands` and `handlers.actions`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)


def checked(respond: Callable) -> Callable:
    """`respond`, with Slack's answer checked (see the module docstring)."""

    def send(*args, **kwargs):
        response = _post(respond, args, kwargs)
        if response is not None and kwargs.get("blocks") and response.status_code != 200:
            plain = {k: v for k, v in kwargs.items() if k != "blocks"}
            response = _post(respond, args, plain)
        return response

    return send


def _post(respond: Callable, args: tuple, kwargs: dict):
    try:
        response = respond(*args, **kwargs)
    except OSError as exc:  # Slack unreachable: nothing more can be said to the user
        logger.warning("could not answer through the response_url: %s", exc)
        return None
    if response.status_code != 200:
        logger.warning(
            "Slack refused an answer (%s blocks): HTTP %s %s",
            len(kwargs.get("blocks") or ()),
            response.status_code,
            (response.body or "")[:200],
        )
    return response
