"""A digest run that outlasts its lease keeps its channels: nobody else can take them."""

from __future__ import annotations

import threading

from sqlmodel import Session

from storage import queries
from tests.faults.conftest import DAY, TEAM, subscribe


def test_long_run_renews_its_channel_lease(stack):
    subscribe(stack, {"C0001": "contrastive learning"})
    stack.monkeypatch.setattr("bot.digest.LEASE_SECONDS", 1.5)
    stack.monkeypatch.setenv("DIGEST_POST_INTERVAL", "0.4")  # ~10 messages: about 4 s
    taken, stop = [], threading.Event()

    def rival() -> None:
        with Session(stack.engine) as session:
            while not stop.wait(0.05):
                if stack.slack.posts("C0001") and queries.acquire_lease(
                    f"digest:{TEAM}:C0001", "rival-host:1:x", 60, session=session
                ):
                    taken.append(len(stack.slack.posts("C0001")))
                    return

    thread = threading.Thread(target=rival)
    thread.start()
    try:
        code, _, err = stack.cli("digest", "--date", DAY)
    finally:
        stop.set()
        thread.join(5)
    assert code == 0, err
    posts = len(stack.slack.posts("C0001"))
    assert posts >= 6
    # The rival may only win once the run released the lease, after the last post.
    assert taken in ([], [posts])
