"""The tokenizer shared by papers and topics: text in, Snowball stems out.

Called by `bot.matching.ranking` for every paper that enters the BM25 index (title and abstract)
and for every channel topic and search query, so that both sides of a match are cut the
same way (`bot.digest.summary` uses it too). Pure functions over strings; the only state is
the word -> stem cache (and each stem's shortest surface word, for explanations). What
`tokenize` does, step by step, and its speed: docs/ranking.md.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

import Stemmer

__all__ = [
    "PREFIXES",
    "STOPWORDS",
    "joined_stem",
    "prefix_stem",
    "remember_surface",
    "split_tokens",
    "stem_word",
    "surface_of",
    "tokenize",
    "tokenize_with_surface",
    "word_stems",
    "words",
]

_FUNCTION_WORDS = """
a about above after again against all almost along already also although always am among
amongst an and another any anyone anything are around as at be became because become becomes
been before being below besides between beyond both but by can cannot could did do does doing
done down due during each either else enough etc even ever every except far for from further
had has have having he her here hers herself him himself his how however i if in inside into
is it its itself just least less let like likely many may me might more moreover most mostly
much must my myself neither no nor not now of off often on once one only onto or other others
otherwise our ours ourselves out over own per perhaps quite rather really same several shall
she should since so some such than that the their theirs them themselves then there thereby
therefore these they this those though through throughout thus to too toward towards under
unless until up upon us very via was we well were what whatever when whenever where whereas
whether which while who whom whose why will with within without would yet you your yours
yourself yourselves hence eg ie al et vs versus namely whereby wherein therein
across beside despite among amid alongside regarding instead
"""

# Boilerplate of abstracts: says nothing about what the paper is about. Inflections are
# listed because stopwords are checked before stemming.
_BOILERPLATE = """
propose proposes proposed proposing proposal paper papers show shows showed shown showing
novel present presents presented presenting introduce introduces introduced introducing
demonstrate demonstrates demonstrated demonstrating achieve achieves achieved achieving
outperform outperforms outperformed outperforming existing extensive extensively
significant significantly substantially remarkable remarkably respectively furthermore
additionally specifically particular particularly notably importantly moreover new recent
recently previous previously prior various numerous article herein stateoftheart sota
wellknown wellestablished superior superiority effectively efficiently comprehensive
comprehensively leveraging leverage leverages leveraged utilize utilizes utilized utilizing
using use used uses based also able thereby whilst conduct conducted conducts
"""

STOPWORDS: frozenset[str] = frozenset((_FUNCTION_WORDS + _BOILERPLATE).split())

# Prefixes whose closed compounds also yield their remainder (step 6 in docs/ranking.md).
# Longest first, so "neuro" wins over a shorter prefix of the same word.
PREFIXES: tuple[str, ...] = tuple(
    sorted(
        (
            *("bio", "neuro", "immuno", "cardio", "histo", "radio", "multi", "semi", "hyper"),
            *("micro", "macro", "nano", "pseudo", "cross", "self", "intra", "meta", "pre"),
            *("post", "sub", "auto", "ultra", "omni", "mono", "poly", "quasi", "counter"),
        ),
        key=len,
        reverse=True,
    )
)
_MIN_REMAINDER = 4  # letters
_MIN_REMAINDER_STEM = 5  # letters

_PREFIX_RE = re.compile("|".join(PREFIXES))  # tried in order: the longest prefix first
# No cache inside the stemmer: `_CACHE` below keeps every word's stem, and the stemmer's own
# (10,000 words by default) costs more than it saves on words that come only once.
_STEMMER = Stemmer.Stemmer("english", 0)
_CACHE: dict[str, str] = {}  # word -> stem ("" if dropped); compound -> part stems, spaced
_JOINED: dict[str, str] = {}  # word -> its extra stem: a compound's joined form, or the
# remainder after a prefix (absent or "" if none)
_SURFACE: dict[str, str] = {}  # stem -> shortest word seen with that stem
_WORD_RE = re.compile(r"[^\W_]+(?:-[^\W_]+)*")
_URL_RE = re.compile(r"(?:https?://|www\.)\S+")
_WORD_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789-"
_ASCII_WORD_CHARS = bytes(c if c in _WORD_BYTES else 32 for c in range(256))
_HYPHENS = str.maketrans({"‐": "-", "‑": "-", "‒": "-", "–": "-", "­": None})
_VOWELS = frozenset("aeiouy")


def _fold(text: str) -> str:
    """URLs dropped, NFKC, unicode hyphens to "-", accents dropped, lowercase."""
    if "://" in text or "www." in text:
        text = _URL_RE.sub(" ", text)
    if text.isascii():  # already NFKC, nothing to fold
        return text.lower()
    text = unicodedata.normalize("NFKC", text).translate(_HYPHENS)
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _words(text: str) -> list[str]:
    """Lowercase words (hyphenated ones whole) of a text; ASCII takes a fast bytes path."""
    folded = _fold(text)
    if folded.isascii():  # same words as _WORD_RE, about 3x faster
        spaced = folded.encode("ascii").translate(_ASCII_WORD_CHARS).decode("ascii")
        return spaced.replace("--", " ").split()
    return _WORD_RE.findall(folded)


def _stem_uncached(word: str) -> str:
    """The stem of one lowercase word, or "" when the word is dropped."""
    if len(word) < 2 or word in STOPWORDS or word.isdigit():
        return ""
    if len(word) >= 3 and word[-1] == "s" and word[-2] != "s" and not _VOWELS & set(word[:-1]):
        return word[:-1]  # acronym plural: llms -> llm
    stem = _STEMMER.stemWord(word)
    if len(stem) >= 4 and stem[-1] == "i":
        stem = stem[:-1]  # noisy/noisi -> nois (as noise); depends on the stem only
    return stem


def _prefix_remainder(word: str) -> str:
    """The remainder of a closed compound with a prefix of `PREFIXES` ("biomedical" ->
    "medical"), or "" when the word has none or the remainder fails the guards."""
    if len(word) < 3 + _MIN_REMAINDER or not word.isalpha():
        return ""
    found = _PREFIX_RE.match(word)
    if found is None:
        return ""
    rest = word[found.end() :]
    return rest if len(rest) >= _MIN_REMAINDER and rest not in STOPWORDS else ""


def stem_word(word: str) -> str:
    """The cached stem of one lowercase word ("" for stopwords, numbers, single letters)."""
    stem = _CACHE.get(word)
    if stem is None:
        stem = _stem_uncached(word)
        rest = _prefix_remainder(word) if stem else ""
        if rest:  # before the cache entry: a word in the cache has its extra stem known
            extra = stem_word(rest)
            if len(extra) >= _MIN_REMAINDER_STEM and extra != stem:
                _JOINED[word] = extra
        _CACHE[word] = stem
        if stem:
            known = _SURFACE.get(stem)
            if known is None or len(word) < len(known):
                _SURFACE[stem] = word
    return stem


def prefix_stem(word: str) -> str:
    """The stem of a prefixed word's remainder ("biomedical" -> "medic"), or ""."""
    if "-" in word:
        return ""
    stem_word(word)
    return _JOINED.get(word, "")


