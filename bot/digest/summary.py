"""Short paper summaries for digest replies.

Pure functions; called by `bot.digest.planning` and `bot.archive.search`. How sentences are
chosen: docs/summaries.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from bot.matching.text import tokenize

MAX_CHARS = 420
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")
_ABBREVIATIONS = ("e.g.", "i.e.", "et al.", "etc.", "vs.", "cf.", "Fig.", "Eq.", "approx.")
_ENUMERATOR = re.compile(r"^\(?(\d{1,2}|[ivx]{1,4}|[a-e])[.)]\s+", re.IGNORECASE)
MIN_SENTENCE_CHARS = 40  # shorter pieces are list items or headings, not summaries
_LEANS_BACK = re.compile(
    r"^(\(?(\d{1,2}|[ivx]{1,4}|[a-e])[.)]\s"
    r"|(thus|hence|therefore|however|moreover|furthermore|additionally|consequently|"
    r"nevertheless|nonetheless|accordingly|similarly|likewise|instead|meanwhile|otherwise|"
    r"also|besides|then|finally|lastly|second(ly)?|third(ly)?|next|yet|but|and|or|so|"
    r"specifically|notably|importantly|in particular|in addition|in contrast|in turn|"
    r"as a result|as such|to this end|to do so|to address (this|these|it|them)|"
    r"for example|for instance|this|these|that|those|such|it|its|they|their|them|both|"
    r"the latter|the former)(?=[\s,;:]))",
    re.IGNORECASE,
)
_NAMES_ITSELF = re.compile(
    r"^(this|the present)\s+(paper|work|study|article|letter|report|survey|thesis|note)\b",
    re.IGNORECASE,
)
_CUES = re.compile(
    r"\b(we (propose|present|introduce|show|find|demonstrate)|our (method|approach|results)|"
    r"outperform|achiev|state-of-the-art|improv)",
    re.IGNORECASE,
)


def split_sentences(text: str) -> list[str]:
    protected = text.replace("\\%", "%")
    for i, abbr in enumerate(_ABBREVIATIONS):
        protected = protected.replace(abbr, f"\x00{i}\x00")
    parts = _SENTENCE_END.split(" ".join(protected.split()))
    restored = []
    for part in parts:
        for i, abbr in enumerate(_ABBREVIATIONS):
            part = part.replace(f"\x00{i}\x00", abbr)
        if part.strip():
            restored.append(part.strip())
    return restored


def shorten(text: str, limit: int = MAX_CHARS) -> str:
    """`text` cut to at most `limit` characters at a word boundary, with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:-–—(") + "…"


def leans_back(sentence: str) -> bool:
    """True when `sentence` opens by pointing back at the one before it."""
    return bool(_LEANS_BACK.match(sentence)) and not _NAMES_ITSELF.match(sentence)


def summarize(
    abstract: str,
    ai_summary: str | None = None,
    *,
    idf: Mapping[str, float] | Callable[[str], float] | None = None,
    sentences: int = 3,
    limit: int = MAX_CHARS,
) -> str:
    if ai_summary and ai_summary.strip():
        return shorten(ai_summary, limit)
    parts = split_sentences(abstract)
    if len(parts) <= 2:
        return shorten(" ".join(parts), limit)
    weight = idf if callable(idf) else (lambda t: idf.get(t, 1.0)) if idf else (lambda t: 1.0)

    def score(index: int) -> float:
        sentence = parts[index]
        if len(sentence) < MIN_SENTENCE_CHARS or _ENUMERATOR.match(sentence):
            return 0.0
        value = sum(weight(t) for t in set(tokenize(sentence)))
        if _CUES.search(sentence):
            value *= 1.3
        if index == 0:
            value *= 1.1
        return value

    ranked = sorted(range(len(parts)), key=score, reverse=True)
    chosen: list[int] = []
    length = 0
    for _ in range(sentences):  # a pass may admit a sentence whose antecedent just came in
        for index in ranked:
            if len(chosen) == sentences:
                break
            if index in chosen or (leans_back(parts[index]) and index - 1 not in chosen):
                continue
            if chosen and length + len(parts[index]) + 1 > limit:
                continue
            chosen.append(index)
            length += len(parts[index]) + 1
    return shorten(" ".join(parts[i] for i in sorted(chosen or [0])), limit)
