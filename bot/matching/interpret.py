"""How a topic is read: its alternatives, its qualifier, and the acronyms it may be written as.

Teams write topics as lists ("RLHF and reward models", "robot manipulation, VLA models"),
as a subject with a qualifier ("KV cache compression for long-context inference") and with
acronyms ("RAG", "3DGS"). `split_topic` cuts a topic's words into that structure, once, when
it is parsed (`bot.matching.ranking.parse_topic` calls it); `read_topic` adds the acronym
forms the archive defines
(`bot.matching.acronyms.Acronyms`), and `describe` says in one line how the bot understood
it (`/papers list`, the subscribe confirmation, `/papers why`, each reply's "why").

The rules, each argued for a class of topics rather than for one topic:

- Lists mean any of their members: ",", ";", " / ", "or", "and", "&" separate alternatives
  ("code generation and software engineering agents"). A team that wants papers about
  both at once writes one description without a conjunction ("code generation agents").
- ... except when every member is a single word joined by "and": "vision and language",
  "sense and respond", "search and rescue" name one subject by two facets, and each word
  alone ("language", "search") is far too broad; they stay one alternative that needs
  both words. Single acronyms are complete subjects and do split ("RLHF and DPO").
- A single plain word followed by a longer member shares that member's head noun:
  "protein and molecule design" reads "protein design · molecule design", "sentence and
  document embeddings" "sentence embeddings · document embeddings". Read alone, such a
  word ("protein", "sentence") would let in a whole field the team did not ask for; read
  with the head, the worst case ("diffusion and flow matching" -> "diffusion matching")
  matches too little, and the reading shown to the team says so. An acronym ("RLHF and
  reward models") or a hyphenated compound ("text-to-speech and speech synthesis") is a
  subject by itself and stays alone.
- Words joined without a conjunction are never split: "mixture of experts", "question
  answering", "text-to-speech", "learning with noisy labels" are one subject each (and
  "of", "to", "with" are not separators).
- A qualifier restricts: the first " for " or " in " with a subject on both sides splits
  the topic into subject and qualifier ("hallucination in vision-language models"). A
  paper must be about the subject (scored like any topic) and mention the qualifier
  (`bot.matching.ranking` checks the share of its IDF mass present); a list after the
  qualifier is again any of its members.
- A single word or acronym in parentheses is another name for what precedes it:
  "retrieval-augmented generation (RAG)" is "retrieval-augmented generation · RAG". A
  longer parenthesis is an aside (examples, a clarification: "world models (video, 4D)")
  and is left out: read as alternatives, examples would each let in a whole field.
- Acronyms match their expansions both ways, as the archive defines them (at least
  `MIN_SUPPORT` papers): "RAG" also reads "retrieval augmented generation", "3D gaussian
  splatting" also "3DGS". Hyphen, space and plural variants need nothing here: the
  tokenizer already cuts "vision-language" and "vision language" alike and stems plurals.
- More than `MAX_ALTERNATIVES` alternatives is refused: such a list is a reading list, not
  a topic, and each of its members deserves its own subscription (and its own line in the
  digest's "why").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from bot.matching.text import tokenize

__all__ = [
    "MAX_ALTERNATIVES",
    "Part",
    "Reading",
    "Structure",
    "describe",
    "read_topic",
    "split_topic",
]

MAX_ALTERNATIVES = 5  # members of a list topic (and of its qualifier)
MAX_VARIANTS = 4  # acronym forms scored per alternative

_SEPARATOR_RE = re.compile(r"\s*(?:[,;&]|\s/\s|\b(?:and|or)\b)\s*", re.IGNORECASE)
_QUALIFIER_RE = re.compile(r"\s+(?:for|in)\s+", re.IGNORECASE)
_PAREN_RE = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class Part:
    """One member of a list as written: its label, stems, and what may complete it."""

    label: str
    stems: tuple[str, ...]
    head: tuple[str, ...] = ()  # the head noun it may share ("protein" + "design")
    head_label: str = ""


@dataclass(frozen=True)
class Structure:
    """A topic's words cut into alternatives (any of) and qualifier alternatives."""

    parts: tuple[Part, ...]
    qualifier: tuple[Part, ...] = ()


class TopicShapeError(ValueError):
    """A topic whose structure cannot work (too many alternatives); message for Slack."""


def _is_acronym(word: str) -> bool:
    """Written like an acronym: two or more capitals or digits besides the first letter
    ("RLHF", "MoE", "3DGS", "LLMs")."""
    core = word[:-1] if word.endswith("s") else word
    return len(core) >= 2 and sum(c.isupper() or c.isdigit() for c in core) >= 2


def _units(text: str) -> list[str]:
    """Whitespace-separated words that carry a stem."""
    return [w for w in text.split() if tokenize(w, compounds=False)]


def _members(text: str) -> tuple[list[str], list[str], bool]:
    """A list's members, the aliases in parentheses, and whether the list stays whole
    (single words joined by "and")."""
    aliases: list[str] = []

    def alias(match: re.Match) -> str:
        inner = match.group(1).strip()
        if len(_units(inner)) == 1:
            aliases.append(inner)
        return " "

    text = " ".join(_PAREN_RE.sub(alias, text).replace("(", " ").replace(")", " ").split())
    seps = [m.group(0).strip().lower() for m in _SEPARATOR_RE.finditer(text)]
    members = [m.strip() for m in _SEPARATOR_RE.split(text) if _units(m)]
    single = all(len(_units(m)) == 1 for m in members)
    whole = (
        len(members) > 1
        and single
        and all(s in ("and", "&") for s in seps)
        and not all(_is_acronym(_units(m)[0]) for m in members)
    )
    if whole:
        members = [" ".join(members)]
    return members, aliases, whole


