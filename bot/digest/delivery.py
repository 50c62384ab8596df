"""Posting digests to Slack: paced per channel, resumable, and honest about what arrived.

`deliver(outboxes, ...)` posts every channel's queue (parent first, then one threaded
reply per paper). Each channel keeps its own pace: its next message goes `interval`
seconds (Slack's pace is about one message per second per channel) after Slack answered
its last one, and after a 429 no sooner than Slack's `Retry-After`; the waiting is done
here, per channel, so one channel's wait or slow call never holds the others. A small
thread pool carries the calls; the client's own rate-limit retry handler is left out for
these calls (it would sleep inside a worker and send the retry with no regard for the
channel's pace). A message counts as delivered only once Slack answered `ok`; its `ts` is
written at once, so a killed run resumes where it stopped. A channel that fails for good
(not invited, archived, deleted, bad token) is set aside and reported while the others go
on; Slack being unreachable stops the run. Called by `bot.digest.run.run_digest`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

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


RATE_LIMIT_RETRIES = 5  # 429s in a row on one channel before its messages wait for the next run


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


def retry_after(exc: SlackApiError) -> float | None:
    """Seconds Slack asks to wait after a 429 (1 when it does not say); None for other errors."""
    if getattr(exc.response, "status_code", None) != 429:
        return None
    for name, value in (exc.response.headers or {}).items():
        if name.lower() == "retry-after":
            value = value[0] if isinstance(value, list) else value
            try:
                return max(0.0, float(value))
            except ValueError:
                break
    return 1.0


def _paced_client(client: WebClient) -> WebClient:
    """The same client without its rate-limit retry handler: `deliver` waits out 429s."""
    paced = copy.copy(client)
    paced.retry_handlers = [
        h for h in client.retry_handlers if not isinstance(h, RateLimitErrorRetryHandler)
    ]
    return paced


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
    paced = _paced_client(client)
    channels: dict[tuple[str, str], deque[Outbox]] = {}
    for box in outboxes:
        if box.posts:
            channels.setdefault((box.team_id, box.channel_id), deque()).append(box)
    ready_at = dict.fromkeys(channels, 0.0)  # monotonic time of each channel's next message
    limited = dict.fromkeys(channels, 0)  # 429s in a row
    flying: dict[Future, tuple[tuple[str, str], Outbox, Post]] = {}
    unreachable: BaseException | None = None

    def send(box: Outbox, post: Post) -> str:
        text, blocks = post.render()
        return post_message(
            paced, box.channel_id, text, blocks, None if post.is_parent else box.thread_ts
        )

    def set_aside(key: tuple[str, str]) -> None:
        """The channel's remaining messages wait for the next run."""
        report.left_pending += sum(len(box.posts) for box in channels[key])
        for box in channels[key]:
            box.posts.clear()

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        while True:
            for key in list(channels):  # drop what is done (or was cleared by a callback)
                while channels[key] and not channels[key][0].posts:
                    channels[key].popleft()
                if not channels[key] and all(k != key for k, _, _ in flying.values()):
                    del channels[key]
            busy = {key for key, _, _ in flying.values()}
            now = time.monotonic()
            if unreachable is None:
                for key, boxes in channels.items():
                    if key not in busy and boxes and ready_at[key] <= now:
                        box = boxes[0]
                        flying[pool.submit(send, box, box.posts[0])] = (key, box, box.posts[0])
                        busy.add(key)
            waiting = [ready_at[k] for k in channels if k not in busy and channels[k]]
            if not flying:
                if unreachable is not None or not waiting:
                    break
                time.sleep(max(0.0, min(waiting) - time.monotonic()))
                continue
            timeout = None
            if waiting and unreachable is None:
                timeout = max(0.0, min(waiting) - time.monotonic())
            done, _ = wait(flying, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                key, box, post = flying.pop(future)
                answered = time.monotonic()
                ready_at[key] = answered + interval
                try:
                    ts = future.result()
                except SlackApiError as exc:
                    error = str(exc.response.get("error") or "unknown_error")
                    pause = retry_after(exc)
                    if pause is not None and limited[key] < RATE_LIMIT_RETRIES:
                        limited[key] += 1
                        ready_at[key] = answered + max(pause, interval)
                        logger.info("%s: rate limited, next try in %.1f s", box.channel_id, pause)
                        continue  # the same message again, once the channel may post
                    limited[key] = 0
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
                        for other in channels[key]:
                            other.posts.clear()  # reported in failed_channels, retried when fixed
                        continue
                    report.retry_errors.add(error)
                    logger.warning(
                        "post to %s failed: %s; the next run retries", box.channel_id, error
                    )
                    if pause is not None:  # still limited after every retry
                        set_aside(key)
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
                limited[key] = 0
                if box.posts and box.posts[0] is post:
                    box.posts.popleft()
                if post.is_parent:
                    box.thread_ts = ts
                on_posted(box, post, ts)
    if unreachable is not None:
        raise SlackUnreachable(f"Slack did not answer: {unreachable}") from unreachable
    return report
