"""Text that is safe inside Slack's mrkdwn, and Slack's size limits for it.

Slack reads `&`, `<` and `>` as control characters and `*`, `_`, `~` and backticks as
formatting, with no escape for the latter; it also shows right-to-left overrides and other
invisible format characters as they come. `escape` turns any user- or source-supplied text
into text that shows as written: entities for the control characters, look-alike glyphs for
the formatting characters, invisible format characters removed. `fit` shortens text *before*
escaping, at a word boundary with an ellipsis, so a cut never lands inside an entity or the
bot's own markup; `pack` groups whole pieces into texts that each fit one Block Kit text
object. Used by `bot.digest.blocks` and everything that writes a message for Slack.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

TEXT_CHARS = 3000  # a section's text, a context element's text
FALLBACK_CHARS = 4000  # a message's `text`, Slack's advice for notifications and screen readers
BUTTON_VALUE_CHARS = 2000  # a button's `value`
ELLIPSIS = "…"

# Zero-width joiner and non-joiner shape emoji sequences and Indic or Persian words; every
# other format character (bidi overrides and isolates, zero-width spaces, soft hyphens, BOMs,
# tag characters) only hides or reorders text.
_KEPT_FORMAT = {"\u200c", "\u200d"}
# Slack has no escape for its formatting characters; these look alike and format nothing.
_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def visible(text: str) -> str:
    """`text` without invisible format characters; other control characters become spaces."""
    out = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cf" and ch not in _KEPT_FORMAT:
            continue
        out.append(" " if category == "Cc" and ch != "\n" else ch)
    return "".join(out)


def _escape_char(ch: str) -> str:
    return _ENTITY.get(ch) or _LOOKALIKE.get(ch) or ch


def escape(text: str) -> str:
    """Make text show as written in mrkdwn: no mentions, links, formatting or hidden characters."""
    return "".join(_escape_char(ch) for ch in visible(text))


def slack_len(text: str) -> int:
    """Length as Slack may count it (UTF-16 code units: an emoji can count twice)."""
    return len(text.encode("utf-16-le")) // 2


def fit(text: str, limit: int) -> str:
    """`escape(text)`, shortened before escaping to at most `limit` characters.

    Cut at a word boundary when there is one in the second half, then marked with an ellipsis.
    """
    text = " ".join(visible(text).split())
    escaped = escape(text)
    if slack_len(escaped) <= limit:
        return escaped
    room, used, cut = limit - len(ELLIPSIS), 0, 0
    for i, ch in enumerate(text):
        used += slack_len(_escape_char(ch))
        if used > room:
            break
        cut = i + 1
    head = text[:cut]
    if " " in head[cut // 2 :]:
        head = head.rsplit(" ", 1)[0]
    return escape(head.rstrip(" ,;:-–—(")) + ELLIPSIS


def pack(pieces: Iterable[str], *, sep: str = "\n", limit: int = TEXT_CHARS) -> list[str]:
    """Whole pieces joined by `sep` into as few texts of at most `limit` characters as can be.

    A piece is never split; one longer than `limit` is the caller's bug (fit it first).
    """
    texts: list[str] = []
    current = ""
    for piece in pieces:
        if slack_len(piece) > limit:
            raise ValueError(f"a piece of {slack_len(piece)} characters cannot fit {limit}")
        joined = f"{current}{sep}{piece}" if current else piece
        if current and slack_len(joined) > limit:
            texts.append(current)
            joined = piece
        current = joined
    if current:
        texts.append(current)
    return texts
