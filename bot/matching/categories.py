"""Channel filters on top of a topic: `cat:` tokens (arXiv categories) and allowed sources.

`split_categories` takes the `cat:cs.RO` tokens out of a topic's text before the topic is
parsed, so the rest is matched by words as before; `parse_channel_topic` does both and is what
subscribing, planning and `digest --topic` call. `keeps` tells whether a paper passes a
topic's categories and a channel's allowed sources. Pure functions over plain data.

`cat:cs.RO` keeps papers listed in cs.RO, as primary category or cross-list; `cat:cs` keeps
every cs category; several `cat:` tokens in one topic keep papers in any of them. Papers
without categories (Hugging Face lists none) never pass a `cat:` filter.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from bot.matching.ranking import Topic, TopicError, parse_topic

_CAT_TOKEN = re.compile(
    r"(?<![\w:\"-])cat:([A-Za-z][A-Za-z-]*(?:\.[A-Za-z][A-Za-z-]*)?)(?![\w.:-])"
)


def split_categories(text: str) -> tuple[str, frozenset[str]]:
    """(text without its `cat:` tokens, the categories they name, case-folded)."""
    found = frozenset(m.group(1).casefold() for m in _CAT_TOKEN.finditer(text or ""))
    rest = " ".join(_CAT_TOKEN.sub(" ", text or "").split())
    return rest, found


def parse_channel_topic(text: str) -> tuple[Topic, frozenset[str]]:
    """The topic's words (see `parse_topic`) and its category filter.

    Raises TopicError, in words fit for Slack, for a category filter with nothing to match.
    """
    rest, categories = split_categories(text)
    if categories and not rest.strip():
        raise TopicError(
            "A category filter needs a few words to match within it, e.g. "
            "`/papers subscribe cat:cs.RO grasping`."
        )
    return parse_topic(rest), categories


def in_categories(paper_categories: Iterable[str], wanted: Collection[str]) -> bool:
    """True when no category is asked for, or the paper is in one of them (or its archive)."""
    if not wanted:
        return True
    for category in paper_categories:
        folded = category.casefold()
        if folded in wanted or folded.split(".", 1)[0] in wanted:
            return True
    return False


def from_sources(paper_sources: Iterable[str], allowed: Collection[str] | None) -> bool:
    """True when every source is allowed (None) or one that listed the paper is."""
    return allowed is None or any(source in allowed for source in paper_sources)
