"""Posting digests to Slack: paced, resumable, and honest about what arrived.

`deliver(outboxes, ...)` posts every channel's queue (parent first, then one threaded
reply per paper) in waves: each wave sends at most one message to each channel, waves to
the same channel are at least `interval` seconds apart (Slack's pace is about one message
per second per channel), and a small thread pool spreads a wave across channels. A
message counts as delivered only once Slack answered `ok`; its `ts` is written at once,
so a killed run resumes where it stopped. A channel that fails for good (not invited,
archived, deleted, bad token) is set aside and reported while the others go on; Slack
being unreachable stops the run. Called by `bot.digest.planning.run_digest`.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

logger = logging.getLogger(__name__)

# Errors that say this channel cannot take messages until someone fixes something.
CHANNEL_ERRORS = {
    "not_in_channel": "invite the bot with `/invite @papers-bot`",
    "channel_not_found": "the channel was deleted, or the bot cannot see it (private channel?)",
    "is_archived": "the channel is archived; unarchive it or unsubscribe",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid for this workspace",
    "not_authed": "SLACK_BOT_TOKEN is missing",
    "account_inactive": "the bot token was deactivated; reinstall the app",
    "token_revoked": "the bot token was revoked; reinstall the app",
    "missing_scope": "the app lacks a scope; reinstall it from app.yaml",
    "restricted_action": "a workspace admin restricts posting in this channel",
    "restricted_action_read_only_channel": "the channel is read-only",
    "restricted_action_thread_only_channel": "the channel only allows thread replies",
    "restricted_action_non_threadable_channel": "the channel does not allow threads",
    "team_access_not_granted": "the app is not allowed in this workspace",
    "ekm_access_denied": "administrators suspended posting in this channel",
}


class SlackUnreachable(RuntimeError):
    """Slack did not answer (network error or timeout); nothing more was marked delivered."""


@dataclass
class Post:
    """One message to send: a digest's parent, or a reply in its thread."""

    key: object  # what the caller records the result against
    render: Callable[[], tuple[str, list[dict]]]
    is_parent: bool = False  # replies go in the thread of the outbox's parent


@dataclass
class Outbox:
    team_id: str
    channel_id: str
    thread_ts: str | None = None  # known parent ts (resumed digests)
    key: object = None  # what the caller knows this outbox by
    posts: deque[Post] = field(default_factory=deque)


@dataclass
class DeliveryReport:
    failed_channels: dict[str, str] = field(default_factory=dict)  # channel -> error
    left_pending: int = 0  # messages a transient error held back (failed channels aside)
    retry_errors: set[str] = field(default_factory=set)  # other Slack errors, for next run


def post_message(
    client: WebClient, channel: str, text: str, blocks: list[dict], thread_ts: str | None
) -> str:
    """chat.postMessage; returns the message ts. Falls back to plain text on invalid_blocks."""
    kwargs = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
    if thread_ts:
        kwargs["thread_ts"] = thread_ts
    try:
        response = client.chat_postMessage(blocks=blocks, **kwargs)
    except SlackApiError as exc:
        if exc.response.get("error") not in (
            "invalid_blocks",
            "msg_too_long",
            "msg_blocks_too_long",
        ):
            raise
        response = client.chat_postMessage(**kwargs)
    return response["ts"]


def deliver(
    outboxes: list[Outbox],
    client: WebClient,
    *,
    on_posted: Callable[[Outbox, Post, str], None],
    on_channel_error: Callable[[Outbox, str], None],
    interval: float = 1.0,
    workers: int = 8,
) -> DeliveryReport:
    """Post every outbox's queue; callbacks record results (they run in this thread)."""
    report = DeliveryReport()
    active = [box for box in outboxes if box.posts]

    def send(box: Outbox, post: Post) -> str:
        text, blocks = post.render()
        return post_message(
            client, box.channel_id, text, blocks, None if post.is_parent else box.thread_ts
        )

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while active:
            started = time.monotonic()
            futures = {}
            busy: set[str] = set()
            for box in active:
                if box.channel_id in busy:
                    continue  # one message per channel per wave
                busy.add(box.channel_id)
                post = box.posts[0]
                futures[pool.submit(send, box, post)] = (box, post)
            unreachable: BaseException | None = None
            for future in as_completed(futures):
                box, post = futures[future]
                try:
                    ts = future.result()
                except SlackApiError as exc:
                    error = str(exc.response.get("error") or "unknown_error")
                    if error in CHANNEL_ERRORS:
                        report.failed_channels[box.channel_id] = error
                        logger.warning(
                            "channel %s/%s failed: %s (%s)",
                            box.team_id,
                            box.channel_id,
                            error,
                            CHANNEL_ERRORS[error],
                        )
                        on_channel_error(box, error)
                    else:
                        report.retry_errors.add(error)
                        logger.warning(
                            "post to %s failed: %s; the next run retries", box.channel_id, error
                        )
                    if error in CHANNEL_ERRORS:
                        box.posts.clear()  # reported in failed_channels, retried when fixed
                    elif post.is_parent:
                        report.left_pending += len(box.posts)
                        box.posts.clear()
                    else:
                        report.left_pending += 1
                        box.posts.popleft()
                    continue
                except (URLError, TimeoutError, ConnectionError, OSError) as exc:
                    unreachable = exc
                    continue
                box.posts.popleft()
                if post.is_parent:
                    box.thread_ts = ts
                on_posted(box, post, ts)
            if unreachable is not None:
                raise SlackUnreachable(f"Slack did not answer: {unreachable}") from unreachable
            active = [box for box in active if box.posts]
            if active and interval > 0:
                time.sleep(max(0.0, interval - (time.monotonic() - started)))
    return report