def surface_of(stem: str) -> str:
    """A readable word for a stem: the shortest word seen that has it, else the stem."""
    return _SURFACE.get(stem, stem)


def _iter_tokens(text: str, compounds: bool) -> Iterator[tuple[str, str]]:
    """(stem, surface word) pairs of a text, as `split_tokens` cuts it; joined forms last."""
    joined: list[tuple[str, str]] = []
    for word in _words(text):
        parts = [part for part in word.split("-") if part]
        whole = "".join(parts)
        if len(parts) > 1 and whole in STOPWORDS:
            continue
        for part in parts:
            stem = stem_word(part)
            if stem:
                yield stem, part
        if compounds and len(parts) > 1:
            stem = stem_word(whole)
            if stem:
                joined.append((stem, "-".join(parts)))
        elif compounds and len(parts) == 1:
            stem = prefix_stem(word)
            if stem:
                joined.append((stem, word))
    yield from joined


def _cache_compound(word: str) -> str:
    """Cache a word with hyphens: its part stems, space-joined, and its joined stem."""
    parts = [part for part in word.split("-") if part]
    whole = "".join(parts)
    if len(parts) < 2 or whole in STOPWORDS:  # "-word", "word-", "state-of-the-art"
        _CACHE[word] = stem_word(whole) if len(parts) == 1 else ""
        _JOINED[word] = ""
    else:
        _CACHE[word] = " ".join(filter(None, (stem_word(part) for part in parts)))
        _JOINED[word] = stem_word(whole)
    return _CACHE[word]


def words(text: str) -> list[str]:
    """The text's words as `tokenize` cuts them (lowercase, accents dropped, hyphenated
    compounds whole), before stopwords and stemming."""
    return _words(text)


def word_stems(word: str) -> str:
    """The running stems of one word of `words(text)`, space-separated ("" for a stopword).

    `split_tokens(text)` is, for running stems, the concatenation of these over the text's
    words; the index caches them per word.
    """
    stems = _CACHE.get(word)
    if stems is None:
        stems = _cache_compound(word) if "-" in word else stem_word(word)
    return stems


def joined_stem(word: str) -> str:
    """The extra stem of a word of `words(text)`: a hyphenated word's joined form
    ("vision-language" -> "visionlanguag"), a prefixed word's remainder ("biomedical" ->
    "medic"), else ""; `split_tokens` appends these after the running stems."""
    if "-" not in word:
        return prefix_stem(word)
    if word not in _JOINED:
        _cache_compound(word)
    return _JOINED[word]


def remember_surface(stem: str, word: str) -> None:
    """Record a readable word for a stem (the shortest wins), e.g. from an index snapshot."""
    known = _SURFACE.get(stem)
    if known is None or len(word) < len(known):
        _SURFACE[stem] = word


def split_tokens(text: str) -> tuple[list[str], list[str]]:
    """(running stems in order, extra stems: joined compounds and prefix remainders, in
    word order): `tokenize` is their concatenation."""
    words = _words(text)
    stems = list(map(_CACHE.get, words))  # a compound's entry is its part stems, spaced
    if None in stems:
        for i, stem in enumerate(stems):
            if stem is None:
                word = words[i]
                stems[i] = _cache_compound(word) if "-" in word else stem_word(word)
    running = " ".join(stems).split()  # also drops the "" of stopwords
    return running, list(filter(None, map(_JOINED.get, words)))  # compounds, prefixed words


def tokenize(text: str, *, compounds: bool = True) -> list[str]:
    """The stems of a text, in order; joined compound forms appended unless compounds=False."""
    running, joined = split_tokens(text)
    if compounds:
        running.extend(joined)
    return running


def tokenize_with_surface(text: str, *, compounds: bool = True) -> list[tuple[str, str]]:
    """Like `tokenize`, as (stem, lowercase surface word) pairs; for short texts (topics)."""
    return list(_iter_tokens(text, compounds))
