"""Topic parsing: a channel topic or search query read into a `Topic`, or a `TopicError`.

Called by `/papers subscribe` (via `bot.subscriptions`) to validate a topic before storing it,
and by `bot.matching.ranking` before scoring. Imported through `bot.matching.ranking`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from bot.matching.index import fold_name
from bot.matching.interpret import Structure, TopicShapeError, split_topic
from bot.matching.text import split_tokens, surface_of, tokenize

MAX_TOPIC_CHARS = 200
MIN_AUTHOR_CHARS = 2  # letters or digits an author: filter needs


class TopicError(ValueError):
    """A topic or query the user must fix; the message is shown in Slack as-is."""


@dataclass(frozen=True)
class Topic:
    """A channel topic (or search query), parsed.

    `terms` are the stems scored with BM25 (including the words of quoted phrases);
    `phrases` must each occur contiguously (stopwords aside) in title or abstract;
    `excluded` stems drop any paper containing one; `authors` must each match, as a
    case- and accent-insensitive substring, one of the paper's author names; `words` is
    what a sentence encoder reads.
    """

    text: str
    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()
    excluded: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    words: str = ""  # the topic's own words as typed, without -exclusions or author:
    structure: Structure | None = None  # alternatives and qualifier (`bot.matching.interpret`)


_SLACK_MENTION_RE = re.compile(r"<[@#!][^>]*>")
_SLACK_LINK_RE = re.compile(r"<[^>|]*\|([^>]*)>|<[^>]*>")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"'})
_TOPIC_PART_RE = re.compile(
    r'(?P<neg>-)?(?P<author>author:)?"(?P<quoted>[^"]*)"|(?P<word>[^\s"]+)', re.IGNORECASE
)


def clean_topic_text(text: str) -> str:
    """Slack markup stripped (mentions dropped, links to their label), spaces collapsed."""
    text = _SLACK_MENTION_RE.sub(" ", text)
    text = _SLACK_LINK_RE.sub(lambda m: f" {m.group(1) or ''} ", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.split())


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for item in items if item))


def parse_topic(text: str) -> Topic:
    """Parse a topic or query: words, "quoted phrases", -excluded words, author:name.

    Raises TopicError (message fit for Slack) for empty, too long or meaningless text.
    Unbalanced quotes are read as plain words.
    """
    cleaned = clean_topic_text(text or "")
    if not cleaned:
        raise TopicError("Please give a topic, e.g. `/papers subscribe sparse autoencoders`.")
    if len(cleaned) > MAX_TOPIC_CHARS:
        raise TopicError(
            f"That topic is {len(cleaned)} characters long; please keep it under "
            f"{MAX_TOPIC_CHARS}, a few words describing what you want to read."
        )
    balanced = cleaned if cleaned.count('"') % 2 == 0 else cleaned.replace('"', " ")
    terms: list[str] = []
    phrases: list[tuple[str, ...]] = []
    excluded: list[str] = []
    authors: list[str] = []
    plain: list[str] = []
    for part in _TOPIC_PART_RE.finditer(balanced):
        words = part.group("quoted") if part.group("word") is None else part.group("word")
        negated = part.group("neg") is not None
        is_author = part.group("author") is not None
        if part.group("word") is not None:
            negated = words.startswith("-") and len(words) > 1
            words = words[1:] if negated else words
            if words[:7].lower() == "author:":
                is_author, words = True, words[7:]
        if is_author:
            name = fold_name(words)
            if sum(ch.isalnum() for ch in name) < MIN_AUTHOR_CHARS:
                raise TopicError(
                    "`author:` needs part of a name, e.g. `author:hinton` or "
                    '`author:"geoffrey hinton"` (letters, at least two).'
                )
            if not negated:
                authors.append(name)
            continue
        if negated:  # -a-b excludes the compound "a-b" (or "ab"), not every a and b
            running, joined = split_tokens(words)
            excluded.extend(joined if "-" in words and joined else running)
            continue
        stems = tokenize(words, compounds=False)
        terms.extend(stems)
        plain.append(words)
        if part.group("quoted") is not None and len(stems) > 1:
            phrases.append(tuple(stems))
    if not terms and not authors:
        raise TopicError(
            "Topics need at least one meaningful word: common words like “the” or “novel” "
            'are ignored. Try e.g. `contrastive learning` or `"sparse autoencoders"`.'
        )
    words = " ".join(plain) if terms else ""
    try:
        structure = split_topic(words) if words else None
    except TopicShapeError as exc:
        raise TopicError(str(exc)) from None
    topic = Topic(
        text=cleaned,
        terms=_unique(terms),
        phrases=tuple(dict.fromkeys(phrases)),
        excluded=_unique(excluded),
        authors=_unique(authors),
        words=words,
        structure=structure,
    )
    _check_satisfiable(topic)
    return topic


def _check_satisfiable(topic: Topic) -> None:
    """Refuse a topic no paper can ever match: it excludes one of its own words."""
    clash = [t for t in topic.excluded if t in topic.terms]
    if clash:
        word = surface_of(clash[0])
        raise TopicError(
            f"That topic asks for “{word}” and excludes it too, so nothing could ever "
            f"match. Drop `-{word}` or the word itself."
        )
