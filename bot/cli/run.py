"""`papers-bot run`: serve Slack (Socket Mode or HTTP) and the daily job."""

from __future__ import annotations

import os
import sys

from bot.cli.common import UserError, open_archive, open_database
from bot.settings import Settings

TOKEN_HELP = {
    "SLACK_BOT_TOKEN": "Bot User OAuth Token (xoxb-…): api.slack.com/apps → your app → "
    "OAuth & Permissions, after 'Install to Workspace'",
    "SLACK_SIGNING_SECRET": "Signing Secret: api.slack.com/apps → your app → Basic Information "
    "→ App Credentials (HTTP mode only)",
    "SLACK_CLIENT_SECRET": "Client Secret: Basic Information → App Credentials (OAuth installs)",
    "SLACK_STATE_SECRET": "any long random string of yours; it signs the OAuth install's state",
    "SLACK_APP_TOKEN": "App-Level Token (xapp-…, scope connections:write): Basic Information → "
    "App-Level Tokens; set it to use Socket Mode (no public URL needed)",
}


def cmd_run(args, settings: Settings) -> int:
    port = args.port
    if port is None:
        raw = os.environ.get("PORT") or "3000"
        if not raw.isdigit():
            raise UserError(f"PORT={raw!r} must be a port number")
        port = int(raw)
    socket_mode = bool(settings.slack_app_token)
    missing = settings.missing_for_slack(http=not socket_mode)
    if missing:
        lines = ["papers-bot: cannot start, these settings are missing:"]
        lines += [f"  {name}: {TOKEN_HELP[name]}" for name in missing]
        if not socket_mode and not settings.oauth:
            lines.append(f"  (or SLACK_APP_TOKEN: {TOKEN_HELP['SLACK_APP_TOKEN']})")
        lines.append("Put them in the environment or in a .env file (see README.md).")
        lines.append(
            f"No Slack app yet? Preview a digest without one: {_program()} digest --dry-run "
            "--topic 'contrastive learning'"
        )
        print("\n".join(lines), file=sys.stderr)
        return 2
    from urllib.error import URLError

    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from bot.server import serve

    engine = open_database(settings)
    archive = open_archive(settings, engine)
    try:
        return serve(settings, archive, host=args.host, port=port, socket_mode=socket_mode)
    except (URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"cannot reach Slack at {settings.slack_api_url}: {reason}") from None
    except (SlackApiError, BoltError) as exc:
        raise UserError(f"Slack refused the bot token or app token: {exc}") from None


def _program() -> str:
    """How the user invoked papers-bot, so a suggested command can be pasted as is."""
    invoked = sys.argv[0] if sys.argv else ""
    if not invoked.endswith("papers-bot") or os.sep not in invoked:
        return "papers-bot"
    return os.path.relpath(invoked)