def _parts(text: str) -> tuple[Part, ...]:
    members, aliases, whole = _members(text)
    parts = []
    last_units = _units(members[-1]) if members else []
    for number, member in enumerate(members + aliases):
        stems = tuple(dict.fromkeys(tokenize(member, compounds=False)))
        if not stems:
            continue
        head: tuple[str, ...] = ()
        head_label = ""
        units = _units(member)
        if (
            not whole
            and number < len(members) - 1
            and len(units) == 1
            and len(last_units) >= 2
            and not _is_acronym(units[0])
            and "-" not in units[0]
        ):
            head_label = last_units[-1]
            head = tuple(tokenize(head_label, compounds=False))
        parts.append(Part(member, stems, head, head_label))
    return tuple(dict.fromkeys(parts))


@lru_cache(maxsize=8192)
def split_topic(words: str) -> Structure:
    """The structure of a topic's words (its text without -exclusions and author:).

    Raises TopicShapeError for more than MAX_ALTERNATIVES alternatives.
    """
    subject, qualifier = words, ""
    for found in _QUALIFIER_RE.finditer(words):
        before, after = words[: found.start()], words[found.end() :]
        if _units(before) and _units(after):
            subject, qualifier = before, after
            break
    parts = _parts(subject)
    if not parts:  # e.g. all words in a long parenthesis: the words as one subject
        parts = (Part(words, tuple(dict.fromkeys(tokenize(words, compounds=False)))),)
        qualifier = ""
    qualifiers = _parts(qualifier) if qualifier else ()
    for group in (parts, qualifiers):
        if len(group) > MAX_ALTERNATIVES:
            raise TopicShapeError(
                f"That topic lists {len(group)} subjects; a topic can name at most "
                f"{MAX_ALTERNATIVES} alternatives. Subscribe to each subject separately "
                "(each gets its own line in `/papers list` and in the digest's why)."
            )
    return Structure(parts, qualifiers)


# --------------------------------------------------------------------------- reading


class AcronymTable(Protocol):
    revision: int

    def expansions(self, short: str) -> tuple[tuple[str, ...], ...]: ...

    def shorts(self, first: str) -> list[tuple[tuple[str, ...], str]]: ...

    def written(self, short: str, stems: tuple[str, ...]) -> tuple[str, str]: ...


@dataclass(frozen=True)
class Alternative:
    """One alternative as scored: its label and its word forms (as written first)."""

    label: str
    variants: tuple[tuple[str, ...], ...]
    acronyms: tuple[tuple[str, str], ...] = ()  # (as written, the other form), for display


@dataclass(frozen=True)
class Reading:
    """A topic as the bot understood it over a given archive."""

    alternatives: tuple[Alternative, ...]
    qualifier: tuple[Alternative, ...] = ()


def _with_acronyms(
    label: str, stems: tuple[str, ...], acronyms: AcronymTable | None
) -> Alternative:
    """An alternative with the acronym forms of its words, both ways."""
    variants = [stems]
    notes: list[tuple[str, str]] = []
    if acronyms is not None:
        for i, stem in enumerate(stems):
            for long in acronyms.expansions(stem)[:2]:  # a short form -> its long forms
                variants.append(stems[:i] + long + stems[i + 1 :])
                notes.append(acronyms.written(stem, long))
            for long, short in acronyms.shorts(stem):  # a long form -> its short form
                if stems[i : i + len(long)] == long:
                    variants.append((*stems[:i], short, *stems[i + len(long) :]))
                    notes.append(acronyms.written(short, long))
    unique = tuple(dict.fromkeys(v for v in variants if v))[:MAX_VARIANTS]
    return Alternative(label, unique, tuple(dict.fromkeys(notes)))


def read_topic(structure: Structure, acronyms: AcronymTable | None = None) -> Reading:
    """The structure completed with the acronym forms the archive defines."""

    def alternatives(parts: tuple[Part, ...]) -> tuple[Alternative, ...]:
        out = []
        for part in parts:
            label, stems = part.label, part.stems
            if part.head:
                label, stems = f"{part.label} {part.head_label}", stems + part.head
            out.append(_with_acronyms(label, stems, acronyms))
        return tuple(out)

    return Reading(alternatives(structure.parts), alternatives(structure.qualifier))


def describe(reading: Reading) -> str:
    """One line: "any of: A · B; about: Y; RAG = retrieval augmented generation"."""
    labels = [a.label for a in reading.alternatives]
    text = " · ".join(labels) if len(labels) > 1 else (labels[0] if labels else "")
    text = f"any of: {text}" if len(labels) > 1 else text
    if reading.qualifier:
        text += "; only " + ("for any of: " if len(reading.qualifier) > 1 else "for: ")
        text += " · ".join(a.label for a in reading.qualifier)
    notes = dict.fromkeys(
        f"{a} = {b}" for alt in reading.alternatives + reading.qualifier for a, b in alt.acronyms
    )
    if notes:
        text += "; " + "; ".join(notes)
    return text
