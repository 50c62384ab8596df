"""The product's spine, as a new user meets it: subscribe in Slack, run the digest, get a thread."""

from __future__ import annotations

from sqlmodel import Session

from storage import queries
from tests.e2e.conftest import DAY

CONTRASTIVE_CORE = {"2407.20001", "2407.20005", "2407.20015", "2407.20029", "2407.20069"}


def test_subscribe_then_digest_posts_one_thread_and_only_once(stack):
    stack.command("subscribe contrastive learning", wait="post")
    confirmations = stack.slack.posts("C0001")
    assert len(confirmations) == 1
    assert "<@U0001> subscribed this channel to *contrastive learning*" in confirmations[0].text

    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    posts = stack.slack.posts("C0001")[1:]
    parent, replies = posts[0], posts[1:]
    assert parent.thread_ts is None
    assert "contrastive learning" in parent.text
    assert replies, "no paper replies"
    assert all(r.thread_ts == parent.ts for r in replies)
    posted_ids = set()
    for r in replies:
        paper_id = r.text.rsplit("/", 1)[-1]
        assert f"https://huggingface.co/papers/{paper_id}" in r.text
        assert paper_id in str(r.blocks)
        posted_ids.add(paper_id)
    assert posted_ids >= CONTRASTIVE_CORE
    assert f"{len(replies)} new papers" in parent.text
    assert "posted" in out

    code, out, err = stack.cli("digest", "--date", DAY)
    assert code == 0, err
    assert len(stack.slack.posts("C0001")) == 1 + len(posts)
    assert stack.slack.duplicate_posts() == []
    with Session(stack.engine) as s:
        delivered = queries.channel_deliveries("T0001", "C0001", session=s)
        assert {d.paper_id for d in delivered} == posted_ids
        assert all(d.reply_ts for d in delivered)


def test_dry_run_with_topic_needs_no_slack(stack, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    code, out, err = stack.cli(
        "digest", "--date", DAY, "--dry-run", "--topic", "contrastive learning"
    )
    assert code == 0, err
    assert "Understanding the Behaviour of Contrastive Loss" in out
    assert "https://huggingface.co/papers/2407.20005" in out
    assert stack.slack.posts() == []
    code, out, err = stack.cli(
        "digest", "--date", DAY, "--dry-run", "--topic", "quantum error correction"
    )
    assert code == 0, err
    assert "nothing relevant today" in out
