"""The settings object: defaults, .env files, and one clear error per bad value."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.settings import Settings, SettingsError


def test_defaults_match_the_operator_contract(tmp_path):
    s = Settings.from_env({}, env_file=tmp_path / "none")
    assert s.database_url == "sqlite:///papers.db"
    assert s.slack_api_url == "https://slack.com/api/"
    assert s.hf_api_url == "https://huggingface.co/api"
    assert (s.digest_time, s.digest_timezone, s.digest_max_papers) == (dt.time(9), "UTC", 10)


def test_env_file_is_read_and_environment_wins(tmp_path):
    env = tmp_path / ".env"
    env.write_text('# comment\nexport SLACK_BOT_TOKEN="xoxb-file"\nDIGEST_MAX_PAPERS=5\n')
    s = Settings.from_env({"DIGEST_MAX_PAPERS": "7", "SLACK_API_URL": "http://x/api"}, env)
    assert s.slack_bot_token == "xoxb-file"
    assert s.digest_max_papers == 7
    assert s.slack_api_url == "http://x/api/"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DIGEST_TIME", "25:00", "HH:MM"),
        ("DIGEST_TIMEZONE", "Mars/Olympus", "IANA"),
        ("DIGEST_MAX_PAPERS", "ten", "whole number"),
        ("DIGEST_MAX_PAPERS", "0", "between 1 and 50"),
        ("SLACK_BOT_TOKEN", "xoxp-user", "xoxb-"),
        ("SLACK_APP_TOKEN", "xoxb-wrong", "xapp-"),
        ("SEMANTIC_MODEL", "/no/such/folder", "auto, off or the folder"),
    ],
)
def test_bad_values_fail_fast_naming_the_setting(tmp_path, name, value, message):
    with pytest.raises(SettingsError, match=message) as err:
        Settings.from_env({name: value}, env_file=tmp_path / "none")
    assert name in str(err.value)


def test_semantic_model_choices(tmp_path):
    assert Settings.from_env({}, env_file=tmp_path / "none").semantic_model == "auto"
    assert Settings.from_env({"SEMANTIC_MODEL": "OFF"}, env_file=None).semantic_model == "off"
    folder = str(tmp_path)
    assert Settings.from_env({"SEMANTIC_MODEL": folder}, env_file=None).semantic_model == folder


def test_secrets_never_in_repr():
    s = Settings(slack_bot_token="xoxb-secret", slack_signing_secret="shh")
    assert "xoxb-secret" not in repr(s) and "shh" not in repr(s)


def test_today_in_digest_timezone():
    s = Settings(digest_timezone="Pacific/Auckland")
    now = dt.datetime(2024, 7, 29, 20, 0, tzinfo=dt.UTC)
    assert s.today(now) == dt.date(2024, 7, 30)


def test_missing_slack_settings_are_named():
    assert Settings().missing_for_slack(http=True) == ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"]
    assert Settings(slack_bot_token="xoxb-1").missing_for_slack(http=False) == []


def test_arxiv_settings():
    default = Settings.from_env({}, env_file=None)
    assert default.arxiv_categories == () and default.arxiv_interval == 3.0
    assert default.arxiv_api_url == "https://oaipmh.arxiv.org/oai"
    settings = Settings.from_env(
        {"ARXIV_CATEGORIES": "cs.CL, cs.RO eess.AS", "ARXIV_CONTACT": "ops@example.org"},
        env_file=None,
    )
    assert settings.arxiv_categories == ("cs.CL", "cs.RO", "eess.AS")
    assert settings.arxiv_contact == "ops@example.org"
    with pytest.raises(SettingsError, match="ARXIV_CATEGORIES: 'robots!' is not an arXiv"):
        Settings.from_env({"ARXIV_CATEGORIES": "cs.RO,robots!"}, env_file=None)
    with pytest.raises(SettingsError, match="ARXIV_API_URL"):
        Settings.from_env({"ARXIV_API_URL": "oaipmh.arxiv.org/oai"}, env_file=None)
