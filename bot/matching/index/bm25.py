"""`Bm25Index`: the BM25 index over every stored paper, joining the package's parts.

Built and extended by `bot.archive.live`, scored by `bot.matching.ranking` and
`bot.matching.feedback`. Layout, snapshot and figures: docs/index.md.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np

from bot.matching.index import postings, scoring
from bot.matching.index.docs import Doc, DocTable
from bot.matching.index.pair_counts import counted_df
from bot.matching.index.pairs import PairCache, saturation, scan_pair
from bot.matching.index.scoring import K1, TITLE_WEIGHT, B, Block, Bm25
from bot.matching.index.snapshot import STATE_FIELDS, read_snapshot, restore, write_snapshot
from bot.matching.index.state import State, empty_state
from bot.matching.index.vocabulary import Vocabulary
from bot.matching.text import remember_surface

COMPACT_ROWS = 50_000  # `compacted` gathers the streams of this many rows at a time
FEW_ROWS_SHARE = 16  # rows below 1/16 of the index: word pairs looked up in those rows only


class Bm25Index:
    """In-memory BM25 over title + abstract, with a positional index for phrases and pairs.

    All arrays live in one immutable `State` that `add` replaces, so searches running in
    other threads always see a consistent index. `save(path)` and
    `build(docs, snapshot=path)` keep the token streams across restarts.
    """

    def __init__(
        self,
        *,
        k1: float = K1,
        b: float = B,
        title_weight: int = TITLE_WEIGHT,
        idf: Literal["lucene", "okapi"] = "lucene",
    ) -> None:
        if idf not in ("lucene", "okapi"):
            raise ValueError("idf must be 'lucene' or 'okapi'")
        self._bm25 = Bm25(k1, b, title_weight, idf)
        self._vocab = Vocabulary()
        self._docs = DocTable()
        self._state = empty_state()
        self._tokens = postings.TokenBuffer()
        self._cache_lock = threading.Lock()
        self._pairs = PairCache()
        self._block: Block | None = None
        self.reused = 0  # docs whose tokens the last `build` took from a snapshot
        self.extra: dict[str, Any] = {}  # what the snapshot `open` read was saved with
        self.revision = 0  # counts changes of tokens or statistics (not of metadata)

    @property
    def k1(self) -> float:
        return self._bm25.k1

    @property
    def b(self) -> float:
        return self._bm25.b

    @property
    def title_weight(self) -> int:
        return self._bm25.title_weight

    @property
    def idf_kind(self) -> str:
        return self._bm25.idf_kind

    @classmethod
    def build(
        cls, docs: Iterable[Doc], *, snapshot: str | Path | None = None, **options: Any
    ) -> Bm25Index:
        """A new index over `docs` (options as for the constructor).

        With `snapshot` (a file written by `save`), docs whose id and text match it reuse
        its tokens; a missing, unreadable or outdated snapshot is ignored.
        """
        index = cls(**options)
        saved = read_snapshot(snapshot, index.title_weight) if snapshot else None
        if saved is None:
            index.add(docs)
            return index
        buffer, offsets, title_lens, hashes, index.reused, in_place = restore(
            saved, docs, index._vocab, index._docs
        )
        n_terms = len(index._vocab.terms)
        if not in_place:  # changed or removed papers: derived again from the streams
            index._state = postings.derive(
                index._bm25, n_terms, buffer, offsets, title_lens, hashes
            )
            return index
        kept = set(STATE_FIELDS) - {"buffer", "offsets", "title_lens", "hashes"}
        arrays = {name: saved[name] for name in kept}  # those of the snapshot's rows
        n_saved = len(saved["doc_lens"])
        index._state = postings.with_statistics(
            index._bm25,
            n_terms,
            buffer=buffer[: saved["offsets"][-1]],
            offsets=offsets[: n_saved + 1],
            title_lens=title_lens[:n_saved],
            hashes=hashes[:n_saved],
            **arrays,
        )
        if len(offsets) - 1 > n_saved:  # new papers after the snapshot's: added
            index._state = postings.derive(
                index._bm25,
                n_terms,
                buffer,
                offsets,
                title_lens,
                hashes,
                first_row=n_saved,
                previous=index._state,
            )
        return index

    def compacted(self) -> Bm25Index:
        """The same docs in a new index without the retired rows (rows numbered afresh),
        derived from the token streams it holds: no text is read or tokenized again. The
        two share the vocabulary, so this index must not be used after."""
        state = self._state
        live = self.live_rows()
        index = Bm25Index(
            k1=self.k1, b=self.b, title_weight=self.title_weight, idf=self._bm25.idf_kind
        )
        index._vocab = self._vocab
        index._docs = self._docs.select(live)
        offsets = np.zeros(len(live) + 1, np.int64)
        np.cumsum(state.offsets[live + 1] - state.offsets[live], out=offsets[1:])
        buffer = np.empty(int(offsets[-1]), np.int32)
        for low in range(0, len(live), COMPACT_ROWS):  # a chunk of streams at a time
            high = min(low + COMPACT_ROWS, len(live))
            buffer[offsets[low] : offsets[high]] = state.streams_of(live[low:high])[0]
        index._state = postings.derive(
            index._bm25,
            len(self._vocab.terms),
            buffer,
            offsets,
            state.title_lens[live],
            state.hashes[live],
        )
        index.reused = self.reused
        index.extra = self.extra
        return index

    def with_idf(self, idf: Literal["lucene", "okapi"]) -> Bm25Index:
        """A read-only view of the same docs scored with another IDF (for comparisons: it
        shares the token data, so never `add` to it)."""
        view = object.__new__(Bm25Index)
        view.__dict__.update(self.__dict__)
        view._bm25 = dataclasses.replace(self._bm25, idf_kind=idf)
        state = self._state
        view._state = dataclasses.replace(
            state,
            idf=view._bm25.idf_of(state.df, state.n_live),
            unseen_idf=float(view._bm25.idf_of(np.zeros(1), state.n_live)[0]),
        )
        view._cache_lock = threading.Lock()
        view._pairs = PairCache()
        view._block = None
        return view

    @classmethod
    def open(cls, snapshot: str | Path, **options: Any) -> Bm25Index | None:
        """The index a snapshot holds, as it was saved (its arrays mapped from their files,
        not read: pages are read as they are used); None if the snapshot is missing,
        unreadable or outdated. `extra` has what `save` was given."""
        index = cls(**options)
        saved = read_snapshot(snapshot, index.title_weight)
        if saved is None:
            return None
        index._vocab.load(saved["terms"])
        for stem, word in zip(saved["terms"], saved["surfaces"], strict=True):
            remember_surface(stem, word)  # the words replies show, as if tokenized here
        index._docs = DocTable.saved(
            saved["ids"], saved["authors"], saved["upvotes"].tolist(), saved["titles"]
        )
        index._state = postings.with_statistics(
            index._bm25,
            len(saved["terms"]),
            **{name: saved[name] for name in STATE_FIELDS},
        )
        index._tokens.adopt(saved["buffer.store"], index._state.buffer)
        index.reused = index._state.n_live
        index.extra = saved["extra"]
        return index

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> None:
        """Write the index's arrays, docs and vocabulary, and `extra` (JSON, given back by
        `open`), to `path` (a link to a folder of .npy files), atomically: a reader never
        sees a half-written snapshot. Raises OSError if it cannot be written."""
        state = self._state
        terms = list(self._vocab.terms)
        write_snapshot(path, state, self._docs, terms, self.title_weight, extra)

    # ---- ingest

    def add(self, docs: Iterable[Doc]) -> None:
        """Add docs: IDF and lengths always cover every doc in the index.

        A doc whose id is present replaces it: with the same tokens only its metadata
        changes (same row); with other tokens (a new version's abstract) it moves to a new
        row like a new doc, and its old row is retired (`State.retired`: it keeps its
        entries but scores 0 and counts in no statistic), so nothing is rebuilt. New docs
        are merged into the tail postings and positions. A full build (a first start)
        leaves retired rows out.
        """
        state = self._state
        try:
            batch = postings.Batch.of(docs, state, self._vocab, self._docs)
            if batch is None:
                return
            if not batch.lens:  # texts changed, tokens did not
                self._state = dataclasses.replace(state, hashes=batch.hashes)
                self.revision += 1
                return
            n_terms = len(self._vocab.terms)
            new = postings.append(self._bm25, n_terms, state, batch, self._tokens)
        except BaseException:  # the docs' stream or the derivation failed: no row stays
            self._docs.truncate(state.n_docs)
            raise
        with self._cache_lock:
            if batch.retiring:  # cached pairs hold the retired rows' hits
                self._pairs.clear()
            else:  # the cached pairs gain the new rows' hits before the new state shows
                self._pairs.extend(new, batch.first_new, self.title_weight)
            self._block = None
            self._state = new
            self._docs.rows.update(batch.moved)  # after the state: the old rows meanwhile
            self.revision += 1

    # ---- lookups

    def __len__(self) -> int:
        """The docs held (retired rows left out)."""
        return self._state.n_live

    @property
    def retired(self) -> int:
        """Rows retired since the last full build (docs whose text changed, kept as rows)."""
        state = self._state
        return state.n_docs - state.n_live

    def live_rows(self) -> np.ndarray:
        """The rows of the docs held, ascending (every row but the retired ones)."""
        return np.flatnonzero(~self._state.retired)

    def __contains__(self, doc_id: object) -> bool:
        row = self._docs.rows.get(doc_id)  # type: ignore[call-overload]
        return row is not None and row < self._state.n_docs

    @property
    def ids(self) -> list[str]:
        """Doc ids in row order (the order of `scores`); a retired row keeps its doc's id
        (the doc's row is the last one with it; `row` gives it)."""
        return self._docs.ids[: self._state.n_docs]

    def row(self, doc_id: str) -> int:
        """The row of a doc id in `scores` (KeyError if absent)."""
        return self._docs.rows[doc_id]

    def rows_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        """Sorted, distinct rows of the indexed ids among `doc_ids` (others are skipped)."""
        ids = list(doc_ids)
        n_docs = self._state.n_docs
        rows = np.fromiter(
            map(self._docs.rows.get, ids, repeat(-1)), dtype=np.int64, count=len(ids)
        )
        rows = np.sort(rows[(rows >= 0) & (rows < n_docs)])
        return rows[np.r_[True, rows[1:] != rows[:-1]]] if len(rows) else rows

    def ids_at(self, rows: Iterable[int]) -> list[str]:
        """The doc ids of these rows."""
        ids = self._docs.ids
        return [ids[r] for r in rows]

    def rows_with_term(self, term: str) -> np.ndarray:
        """Sorted rows of the docs containing the stem (none for a stem never seen);
        retired rows left out."""
        state = self._state
        tid = self._vocab.get(term)
        if tid is None or tid >= len(state.idf):
            return np.empty(0, dtype=np.int64)
        return _live(state, state.rows_with(tid))

    def folded_authors(self, row: int) -> str:
        """The row's author names, lowercased, accent-free and "\n"-joined."""
        return self._docs.authors[row]

    def title(self, doc_id: str) -> str:
        return self._docs.titles[self._docs.rows[doc_id]]

    def text_hash(self, doc_id: str) -> int:
        """The fingerprint (`content_hash`) of the doc's indexed text."""
        return int(self._state.hashes[self._docs.rows[doc_id]])

    def upvotes(self, doc_id: str) -> int:
        return self._docs.upvotes[self._docs.rows[doc_id]]

    def authors(self, doc_id: str) -> tuple[str, ...]:
        """The doc's author names, lowercased and without accents."""
        names = self._docs.authors[self._docs.rows[doc_id]]
        return tuple(names.split("\n")) if names else ()

    def idf(self, term: str) -> float:
        """IDF of a stem; a stem never seen gets the largest IDF (df = 0)."""
        return scoring.idf_in(self._vocab, self._state, term)

    def tokens(self, doc_id: str) -> list[str]:
        """The doc's stream of stems: title, compounds, abstract, compounds ("" after each)."""
        terms = self._vocab.terms
        return [terms[t] if t >= 0 else "" for t in self._state.stream(self._docs.rows[doc_id])]

    def doc_terms(self, doc_id: str) -> Counter[str]:
        """The doc's stems with their BM25 term frequency (title tokens counted 3x)."""
        tids, tf = self._bm25.doc_tf(self._state, self._docs.rows[doc_id])
        return Counter({self._vocab.terms[t]: int(f) for t, f in zip(tids, tf, strict=True)})

    def has_phrase(self, doc_id: str, phrase: Sequence[str]) -> bool:
        """Whether the stems occur contiguously (stopwords aside) in title or abstract."""
        ids = [self._vocab.get(term) for term in phrase]
        if not ids or None in ids:
            return False
        return self._state.has_phrase(self._docs.rows[doc_id], ids)  # type: ignore[arg-type]

    def phrase_rows(self, phrase: Sequence[str], rows: np.ndarray | None = None) -> np.ndarray:
        """Rows (ascending) where the stems occur contiguously: `has_phrase` for every row,
        or for these rows (ascending) only; retired rows left out."""
        state = self._state
        found = [self._vocab.get(term) for term in phrase]
        ids = [tid for tid in found if tid is not None and tid < len(state.df)]
        if not ids or len(ids) < len(found):
            return np.zeros(0, np.int64)
        return _live(
            state,
            state.phrase_rows(ids, None if rows is None else np.unique(np.asarray(rows, np.int64))),
        )

    # ---- scoring

    def scores(self, query: Mapping[str, float]) -> np.ndarray:
        """BM25 score of every doc (row order) for a weighted bag of stems."""
        state = self._state
        return self._bm25.scores(state, scoring.columns(self._vocab, state, query))

    def scores_at(self, query: Mapping[str, float], rows: np.ndarray) -> np.ndarray:
        """`scores(query)[rows]` for ascending rows, without scoring every doc."""
        state = self._state
        cols = scoring.columns(self._vocab, state, query)
        return scoring.scores_at(self._bm25, state, cols, np.asarray(rows, np.int64))

    def top(
        self, query: Mapping[str, float], depth: int, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The rows (ascending) with the `depth` best positive scores among `rows`
        (ascending; None: every doc), and their scores; ties at the cut go to the lower
        rows. Common words are looked up for the docs that can still make it only
        (`scoring.top_scores`)."""
        state = self._state
        cols = scoring.columns(self._vocab, state, query)
        given = None if rows is None else np.asarray(rows, np.int64)
        return scoring.top_scores(self._bm25, state, cols, depth, given)

    def coverage_at(self, query: Mapping[str, float], rows: np.ndarray) -> np.ndarray:
        """`coverage(query)[rows]` for ascending rows, without a pass over every doc."""
        state = self._state
        total = scoring.idf_mass(self._vocab, state, query)
        cols = scoring.columns(self._vocab, state, query)
        return scoring.coverage_at(state, cols, total, np.asarray(rows, np.int64))

    def coverage(self, query: Mapping[str, float]) -> np.ndarray:
        """Per doc, the share of the query's IDF mass (x |weight|) whose stems it contains."""
        state = self._state
        total = scoring.idf_mass(self._vocab, state, query)
        return scoring.coverage(state, scoring.columns(self._vocab, state, query), total)

    def best_score(self, query: Mapping[str, float]) -> float:
        """The bound of a query's score: every stem saturated, sum |w_t| idf_t (k1 + 1)."""
        return scoring.idf_mass(self._vocab, self._state, query) * (self.k1 + 1)

    def term_weights(self, doc_id: str, terms: Iterable[str]) -> dict[str, float]:
        """The BM25 weight each of these stems has in the doc (absent ones omitted)."""
        state = self._state
        row = self._docs.rows[doc_id]
        n_terms = len(state.idf)
        wanted = {
            t: tid for t in terms if (tid := self._vocab.get(t)) is not None and tid < n_terms
        }
        if not wanted:
            return {}
        tids = np.fromiter(wanted.values(), dtype=np.int64, count=len(wanted))
        weights, tf = self._bm25.term_weights(state, row, tids)
        return {t: float(w) for t, w, f in zip(wanted, weights, tf, strict=True) if f > 0}

    # ---- candidate blocks (a digest run scores thousands of topics on the same papers)

    def block(self, rows: np.ndarray) -> tuple[Block, np.ndarray]:
        """BM25 weights of some rows (ascending), and the position of each row in them.

        The last block is kept while the index is unchanged; a request it does not cover
        gets a block over both, so a digest run's channels (the same recent papers, each
        minus what it already got) share one block.
        """
        state = self._state
        with self._cache_lock:
            cached = self._block
        made, at = scoring.covering_block(self._bm25, state, np.asarray(rows, np.int64), cached)
        if made is not cached:
            with self._cache_lock:
                if self._state is state:
                    self._block = made
        return made, at

    def block_scores(
        self, block: Block, at: np.ndarray, query: Mapping[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(`scores`, `coverage`) of the query for the block's rows at positions `at`."""
        state = block.state
        cols = scoring.columns(self._vocab, state, query)
        total = scoring.idf_mass(self._vocab, state, query)
        return scoring.block_scores(block, at, cols, total)

    # ---- word pairs (proximity)

    def _pair_postings(self, pair: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
        """(rows ascending, BM25 tf) of the docs where the two stems are adjacent, in either
        order: from the positional index, cached (bounded), and extended by `add`."""
        a, b = (self._vocab.get(term) for term in pair)
        if a is None or b is None or a == b:
            return np.zeros(0, np.int64), np.zeros(0)
        key = (min(a, b), max(a, b))
        with self._cache_lock:
            found = self._pairs.get(key)
            if found is not None:
                return found
            state = self._state
        found = scan_pair(state, key, state.position_parts, self.title_weight)
        if state.n_live < state.n_docs and len(found[0]):  # retired rows count nowhere
            live = ~state.retired[found[0]]
            found = (found[0][live], found[1][live])
        with self._cache_lock:
            if self._state is state:
                self._pairs.put(key, found)
        return found

    def pair_df(self, pair: tuple[str, str]) -> int:
        """How many docs have the two stems adjacent (either order): counted ahead for
        common words (`pair_counts`), else from the pair's postings."""
        a, b = (self._vocab.get(term) for term in pair)
        if a is not None and b is not None and a != b:
            counted = counted_df(self._state, a, b)
            if counted is not None:
                return counted
        return len(self._pair_postings(pair)[0])

    def pair_idf(self, pair: tuple[str, str]) -> float:
        """IDF of the adjacent pair (same formula as for words)."""
        df = np.array([float(self.pair_df(pair))])
        return float(self._bm25.idf_of(df, len(self))[0])

    def pair_saturation(
        self, pairs: Sequence[tuple[str, str]], rows: Sequence[int], *, one_off: bool = False
    ) -> np.ndarray:
        """BM25 saturation in [0, 1) of each adjacent pair in each row: shape (pairs, rows).

        `one_off` (a search): over rows under 1/FEW_ROWS_SHARE of the index, each pair is
        looked up in those rows' positions only, and nothing is cached, so that a query's
        first run does not scan the whole archive for pairs it may never use again. Else
        (digests, whose channels share their pairs) each pair's postings over the whole
        archive are scanned once and cached.
        """
        state = self._state
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(pairs), len(rows)))
        if not len(rows):
            return out
        within = one_off and len(rows) * FEW_ROWS_SHARE < state.n_docs
        for number, pair in enumerate(pairs):
            hits = self._pair_hits_in(state, pair, rows) if within else self._pair_postings(pair)
            if len(hits[0]):
                out[number] = saturation(hits, rows, state.norm[rows])
        return out

    def _pair_hits_in(
        self, state: State, pair: tuple[str, str], rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The pair's postings within `rows` only: the two words' positions in those rows,
        looked up in each other."""
        a, b = (self._vocab.get(term) for term in pair)
        if a is None or b is None or a == b:
            return np.zeros(0, np.int64), np.zeros(0)
        key = (min(a, b), max(a, b))
        unique = rows if np.all(rows[1:] > rows[:-1]) else np.unique(rows)

        def positions_of(tid: int) -> list[np.ndarray]:
            return [state.positions_within(tid, unique)]

        return scan_pair(state, key, positions_of, self.title_weight)


def _live(state: State, rows: np.ndarray) -> np.ndarray:
    """The rows (ascending) that are not retired (a look at these rows only)."""
    live = ~state.retired[rows]
    return rows if live.all() else rows[live]
