"""The one settings object: every knob the operator can turn, read from the environment.

Values come from environment variables, falling back to a `.env` file in the working
directory (environment wins). `Settings.from_env()` validates everything up front so a
bad value fails at start-up with one clear line, never half-way through a digest.
Called by `bot.cli` (entry point) and by tests, which build `Settings(...)` directly.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_POSITIVE = (
    "+1,thumbsup,heart,fire,star,star2,tada,raised_hands,100,clap,rocket,eyes,bookmark,"
    "heart_eyes,white_check_mark,heavy_check_mark,pray,sparkles,muscle,ok_hand"
)
DEFAULT_NEGATIVE = "-1,thumbsdown,x,no_entry,no_entry_sign,poop,zzz,wastebasket,confused"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says how to fix it."""


def _emoji_set(raw: str) -> frozenset[str]:
    return frozenset(name.strip().strip(":").lower() for name in raw.split(",") if name.strip())


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_client_id: str | None = None  # set: OAuth installs in many workspaces (HTTP mode)
    slack_client_secret: str | None = None
    slack_state_secret: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    database_url: str = "sqlite:///papers.db"
    hf_api_url: str = "https://huggingface.co/api"
    digest_time: dt.time = dt.time(9, 0)
    digest_timezone: str = "UTC"
    digest_max_papers: int = 10
    digest_lookback_days: int = 3
    positive_reactions: frozenset[str] = field(default_factory=lambda: _emoji_set(DEFAULT_POSITIVE))
    negative_reactions: frozenset[str] = field(default_factory=lambda: _emoji_set(DEFAULT_NEGATIVE))
    post_interval: float = 1.0  # seconds between two messages to one channel
    log_level: str = "INFO"
    semantic_model: str = "auto"  # "auto" (the bundled encoder if installed), "off" or a folder
    arxiv_categories: tuple[str, ...] = ()  # empty: Hugging Face only
    arxiv_api_url: str = "https://oaipmh.arxiv.org/oai"
    arxiv_contact: str | None = None
    arxiv_interval: float = 3.0  # seconds between two OAI-PMH requests, as arXiv asks

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.digest_timezone)

    def today(self, now: dt.datetime | None = None) -> dt.date:
        """The current date in `DIGEST_TIMEZONE`."""
        return (now or dt.datetime.now(dt.UTC)).astimezone(self.tz).date()

    @property
    def oauth(self) -> bool:
        """Installed by OAuth in any number of workspaces, instead of one bot token."""
        return bool(self.slack_client_id)

    def missing_for_slack(self, *, http: bool) -> list[str]:
        """Names of the Slack settings that `run`/`digest` need but are not set."""
        if self.oauth:
            names = ("SLACK_SIGNING_SECRET", "SLACK_CLIENT_SECRET", "SLACK_STATE_SECRET")
            return [n for n in names if not getattr(self, n.lower())]
        missing = [] if self.slack_bot_token else ["SLACK_BOT_TOKEN"]
        if http and not self.slack_signing_secret:
            missing.append("SLACK_SIGNING_SECRET")
        return missing

    def __repr__(self) -> str:  # never print secrets
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("slack_") and f.name.endswith(("token", "secret")) and value:
                value = "***"
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        values: dict[str, str] = {}
        if env_file and Path(env_file).is_file():
            values.update(read_env_file(Path(env_file)))
        values.update(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = values.get(name, "").strip()
            return value or None

        kwargs: dict[str, object] = {
            "slack_bot_token": get("SLACK_BOT_TOKEN"),
            "slack_signing_secret": get("SLACK_SIGNING_SECRET"),
            "slack_app_token": get("SLACK_APP_TOKEN"),
            "slack_client_id": get("SLACK_CLIENT_ID"),
            "slack_client_secret": get("SLACK_CLIENT_SECRET"),
            "slack_state_secret": get("SLACK_STATE_SECRET"),
        }
        if url := get("SLACK_API_URL"):
            kwargs["slack_api_url"] = url if url.endswith("/") else url + "/"
        if url := get("DATABASE_URL"):
            kwargs["database_url"] = url
        if url := get("HF_API_URL"):
            kwargs["hf_api_url"] = url.rstrip("/")
        if raw := get("DIGEST_TIME"):
            kwargs["digest_time"] = _parse_time(raw)
        if raw := get("DIGEST_TIMEZONE"):
            try:
                ZoneInfo(raw)
            except (ZoneInfoNotFoundError, ValueError):
                raise SettingsError(
                    f"DIGEST_TIMEZONE={raw!r} is not an IANA time zone (e.g. Europe/Berlin)"
                ) from None
            kwargs["digest_timezone"] = raw
        kwargs["digest_max_papers"] = _parse_int(get("DIGEST_MAX_PAPERS"), "DIGEST_MAX_PAPERS", 10)
        kwargs["digest_lookback_days"] = _parse_int(
            get("DIGEST_LOOKBACK_DAYS"), "DIGEST_LOOKBACK_DAYS", 3, low=0, high=30
        )
        if raw := get("POSITIVE_REACTIONS"):
            kwargs["positive_reactions"] = _emoji_set(raw)
        if raw := get("NEGATIVE_REACTIONS"):
            kwargs["negative_reactions"] = _emoji_set(raw)
        if raw := get("DIGEST_POST_INTERVAL"):
            try:
                kwargs["post_interval"] = max(0.0, float(raw))
            except ValueError:
                raise SettingsError(f"DIGEST_POST_INTERVAL={raw!r} must be seconds") from None
        if raw := get("LOG_LEVEL"):
            kwargs["log_level"] = raw.upper()
        if raw := get("SEMANTIC_MODEL"):
            choice = raw.lower() if raw.lower() in ("auto", "off") else raw
            if choice not in ("auto", "off") and not Path(choice).is_dir():
                raise SettingsError(
                    f"SEMANTIC_MODEL={raw!r} must be auto, off or the folder of a "
                    "sentence-transformers model (all-MiniLM-L6-v2 layout)"
                )
            kwargs["semantic_model"] = choice
        kwargs.update(_arxiv_settings(get))
        token = kwargs["slack_bot_token"]
        if token and not str(token).startswith("xoxb-"):
            raise SettingsError("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        app_token = kwargs["slack_app_token"]
        if app_token and not str(app_token).startswith("xapp-"):
            raise SettingsError("SLACK_APP_TOKEN must be an app-level token starting with xapp-")
        if kwargs["slack_client_id"] and app_token:
            raise SettingsError(
                "SLACK_CLIENT_ID (OAuth installs) needs HTTP mode: unset SLACK_APP_TOKEN"
            )
        return cls(**kwargs)  # type: ignore[arg-type]


def _arxiv_settings(get) -> dict[str, object]:
    from bot.sources.arxiv import parse_categories

    values: dict[str, object] = {"arxiv_contact": get("ARXIV_CONTACT")}
    if raw := get("ARXIV_CATEGORIES"):
        try:
            values["arxiv_categories"] = parse_categories(raw)
        except ValueError as exc:
            raise SettingsError(f"ARXIV_CATEGORIES: {exc}; separate them with commas") from None
    if url := get("ARXIV_API_URL"):
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"ARXIV_API_URL={url!r} must be an http(s) URL")
        values["arxiv_api_url"] = url
    if raw := get("ARXIV_REQUEST_INTERVAL"):
        try:
            values["arxiv_interval"] = max(0.0, float(raw))
        except ValueError:
            raise SettingsError(f"ARXIV_REQUEST_INTERVAL={raw!r} must be seconds") from None
    return values


def _parse_time(raw: str) -> dt.time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise SettingsError(f"DIGEST_TIME={raw!r} must be HH:MM on a 24-hour clock, e.g. 09:00")
    return dt.time(int(match[1]), int(match[2]))


def _parse_int(raw: str | None, name: str, default: int, low: int = 1, high: int = 50) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} must be between {low} and {high}")
    return value


def read_env_file(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines (comments, blank lines, `export` and quotes allowed)."""
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
