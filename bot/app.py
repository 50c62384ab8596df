"""The app factory: one Bolt `App` wired to the handlers, the database and the index.

`create_app(settings, client=None, engine=None, archive=None)` lets tests inject a
`WebClient` pointed at a loopback fake Slack, the way bolt-python tests itself. With
`SLACK_CLIENT_ID` the app serves Bolt's OAuth install (`/slack/install`,
`/slack/oauth_redirect`) and authorizes each request with its workspace's stored token.
`make_client(settings)` builds the Web API client every part of the bot shares: the
base URL comes from `SLACK_API_URL`, and rate limits (429 + Retry-After) are waited
out. Called by `bot.cli` and tests.
"""

from __future__ import annotations

import re

from slack_bolt import App
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import Engine

from bot.archive.live import Archive
from bot.deadlines import DeadlineWebClient
from bot.settings import Settings
from handlers import actions, commands, events, home, installs, settings_modal
from handlers.context import Deps
from storage.db import ensure_schema, open_engine


def make_client(settings: Settings, *, timeout: int = 15, token: str | None = None) -> WebClient:
    """A client with `token`, or SLACK_BOT_TOKEN (none with OAuth: each workspace has its own)."""
    client = DeadlineWebClient(  # `timeout` bounds each call as a whole, not each read
        token=token or settings.slack_bot_token, base_url=settings.slack_api_url, timeout=timeout
    )
    # Only 429s are retried here: a dropped connection may come after Slack accepted a
    # message, and a blind retry would post it twice; the next run resumes instead.
    client.retry_handlers = [RateLimitErrorRetryHandler(max_retry_count=5)]
    return client


def _oauth_settings(settings: Settings, engine: Engine) -> OAuthSettings:
    """Bolt's OAuth flow, its installations and states in the bot's own database; Bolt
    calls oauth.v2.access with the app's client, so it goes to SLACK_API_URL too."""
    from bot.workspaces import BOT_SCOPES, SignedStates, installations

    return OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES),
        installation_store=installations(settings, engine),
        state_store=SignedStates(settings.slack_state_secret or "", engine=engine),
        install_path="/slack/install",
        redirect_uri_path="/slack/oauth_redirect",
    )


def create_app(
    settings: Settings,
    client: WebClient | None = None,
    *,
    engine: Engine | None = None,
    archive: Archive | None = None,
) -> App:
    if engine is None:
        engine = open_engine(settings.database_url)
        ensure_schema(engine)
    deps = Deps(settings=settings, engine=engine, archive=archive or Archive(engine))
    app = App(
        client=client or make_client(settings),
        signing_secret=settings.slack_signing_secret or "",
        token_verification_enabled=not settings.oauth,
        oauth_settings=_oauth_settings(settings, engine) if settings.oauth else None,
        # Listeners ack() in the request's thread and hand the work to `deps.work`, so
        # the HTTP response never waits for a busy pool; answers go via response_url.
        process_before_response=True,
    )
    installs.register(app, deps)
    commands.register(app, deps)
    events.register(app, deps)
    actions.register(app, deps)
    settings_modal.register(app, deps)
    home.register(app, deps)
    # Keep these last: Bolt runs the first listener that matches. Other buttons and event
    # types (old messages, app settings) are acknowledged quietly instead of a 404 and a
    # warning per request.
    app.action(re.compile(".*"))(_ignore)
    app.event(re.compile(".*"))(_ignore)
    return app


def _ignore(ack) -> None:
    ack()
