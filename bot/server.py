"""`papers-bot run`: the long-running bot process.

Loads the paper index, starts the daily scheduler, then serves Slack either over Socket
Mode (when `SLACK_APP_TOKEN` is set; no public URL needed) or over HTTP with waitress, a
production WSGI server, taking slash commands, events and interactivity at
`POST /slack/events` and answering `GET /healthz` for load balancers; `bot.gate` checks each
request before Bolt sees it. Called by `bot.cli`.
"""

from __future__ import annotations

import logging
import signal
import time

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import Engine
from waitress.server import create_server

from bot.app import create_app, make_client
from bot.archive.live import Archive
from bot.gate import MAX_BODY, Gate
from bot.scheduler import start_scheduler
from bot.settings import Settings
from bot.workspaces import client_for

logger = logging.getLogger(__name__)


# waitress's limits, set on purpose (its defaults allow 1 GB bodies and let 100 idle
# connections lock everyone out for 2 minutes). Run it behind a buffering reverse proxy
# (README, "HTTP mode"); these hold even without one.
WAITRESS_OPTIONS = {
    "threads": 8,  # requests only ack here; the work runs on handlers.work's own pool
    "connection_limit": 1000,  # open connections before new ones wait in the backlog
    "asyncore_use_poll": True,  # select() stops at 1024 file descriptors
    "channel_timeout": 10,  # seconds a connection may idle (or send nothing) before closing
    "cleanup_interval": 2,  # seconds between checks for such connections
    "max_request_header_size": 64 * 1024,
    "max_request_body_size": MAX_BODY,  # larger bodies get 413 before they are read
    "ident": "papers-bot",
}


def slack_wsgi(app: App, settings: Settings, engine: Engine | None):
    """The WSGI application: Bolt's handler behind the gate (signature, size, replay)."""
    return Gate(SlackRequestHandler(app), secret=settings.slack_signing_secret or "", engine=engine)


def create_http_server(wsgi, *, host: str, port: int, **overrides):
    """A waitress server with `WAITRESS_OPTIONS` (tests pass port=0 and fewer threads)."""
    return create_server(wsgi, host=host, port=port, **{**WAITRESS_OPTIONS, **overrides})


def serve(settings: Settings, archive: Archive, *, host: str, port: int, socket_mode: bool) -> int:
    started = time.monotonic()
    engine = archive.engine
    papers = len(archive.index)
    client = make_client(settings)
    app = create_app(settings, client, engine=engine, archive=archive)
    scheduler = start_scheduler(
        engine=engine,
        client=client,
        settings=settings,
        archive=archive,
        client_for=client_for(settings, engine, client),
    )
    signal.signal(signal.SIGTERM, _stop)  # orchestrators stop with SIGTERM: shut down cleanly
    logger.info(
        "index ready: %d papers%s in %.1f s",
        papers,
        "" if archive.encoder is None else f", sentence encoder {archive.encoder.model_id}",
        time.monotonic() - started,
    )
    try:
        if socket_mode:
            logger.info("connecting to Slack over Socket Mode")
            SocketModeHandler(app, settings.slack_app_token).start()
        else:
            server = create_http_server(slack_wsgi(app, settings, engine), host=host, port=port)
            logger.info("listening on http://%s:%d/slack/events", host, port)
            if settings.oauth:
                logger.info("installs at http://%s:%d/slack/install", host, port)
            server.run()
    except SystemExit:
        pass  # SIGTERM in Socket Mode (waitress handles it itself)
    finally:
        scheduler.shutdown(wait=False)
        archive.flush(timeout=30)  # let a snapshot being written finish
        logger.info("stopped")
    return 0


def _stop(_signum, _frame) -> None:
    raise SystemExit(0)
