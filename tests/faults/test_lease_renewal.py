"""A digest run that outlasts its lease keeps its channels: nobody else can take them."""

from __future__ import annotations

import datetime as dt
import threading

from sqlmodel import Session

from storage import queries
from storage.models import Lease, utcnow
from tests.faults.conftest import (
    DAY,
    TEAM,
    assert_delivered_exactly_once,
    deliveries,
    leases,
    subscribe,
    wait_until,
)


def test_long_run_renews_its_channel_lease(stack):
    subscribe(stack, {"C0001": "contrastive learning"})
    stack.monkeypatch.setattr("bot.digest.run.LEASE_SECONDS", 1.5)
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


def test_a_channel_taken_over_mid_run_is_left_to_its_new_holder(stack, caplog):
    """If a run stalls past its lease and another process takes the channel, the first run
    stops posting there at its next renewal and the new holder finishes the digest."""
    subscribe(stack, {"C0001": "contrastive learning"})
    stack.monkeypatch.setattr("bot.digest.run.LEASE_SECONDS", 1.5)
    stack.monkeypatch.setenv("DIGEST_POST_INTERVAL", "0.4")
    name, stolen_at = f"digest:{TEAM}:C0001", []

    def take_over() -> None:  # as if the lease had expired and a rival took it
        wait_until(lambda: len(stack.slack.posts("C0001")) >= 2, 30, "2 posts")
        with Session(stack.engine) as session:
            lease = session.get(Lease, name)
            lease.owner, lease.expires_at = "rival-host:1:x", utcnow() + dt.timedelta(minutes=5)
            session.commit()
        stolen_at.append(len(stack.slack.posts("C0001")))

    thread = threading.Thread(target=take_over)
    thread.start()
    code, _, err = stack.cli("digest", "--date", DAY)
    thread.join(30)
    assert code == 0, err
    assert f"{name}: taken over by another process" in caplog.text
    planned = len(deliveries(stack)) + 1  # the parent and each paper
    posted = len(stack.slack.posts("C0001"))
    # Renewals come every LEASE_SECONDS / 3 = 0.5 s and posts every 0.4 s: at most the post
    # already answered at the takeover and two more precede the failed renewal.
    assert posted - stolen_at[0] <= 3 and posted < planned
    assert [lease.owner for lease in leases(stack)] == ["rival-host:1:x"]

    with Session(stack.engine) as session:  # the rival finishes (here: a later run does)
        session.delete(session.get(Lease, name))
        session.commit()
    code, _, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert_delivered_exactly_once(stack, ["C0001"])
