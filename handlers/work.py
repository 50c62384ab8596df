"""A bounded pool for the slow part of each Slack request (database and Slack API calls).

Listeners call `ack()` in the request's own thread, which returns the HTTP answer to Slack
at once, and hand the rest to `Work.submit`. So an answer never waits behind other work
(Bolt would otherwise run `ack()` on the same small pool as the work). The work answers
through `bounded(respond)` and the app's own client, each call with an overall deadline.
When `workers` tasks run and `waiting` more are queued, `submit` refuses and the listener
tells the user to try again: nothing piles up to run minutes later. Created by
`bot.app.create_app`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bot.deadlines import DeadlineWebhookClient

logger = logging.getLogger(__name__)

RESPOND_SECONDS = 15.0  # overall, for one answer to a response_url
DB_WAIT = 10.0  # seconds a listener's statement waits for a database lock (not 30)
BUSY = "I'm busy right now and did nothing with that; please try again in a minute."


class Work:
    def __init__(self, workers: int = 8, waiting: int = 32) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-work")
        self._slots = threading.BoundedSemaphore(workers + waiting)

    def submit(self, task: Callable[[], None], what: str) -> bool:
        """Run `task` on the pool; False (and nothing runs) when the pool is full."""
        if not self._slots.acquire(blocking=False):
            logger.warning("too busy: refused %s", what)
            return False

        def run() -> None:
            try:
                task()
            except OSError as exc:  # Slack unreachable, even for the "sorry" answer
                logger.warning("%s: could not answer: %s", what, exc)
            except Exception:
                logger.exception("%s failed", what)
            finally:
                self._slots.release()

        self._pool.submit(run)
        return True


def bounded(respond):
    """Bolt's `respond`, but each answer ends within `RESPOND_SECONDS` (a stalled Slack cannot
    hold a worker); the same when there is no response_url to post to."""
    url = getattr(respond, "response_url", None)
    if not url:
        return respond
    client = DeadlineWebhookClient(url=url, timeout=RESPOND_SECONDS)

    def send(**message):
        return client.send_dict({k: v for k, v in message.items() if v is not None})

    return send
