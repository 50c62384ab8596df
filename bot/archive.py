"""The in-memory BM25 index over every stored paper, shared by digests and search.

Built once from storage (IDF statistics come from the whole archive, not one day's
batch) and extended in place when the fetch job stores new papers, so a long-running bot
never rebuilds it from scratch. Thread-safe: Slack listeners search while the scheduler
ingests. Created by `bot.cli` and `bot.app`, used by `bot.digest` and `bot.search`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sqlalchemy import Engine
from sqlmodel import Session

from bot.ranking import Bm25Index, Doc
from storage import queries


def doc_from_row(paper_id: str, title: str, abstract: str, authors: str, upvotes: int) -> Doc:
    names = tuple(a for a in (authors or "").split("\n") if a)
    return Doc(id=paper_id, title=title, abstract=abstract, authors=names, upvotes=upvotes or 0)


class Archive:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._index: Bm25Index | None = None
        self._lock = threading.RLock()

    @property
    def index(self) -> Bm25Index:
        with self._lock:
            if self._index is None:
                with Session(self._engine) as session:
                    rows = queries.iter_index_rows(session=session)
                    self._index = Bm25Index.build([doc_from_row(*row) for row in rows])
            return self._index

    def add(self, docs: Iterable[Doc]) -> None:
        """Index newly stored papers (a known id is replaced); a no-op before the first load."""
        docs = list(docs)
        with self._lock:
            if self._index is not None and docs:
                self._index.add(docs)
