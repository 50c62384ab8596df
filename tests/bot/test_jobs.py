"""Which days a run fetches: the look-back window, plus days a failed run missed."""

from __future__ import annotations

import datetime as dt

from bot.jobs import MAX_CATCH_UP_DAYS, days_to_fetch

TODAY = dt.date(2024, 7, 29)


def d(day: int) -> dt.date:
    return dt.date(2024, 7, day)


def test_fresh_install_fetches_only_the_window():
    assert days_to_fetch(TODAY, 3, set()) == [d(26), d(27), d(28), d(29)]


def test_missed_days_since_first_fetch_are_caught_up():
    assert days_to_fetch(TODAY, 1, {d(24), d(26)}) == [d(25), d(27), d(28), d(29)]


def test_catch_up_is_bounded():
    days = days_to_fetch(TODAY, 0, {dt.date(2024, 1, 1)})
    assert len(days) == MAX_CATCH_UP_DAYS + 1
    assert days[-1] == TODAY
