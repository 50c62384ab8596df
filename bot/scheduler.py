"""The in-process scheduler of `papers-bot run`: the daily job at DIGEST_TIME.

APScheduler fires `daily_job` at `DIGEST_TIME` in `DIGEST_TIMEZONE`, and again every
`RETRY_MINUTES` for the rest of the day while today's run has not completed (Hugging
Face down, Slack down): the job is idempotent and runs once per day across replicas,
so the retries only ever finish what is missing. A failing run is logged and never stops
the scheduler. Started by `bot.cli`.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.archive.live import Archive
from bot.jobs import daily_job
from bot.settings import Settings

logger = logging.getLogger(__name__)
RETRY_MINUTES = 20


def due(settings: Settings, now: dt.datetime) -> bool:
    """True once today's DIGEST_TIME has passed in DIGEST_TIMEZONE."""
    return now.astimezone(settings.tz).time() >= settings.digest_time


def start_scheduler(
    *, engine: Engine, client: WebClient, settings: Settings, archive: Archive
) -> BackgroundScheduler:
    def tick() -> None:
        try:
            archive.sync()  # papers another replica or `papers-bot fetch` stored
        except Exception:
            logger.exception("could not refresh the paper index")
        if not due(settings, dt.datetime.now(dt.UTC)):
            return
        try:
            daily_job(engine=engine, client=client, settings=settings, archive=archive)
        except Exception:
            logger.exception("daily job failed; retrying in %d minutes", RETRY_MINUTES)

    scheduler = BackgroundScheduler(timezone=settings.tz)
    at = settings.digest_time
    common = {"func": tick, "max_instances": 1, "coalesce": True, "misfire_grace_time": 3600}
    scheduler.add_job(id="daily", trigger=CronTrigger(hour=at.hour, minute=at.minute), **common)
    scheduler.add_job(id="catch-up", trigger=IntervalTrigger(minutes=RETRY_MINUTES), **common)
    scheduler.start()
    logger.info("daily digest scheduled at %s %s", at.strftime("%H:%M"), settings.digest_timezone)
    return scheduler
