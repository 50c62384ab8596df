"""The index's vocabulary: stems and their int ids, and a doc's token stream as ids.

`Bm25Index` encodes each doc it adds with `Vocabulary.encode`; a snapshot brings its stems back
with `Vocabulary.load`. The tokenizer itself is `bot.matching.text`.
"""

from __future__ import annotations

from itertools import chain

from bot.matching.index.docs import Doc
from bot.matching.index.state import SEP
from bot.matching.text import joined_stem, word_stems
from bot.matching.text import words as text_words


class _WordIds(dict):
    """word -> vocabulary ids of its running stems, learning new words on first sight (and
    their extra stem, a joined compound form or a prefix's remainder, id + 1, into
    `vocabulary.joined_ids`)."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        super().__init__()
        self.vocabulary = vocabulary

    def __missing__(self, word: str) -> tuple[int, ...]:
        vocabulary = self.vocabulary
        ids = tuple(vocabulary.term_ids(word_stems(word).split()))
        self[word] = ids
        joined = joined_stem(word)  # a compound's joined form or a prefix's remainder
        if joined or "-" in word:
            vocabulary.joined_ids[word] = vocabulary.term_ids([joined])[0] + 1 if joined else 0
        return ids


class Vocabulary:
    """Stems numbered in order of first sight; ids are never reused or renumbered."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}  # stem -> id
        self.terms: list[str] = []  # id -> stem
        self.word_ids = _WordIds(self)  # tokenizer cache: word -> term ids
        self.joined_ids: dict[str, int] = {}  # word -> its extra stem's id + 1, or 0

    def get(self, term: str) -> int | None:
        """The id of a stem, None if never seen."""
        return self.ids.get(term)

    def load(self, terms: list[str]) -> None:
        """Take these stems (a snapshot's) as the vocabulary, numbered in their order."""
        self.terms = terms
        self.ids = {term: tid for tid, term in enumerate(terms)}

    def encode(self, doc: Doc) -> tuple[list[int], int]:
        """The doc's token stream as vocabulary ids, and the length of its title region.

        The same stems as `split_tokens` (running stems, SEP, joined compound forms, SEP,
        for the title, then the abstract), read through a per-word cache of vocabulary ids.
        """
        ids: list[int] = []
        title_len = 0
        word_ids, joined_ids = self.word_ids, self.joined_ids
        for text in (doc.title, doc.abstract):
            words = text_words(text)
            ids.extend(chain.from_iterable(map(word_ids.__getitem__, words)))
            ids.append(SEP)
            ids.extend(j - 1 for j in filter(None, map(joined_ids.get, words)))
            ids.append(SEP)
            title_len = title_len or len(ids)
        return ids, title_len

    def term_ids(self, tokens: list[str]) -> list[int]:
        """Vocabulary ids of stems, adding the new ones."""
        ids = list(map(self.ids.get, tokens))
        if None in ids:
            for i, tid in enumerate(ids):
                if tid is None:
                    tid = self.ids.setdefault(tokens[i], len(self.terms))
                    if tid == len(self.terms):
                        self.terms.append(tokens[i])
                    ids[i] = tid
        return ids  # type: ignore[return-value]
