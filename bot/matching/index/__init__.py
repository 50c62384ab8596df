"""The BM25 index over every stored paper (`Bm25Index`) and what its callers need with it.

`bot.archive.live` builds and extends it, `bot.matching.ranking` and `bot.matching.feedback`
score with it. The package's modules, one job each: `docs` (papers as the index sees them),
`vocabulary` (stems and ids), `state` (the arrays), `postings` (building them), `scoring`
(BM25), `pairs` (adjacent words), `snapshot` (the saved token streams), `bm25` (the index).
"""

from bot.matching.index.bm25 import Bm25Index
from bot.matching.index.docs import Doc, content_hash, fold_name, fold_names
from bot.matching.index.scoring import BLOCK_MAX_ROWS, K1, TITLE_WEIGHT, B
from bot.matching.index.snapshot import SNAPSHOT_FORMAT

__all__ = [
    "BLOCK_MAX_ROWS",
    "K1",
    "SNAPSHOT_FORMAT",
    "TITLE_WEIGHT",
    "B",
    "Bm25Index",
    "Doc",
    "content_hash",
    "fold_name",
    "fold_names",
]
