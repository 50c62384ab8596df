"""What a value must satisfy before it may be stored: the limits come from the table definitions.

The one place that knows what the database accepts on both back ends (PostgreSQL is the
stricter: 32-bit INTEGER, enforced VARCHAR lengths, no NUL characters, valid UTF-8 only).
`paper_problem` is called by the paper sources on every item they hand on, so one bad item is
skipped and counted instead of failing a whole day; `fits` is called by the Slack listeners on
ids and names from requests before they touch the database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.sources import PaperRecord
from storage.models import Paper

INT_MAX = 2**31 - 1  # PostgreSQL INTEGER; SQLite would take 2**63 - 1
_PAPER = Paper.__table__.columns


def length_limit(column) -> int | None:
    """The VARCHAR length of a table column, or None for unbounded text."""
    return getattr(column.type, "length", None)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored on every back end, or None if it can."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def fits(value: object, column) -> bool:
    """True if `value` is a string the column takes (length and characters)."""
    if not isinstance(value, str):
        return False
    limit = length_limit(column)
    return (limit is None or len(value) <= limit) and text_problem(value) is None


def paper_problem(record: PaperRecord) -> str | None:
    """Why `record` cannot be stored as a `papers` row, or None if every field fits."""
    for name, value in dataclasses.asdict(record).items():
        column = _PAPER.get(name)
        if name == "authors":
            value = "\n".join(value)
        if value is None or column is None:
            continue
        if isinstance(value, bool):
            continue
        if isinstance(value, int) and not 0 <= value <= INT_MAX:
            return f"{name} {value} is out of range"
        if isinstance(value, str):
            limit = length_limit(column)
            if limit is not None and len(value) > limit:
                return f"{name} is {len(value)} characters long (at most {limit})"
            problem = text_problem(value)
            if problem:
                return f"{name} {problem}"
        if isinstance(value, dt.datetime) and not dt.MINYEAR < value.year < dt.MAXYEAR:
            return f"{name} {value.isoformat()} is out of range"
    return None
