"""Acronyms learned from the archive: "retrieval-augmented generation (RAG)" and the like.

Abstracts define their acronyms the first time they use them, so the archive itself says
that RAG is retrieval-augmented generation, MoE a mixture of experts and 3DGS 3D Gaussian
splatting; no hand-kept list of the field goes stale. `Acronyms.add` reads titles and
abstracts for "long form (SHORT)" and counts, per short form, the papers that define it
with each long form; a pair counts once it has `MIN_SUPPORT` papers and at least
`MIN_SHARE` of its short form's definitions (ambiguous short forms such as "SD", stable
diffusion or speculative decoding, keep each sense that is common enough).
`bot.archive.live.Archive` feeds it every paper it indexes, so the table grows with the
archive; `bot.matching.interpret` asks it for the expansions of a topic's words.

A definition counts only if the short form spells the long form's initials: its first
character starts the long form, every content word (hyphen parts included) of the long
form begins one of its characters, and any other character continues the word part the
previous one matched in ("LoRA": Low-Rank Adaptation; "3DGS": 3D Gaussian Splatting;
"MoE": mixture of experts, where "of" may give the "o" but need not). This is the
Schwartz-Hearst rule made stricter; it rejects "(Table 1)", "(ours)" and "(ViT-B)" style
parentheses and coincidences, which the support count filters further.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, defaultdict
from collections.abc import Container, Iterable
from functools import lru_cache

from bot.matching.text import STOPWORDS, tokenize

__all__ = ["MIN_SHARE", "MIN_SUPPORT", "Acronyms", "definitions"]

MIN_SUPPORT = 2  # papers defining a pair before it is used
MIN_SHARE = 0.2  # of the short form's definitions: rarer senses are left out
MAX_SHORT = 10  # characters of a short form

_DEFINITION_RE = re.compile(rf"\(([A-Za-z0-9][A-Za-z0-9-]{{1,{MAX_SHORT - 1}}})\)")
_WORD_RE = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")


def _short_key(short: str) -> str | None:
    """The short form as matched ("LLMs" -> "llm"), or None if it is not an acronym: it
    needs two letters, an upper-case letter (or a digit) after the first character, and no
    lower-case run longer than two ("(Table)", "(ours)", "(e.g)" are not acronyms)."""
    if short.endswith("s") and len(short) > 2 and short[-2].isupper():
        short = short[:-1]
    letters = [c for c in short if c.isalpha()]
    if len(letters) < 2 or not any(c.isupper() or c.isdigit() for c in short[1:]):
        return None
    if re.search(r"[a-z]{3,}", short):
        return None
    return short.replace("-", "").lower()


@lru_cache(maxsize=65536)
def _spells(short: str, parts: tuple[tuple[str, bool], ...]) -> bool:
    """Whether `short` spells the initials of `parts` ((word part, is content word))."""

    def match(i: int, part: int, at: int) -> bool:
        # i: next short char; part/at: the word part and offset the previous char matched.
        if i == len(short):
            return all(not content for _w, content in parts[part + 1 :])
        char = short[i]
        word = parts[part][0]
        if char in word[at + 1 :]:  # continue inside the current part
            nxt = word.index(char, at + 1)
            if match(i + 1, part, nxt):
                return True
        for later in range(part + 1, len(parts)):  # start a following part
            if parts[later][0][0] == char and match(i + 1, later, 0):
                return True
            if parts[later][1]:  # a content part may not be skipped
                break
        return False

    return bool(parts) and parts[0][0][0] == short[0] and match(1, 0, 0)


def definitions(text: str) -> list[tuple[str, tuple[str, ...], str, str]]:
    """(short form, long form stems, both as written) of each acronym defined in `text`."""
    out = []
    for found in _DEFINITION_RE.finditer(text):
        short = _short_key(found.group(1))
        if short is None:
            continue
        # Only words right before the "(": a clause break ends the long form.
        tail = re.split(r"[.;:,()\[\]]", text[max(0, found.start() - 120) : found.start()])[-1]
        before = _WORD_RE.findall(tail)
        for size in range(1, min(len(before), len(short) + 2) + 1):
            words = before[-size:]
            parts = tuple(
                (p.lower(), p.lower() not in STOPWORDS) for w in words for p in w.split("-")
            )
            if not parts[0][1]:
                continue  # a long form starts with a content word
            if _spells(short, parts):
                stems = tuple(tokenize(" ".join(words), compounds=False))
                if stems and stems != (short,):
                    out.append((short, stems, found.group(1), " ".join(words)))
                break
    return out


class _Seen:
    """Ids seen: those of a container, and those added."""

    def __init__(self, base: Container[str]) -> None:
        self.base = base
        self.more: set[str] = set()

    def __contains__(self, paper_id: object) -> bool:
        return paper_id in self.more or paper_id in self.base

    def add(self, paper_id: str) -> None:
        self.more.add(paper_id)


class Acronyms:
    """Short form <-> long forms, counted over the papers added so far (thread-safe)."""

    def __init__(self) -> None:
        self._counts: dict[str, Counter[tuple[str, ...]]] = defaultdict(Counter)
        self._seen: set[str] | _Seen = set()
        self._written: dict[tuple[str, tuple[str, ...]], tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._shorts: tuple[int, dict[str, list[tuple[tuple[str, ...], str]]]] = (-1, {})
        self.revision = 0

    def add(self, papers: Iterable[tuple[str, str, str]]) -> None:
        """Count the definitions in (id, title, abstract) of papers not seen before."""
        found: list[tuple[str, list]] = []
        for paper_id, title, abstract in papers:
            if paper_id in self._seen:
                continue
            pairs = definitions(f"{title}. {abstract}") if "(" in title + abstract else []
            found.append((paper_id, pairs))
        with self._lock:
            for paper_id, pairs in found:
                if paper_id in self._seen:
                    continue
                self._seen.add(paper_id)
                for short, stems, short_text, long_text in pairs:
                    self._written.setdefault((short, stems), (short_text.rstrip("s"), long_text))
                for short, stems in {(short, stems) for short, stems, *_w in pairs}:
                    self._counts[short][stems] += 1
                if pairs:
                    self.revision += 1

    def state(self) -> dict:
        """What was counted, as JSON, for `restore` (the papers seen are not in it)."""
        with self._lock:
            counts = [
                [short, [[list(k), n] for k, n in c.items()]] for short, c in self._counts.items()
            ]
            written = [
                [short, list(stems), *forms] for (short, stems), forms in self._written.items()
            ]
        return {"counts": counts, "written": written}

    def restore(self, state: dict, seen: Container[str]) -> None:
        """Take back what `state` counted, over the papers `seen` (ids; the index's own
        table, rather than a set of a million of them). Raises KeyError, TypeError or
        ValueError for a state that is not `state`'s."""
        counts = {short: Counter({tuple(k): int(n) for k, n in c}) for short, c in state["counts"]}
        written = {(short, tuple(stems)): (a, b) for short, stems, a, b in state["written"]}
        with self._lock:
            self._counts = defaultdict(Counter, counts)
            self._written = written
            self._seen = _Seen(seen)
            self.revision += 1

    def expansions(self, short: str) -> tuple[tuple[str, ...], ...]:
        """The long forms (stems) of a short form, commonest first."""
        with self._lock:
            counts = self._counts.get(short)
            ranked = counts.most_common() if counts else []
        total = sum(n for _stems, n in ranked)
        return tuple(stems for stems, n in ranked if n >= MIN_SUPPORT and n >= MIN_SHARE * total)

    def shorts(self, first: str) -> list[tuple[tuple[str, ...], str]]:
        """(long form stems, short form) of every pair in use whose long form begins with
        the stem `first`."""
        revision, table = self._shorts
        if revision != self.revision:
            with self._lock:
                keys = list(self._counts)
                revision = self.revision
            table = {}
            for short in keys:
                for stems in self.expansions(short):
                    table.setdefault(stems[0], []).append((stems, short))
            self._shorts = (revision, table)
        return table.get(first, [])

    def written(self, short: str, stems: tuple[str, ...]) -> tuple[str, str]:
        """(short form, long form) as a paper first wrote them ("RAG", "retrieval-augmented
        generation"), for showing a reading."""
        with self._lock:
            return self._written.get((short, stems), (short.upper(), " ".join(stems)))
