"""Rules for a channel's topics: what may be subscribed, and how a topic is named.

Pure checks over plain data; `handlers.commands` calls them before storing anything, so
a refused command leaves the database as it was. `Refused` carries the message the user
sees, written to say what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.digest.blocks import escape
from bot.matching.categories import parse_channel_topic
from bot.matching.ranking import Topic, TopicError
from storage.models import Subscription

MAX_TOPICS = 20


class Refused(ValueError):
    """A command that changes nothing; the message is shown to the user as-is."""


def topic_key(topic: Topic, categories: frozenset[str] = frozenset()) -> str:
    """Two topics with the same key match the same papers (case, word forms, order of -words)."""
    parts = [" ".join(topic.terms)]
    parts += ['"' + " ".join(p) + '"' for p in topic.phrases]
    parts += ["-" + t for t in sorted(topic.excluded)]
    parts += ["author:" + a.lower() for a in sorted(topic.authors)]
    parts += ["cat:" + c for c in sorted(categories)]
    return " ".join(p for p in parts if p)[:200]


def check_new_topic(text: str, existing: Sequence[Subscription]) -> tuple[Topic, str]:
    """The parsed topic and its key, or `Refused`/`TopicError` saying why it cannot be added."""
    topic, categories = parse_channel_topic(text)
    key = topic_key(topic, categories)
    for sub in existing:
        if sub.topic_key == key:
            raise Refused(f"This channel already follows *{escape(sub.topic)}*.")
    if len(existing) >= MAX_TOPICS:
        raise Refused(
            f"This channel already follows {MAX_TOPICS} topics, the most it can. "
            "Remove one first: `/papers list`, then `/papers unsubscribe &lt;number&gt;`."
        )
    return topic, key


def find_topic(arg: str, existing: Sequence[Subscription]) -> Subscription:
    """The subscription named by its number in `/papers list` or by its text."""
    arg = arg.strip()
    if not arg:
        raise Refused("Say which topic to remove: `/papers unsubscribe &lt;topic or number&gt;`.")
    if not existing:
        raise Refused("This channel follows no topics, so there is nothing to remove.")
    if arg.isdigit():
        number = int(arg)
        if 1 <= number <= len(existing):
            return existing[number - 1]
        raise Refused(
            f"There is no topic number {number}; this channel has {len(existing)}. "
            "See `/papers list`."
        )
    try:
        key = topic_key(*parse_channel_topic(arg))
    except TopicError:
        key = None
    for sub in existing:
        if sub.topic_key == key or sub.topic.casefold() == arg.casefold():
            return sub
    raise Refused("This channel does not follow that topic. See `/papers list` for its topics.")
