"""`papers-bot run`: the long-running bot process.

Loads the paper index, starts the daily scheduler, then serves Slack either over Socket
Mode (when `SLACK_APP_TOKEN` is set; no public URL needed) or over HTTP with waitress, a
production WSGI server, taking slash commands, events and interactivity at
`POST /slack/events` and answering `GET /healthz` for load balancers. Called by `bot.cli`.
"""

from __future__ import annotations

import logging
import signal
import time

from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.app import create_app, make_client
from bot.archive.live import Archive
from bot.scheduler import start_scheduler
from bot.settings import Settings
from bot.workspaces import client_for

logger = logging.getLogger(__name__)


def health_wrapped(slack_wsgi):
    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/healthz" and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return slack_wsgi(environ, start_response)

    return app


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
            from waitress import serve as waitress_serve

            logger.info("listening on http://%s:%d/slack/events", host, port)
            if settings.oauth:
                logger.info("installs at http://%s:%d/slack/install", host, port)
            waitress_serve(
                health_wrapped(SlackRequestHandler(app)),
                host=host,
                port=port,
                threads=8,
                ident="papers-bot",
            )
    except SystemExit:
        pass  # SIGTERM in Socket Mode (waitress handles it itself)
    finally:
        scheduler.shutdown(wait=False)
        archive.flush(timeout=30)  # let a snapshot being written finish
        logger.info("stopped")
    return 0


def _stop(_signum, _frame) -> None:
    raise SystemExit(0)
