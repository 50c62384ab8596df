"""The in-process scheduler of `papers-bot run`: each channel's digest at its own local time.

APScheduler ticks every minute; each tick refreshes the paper index and runs `daily_job`,
which posts the channels whose digest is due (their time has passed on one of their days,
in their own time zone) and not yet done for that local day. The job runs once per channel
and local day across replicas, so ticks only ever finish what is missing; a channel whose
run failed is retried RETRY_MINUTES later for the rest of its day. A failing tick is logged
and never stops the scheduler. Started by `bot.server`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.archive.live import Archive
from bot.jobs import RETRY_MINUTES, daily_job
from bot.settings import Settings

logger = logging.getLogger(__name__)
TICK_SECONDS = 60


def start_scheduler(
    *,
    engine: Engine,
    client: WebClient,
    settings: Settings,
    archive: Archive,
    client_for: Callable[[str], WebClient | None] | None = None,
) -> BackgroundScheduler:
    def tick() -> None:
        try:
            archive.sync()  # papers another replica or `papers-bot fetch` stored
            daily_job(
                engine=engine,
                client=client,
                settings=settings,
                archive=archive,
                client_for=client_for,
            )
        except Exception:
            logger.exception("digest run failed; retrying in %d minutes", RETRY_MINUTES)

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        tick,
        IntervalTrigger(seconds=TICK_SECONDS),
        id="digests",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=TICK_SECONDS,
    )
    scheduler.start()
    logger.info(
        "digests run at each channel's own time (default %s %s, Monday to Friday)",
        f"{settings.digest_time:%H:%M}",
        settings.digest_timezone,
    )
    return scheduler
