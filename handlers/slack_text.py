"""What a user typed after `/papers`, recovered from the form Slack delivers it in.

Slack sends `&`, `<` and `>` as entities, and (with `should_escape`, or when it links a
pasted URL itself) channels, users and links in angle brackets: `<#C123|nlp>`,
`<@U123|ana>`, `<https://example.com|example.com>`, `<!here>`. `plain` turns each back
into the text as typed (`#nlp`, `@ana`, the URL; a broadcast such as `<!here>` is never a
topic and is dropped), then drops invisible format and control characters and collapses
spaces. Called by `handlers.commands`.
"""

from __future__ import annotations

import re

from bot.digest.mrkdwn import visible

_ANGLED = re.compile(r"<([^<>]*)>")


def _as_typed(match: re.Match[str]) -> str:
    target, _, label = match[1].partition("|")
    if target[:1] in ("@", "#"):  # <@U123|ana>, <#C123|nlp>, <#C123>
        return target[0] + (label or target[1:])
    if target.startswith("!"):  # <!here> (never a topic), <!subteam^S1|@team>, <!date^…|…>
        return label
    if target.startswith("mailto:"):
        return label or target.removeprefix("mailto:")
    return target  # a link: the URL itself


def plain(text: str) -> str:
    """The command text as the user typed it, on one line."""
    text = _ANGLED.sub(_as_typed, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = "".join(ch if ch.isprintable() or ch in "\u200c\u200d" else " " for ch in visible(text))
    return " ".join(text.split())
