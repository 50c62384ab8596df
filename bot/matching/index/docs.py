"""Papers as the index sees them: `Doc`, the fingerprint of its text, folded author names.

`bot.archive.live` turns stored papers into `Doc`s; `Bm25Index` keeps their metadata per row and
uses `content_hash` to notice changed texts (on `add` and against a snapshot).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Doc:
    """A paper as the index sees it."""

    id: str
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    upvotes: int = 0


def fold_name(name: str) -> str:
    """Lowercase, accent-free form of an author name, for substring matching."""
    decomposed = unicodedata.normalize("NFKD", name)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


_ASCII_SPACES = re.compile(r"[ \t\r\x0b\x0c\x1c-\x1f]+")
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")


def fold_names(names: Sequence[str]) -> str:
    """`fold_name` of each name, "\n"-joined (a name holds no newline once folded, so a
    substring test on the whole is a test on each name)."""
    joined = "\n".join(names)
    if joined.count("\n") != max(len(names) - 1, 0) or not joined.isascii():
        return "\n".join(fold_name(name.replace("\n", " ")) for name in names)
    joined = joined.lower()
    if (  # nothing to collapse or strip: the common case
        joined.replace("\n", "").isprintable()
        and "  " not in joined
        and " \n" not in joined
        and "\n " not in joined
        and joined[:1] != " "
        and joined[-1:] != " "
    ):
        return joined
    spaced = _ASCII_SPACES.sub(" ", joined)
    return _SPACE_AROUND_NEWLINE.sub("\n", spaced).strip(" ")


def content_hash(title: str, abstract: str) -> int:
    """A 64-bit fingerprint of a doc's text (CRC-32 of the title, then of the abstract): a
    snapshot reuses the tokens of a doc whose fingerprint is unchanged. Not cryptographic;
    it only has to notice edits, and CRC-32 catches every small one."""
    high = zlib.crc32(title.encode("utf-8", "surrogatepass"))
    return high << 32 | zlib.crc32(abstract.encode("utf-8", "surrogatepass"))


class TextColumn:
    """A string per row, held compactly: a snapshot's strings stay in its mapped bytes until
    asked for; later and changed ones are kept as strings."""

    def __init__(self, blob: np.ndarray | None = None, ends: np.ndarray | None = None) -> None:
        self._blob = blob if blob is not None else np.zeros(0, np.uint8)
        self._ends = ends if ends is not None else np.zeros(0, np.int64)
        self._saved = len(self._ends)
        self._changed: dict[int, str] = {}
        self._more: list[str] = []

    def __len__(self) -> int:
        return self._saved + len(self._more)

    def __getitem__(self, row: int) -> str:
        if row >= self._saved:
            return self._more[row - self._saved]
        if row < 0:
            raise IndexError(row)
        changed = self._changed.get(row)
        if changed is not None:
            return changed
        start = int(self._ends[row - 1]) if row else 0
        return bytes(self._blob[start : int(self._ends[row])]).decode("utf-8", "surrogatepass")

    def __setitem__(self, row: int, text: str) -> None:
        if row >= self._saved:
            self._more[row - self._saved] = text
        elif text != self[row]:
            self._changed[row] = text

    def append(self, text: str) -> None:
        self._more.append(text)

    def select(self, rows: np.ndarray) -> TextColumn:
        """A column of these rows' strings only (rows ascending), packed as a snapshot's."""
        blob, ends = self.packed(len(self))
        lens = np.diff(ends, prepend=0)
        kept = np.zeros(len(ends), dtype=bool)
        kept[rows] = True
        return TextColumn(blob[np.repeat(kept, lens)], np.cumsum(lens[rows]))

    def truncate(self, n: int) -> None:
        """Drop the strings from row n on (rows appended since the snapshot only)."""
        del self._more[max(n - self._saved, 0) :]

    def packed(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(UTF-8 bytes, end of each) of the first n strings."""
        pieces, ends = self.pieces(n)
        return (pieces[0] if len(pieces) == 1 else np.concatenate(pieces)), ends

    def pieces(self, n: int) -> tuple[list[np.ndarray], np.ndarray]:
        """`packed`, its bytes in pieces that follow one another (a snapshot writes them one
        after the other): runs of unchanged saved strings as views of the saved bytes, the
        changed and later strings encoded, so that nothing large is copied."""
        kept = min(n, self._saved)
        lens = np.diff(self._ends[:kept], prepend=0)
        pieces: list[np.ndarray] = []
        run = 0  # first saved row not yet in a piece
        changed = list(self._changed)  # one C call: `add` may set rows meanwhile
        for row in sorted(r for r in changed if r < kept):
            pieces.append(self._blob[self._start(run) : self._start(row)])
            encoded = self._changed[row].encode("utf-8", "surrogatepass")
            pieces.append(np.frombuffer(encoded, np.uint8))
            lens[row] = len(encoded)
            run = row + 1
        pieces.append(self._blob[self._start(run) : self._start(kept)])
        encoded = [self[row].encode("utf-8", "surrogatepass") for row in range(kept, n)]
        pieces.append(np.frombuffer(b"".join(encoded), np.uint8))
        lens = np.concatenate([lens, np.array([len(e) for e in encoded], np.int64)])
        return pieces, np.cumsum(lens, dtype=np.int64)

    def _start(self, row: int) -> int:
        """Where a saved row's bytes start (`row` = the saved count: where they end)."""
        return int(self._ends[row - 1]) if row else 0


class DocTable:
    """Per row of the index: the doc's id, folded author names, upvotes and title. No score
    depends on these, so `Bm25Index.add` updates them in place."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.rows: dict[str, int] = {}
        self.authors = TextColumn()  # folded names, "\n"-joined
        self.upvotes: list[int] = []
        self.titles = TextColumn()

    @classmethod
    def saved(
        cls, ids: list[str], authors: TextColumn, upvotes: list[int], titles: TextColumn
    ) -> DocTable:
        """The table a snapshot saved."""
        table = cls()
        table.ids, table.authors, table.upvotes, table.titles = ids, authors, upvotes, titles
        table.rows = {doc_id: row for row, doc_id in enumerate(ids)}
        return table

    def new_row(self, doc_id: str, *, publish: bool = True) -> int:
        """A row for the doc, after the others; `publish=False`: its id still leads to its
        current row (`rows` is updated by the caller once the new row has its state)."""
        row = len(self.ids)
        if publish:
            self.rows[doc_id] = row
        self.ids.append(doc_id)
        self.upvotes.append(0)
        self.authors.append("")
        self.titles.append("")
        return row

    def select(self, rows: np.ndarray) -> DocTable:
        """A table of these rows only, numbered in their order from 0."""
        return DocTable.saved(
            [self.ids[r] for r in rows.tolist()],
            self.authors.select(rows),
            [self.upvotes[r] for r in rows.tolist()],
            self.titles.select(rows),
        )

    def truncate(self, n: int) -> None:
        """Forget the rows from n on: those an `add` that failed had made."""
        for doc_id in self.ids[n:]:
            if self.rows.get(doc_id, -1) >= n:
                del self.rows[doc_id]
        del self.ids[n:], self.upvotes[n:]
        self.authors.truncate(n)
        self.titles.truncate(n)

    def set_metadata(self, row: int, doc: Doc) -> None:
        self.authors[row] = fold_names(doc.authors)
        self.upvotes[row] = int(doc.upvotes)
        self.titles[row] = doc.title
