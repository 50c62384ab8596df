"""The scheduler's clock: the daily job is due once DIGEST_TIME has passed in DIGEST_TIMEZONE."""

from __future__ import annotations

import datetime as dt

from bot.scheduler import due
from bot.settings import Settings


def test_due_follows_the_digest_timezone():
    berlin = Settings(digest_time=dt.time(9, 0), digest_timezone="Europe/Berlin")
    assert not due(berlin, dt.datetime(2024, 7, 29, 6, 59, tzinfo=dt.UTC))  # 08:59 CEST
    assert due(berlin, dt.datetime(2024, 7, 29, 7, 0, tzinfo=dt.UTC))  # 09:00 CEST
    assert not due(berlin, dt.datetime(2024, 1, 15, 7, 30, tzinfo=dt.UTC))  # 08:30 CET
