"""Block Kit builders: every message papers-bot shows, as plain dicts plus a text fallback.

Each builder returns `(text, blocks)`; `text` is the notification and screen-reader
fallback Slack asks for. Everything user- or source-supplied goes through `escape`, so a
topic or an abstract can never ping `@channel` or forge a link. Called by `bot.digest.planning`,
`bot.archive.search` and `handlers.*`; tested with plain asserts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

Message = tuple[str, list[dict]]

HELP_BY_MEANING = (
    "; a paper that mentions them only briefly still comes if its abstract is close in meaning"
)
HELP_TOPIC_SYNTAX = (
    "*Topic syntax*\n"
    "• plain words match anywhere in title or abstract: `contrastive learning`{meaning}\n"
    '• `"quoted phrase"` must appear as written: `"sparse autoencoders"`\n'
    "• `-word` excludes papers that mention it: `diffusion -audio`\n"
    '• `author:name` only papers by that author: `author:hinton` or `author:"Yann LeCun"`\n'
    "• a list means any of its members: `RLHF and reward models`, `image, video generation`; "
    "single words joined by “and” stay one subject (`vision and language`)\n"
    "• `X for Y` or `X in Y` keeps papers on X that mention Y: "
    "`hallucination in vision-language models`\n"
    "• acronyms match their expansions both ways, as papers define them: `RAG`\n"
    "Refused: more than 5 alternatives, a word both asked for and excluded "
    "(`learning -learning`), an `author:` without a name. `/papers list` shows how I read "
    "each topic"
)


def escape(text: str) -> str:
    """Make text safe for mrkdwn: no mentions, no broadcasts, no links it did not ask for."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


@dataclass(frozen=True)
class PaperView:
    """What a reply shows about one paper; plain data, built by the caller."""

    id: str
    title: str
    authors: Sequence[str]
    summary: str
    topic: str | None = None
    terms: Sequence[str] = ()
    github_repo: str | None = None
    project_page: str | None = None
    upvotes: int = 0
    boosted: bool = False
    semantic: bool = False  # let in on closeness in meaning
    listed_on: dt.date | None = None
    reading: str = ""  # how the bot read the topic, when not as written


SEMANTIC_NOTE = "the words appear briefly, but the abstract is close in meaning to the topic"


def paper_url(paper_id: str) -> str:
    return f"https://huggingface.co/papers/{paper_id}"


def _authors(names: Sequence[str]) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:3])
    return shown + (" et al." if len(names) > 3 else "")


def _links(paper: PaperView) -> str:
    links = [
        f"<{paper_url(paper.id)}|Hugging Face>",
        f"<https://arxiv.org/abs/{paper.id}|arXiv>",
        f"<https://arxiv.org/pdf/{paper.id}|PDF>",
    ]
    if safe_url(paper.github_repo):
        links.append(f"<{paper.github_repo}|Code>")
    if safe_url(paper.project_page):
        links.append(f"<{paper.project_page}|Project page>")
    return " · ".join(links)


def safe_url(url: str | None) -> bool:
    """An https URL that can sit inside Slack's `<url|label>` without breaking out of it."""
    if not url or any(ch in url for ch in "<>| \t\n\r"):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def why_line(paper: PaperView) -> str:
    if not paper.topic:
        return ""
    terms = ", ".join(f"_{escape(t)}_" for t in paper.terms)
    line = f"Matched *{escape(paper.topic)}*" + (f" on {terms}" if terms else "")
    if paper.reading:
        line += f" · read as {escape(paper.reading)}"
    if paper.semantic:
        line += f" · {SEMANTIC_NOTE}"
    if paper.boosted:
        line += " · lifted by this channel's reactions"
    return line


def paper_message(paper: PaperView) -> Message:
    """A digest reply or a search hit: linked title, authors, why it matched, summary, links."""
    title = escape(" ".join(paper.title.split()))
    head = f"*<{paper_url(paper.id)}|{title}>*"
    if authors := _authors(paper.authors):
        head += f"\n{escape(authors)}"
    blocks = [_section(head)]
    if why := why_line(paper):
        blocks.append(_context(why))
    if paper.summary:
        blocks.append(_section(escape(paper.summary)))
    meta = _links(paper)
    if paper.upvotes:
        meta += f" · ▲ {paper.upvotes}"
    blocks.append(_context(meta))
    text = f"{title} — {paper_url(paper.id)}"
    return text, blocks


def paper_plain_text(paper: PaperView) -> str:
    """The same reply for a terminal (`digest --dry-run`, `search`)."""
    lines = [f"{' '.join(paper.title.split())}", f"  {paper_url(paper.id)}"]
    if authors := _authors(paper.authors):
        lines.append(f"  {authors}")
    if paper.topic:
        terms = ", ".join(paper.terms)
        lines.append(f"  why: {paper.topic}" + (f" ({terms})" if terms else ""))
        if paper.reading:
            lines.append(f"  read as {paper.reading}")
        if paper.semantic:
            lines.append(f"  {SEMANTIC_NOTE}")
        if paper.boosted:
            lines.append("  lifted by this channel's reactions")
    if paper.summary:
        lines.append(f"  {paper.summary}")
    return "\n".join(lines)


def digest_parent(day: dt.date, count: int, topics: Sequence[str]) -> Message:
    noun = "paper" if count == 1 else "papers"
    topic_text = ", ".join(f"*{escape(t)}*" for t in topics)
    text = f"Papers for {day:%a %d %b %Y}: {count} new {noun} on {escape(', '.join(topics))}"
    blocks = [
        _section(f":newspaper: *{count} new {noun}* for {topic_text}"),
        _context(
            f"{day:%A, %d %B %Y} · one reply per paper in the thread · react 👍 or 👎 "
            "to tune what comes next"
        ),
    ]
    return text, blocks


def help_message(max_topics: int, hint: str | None = None, *, by_meaning: bool = False) -> Message:
    """The /papers help; `hint` (already escaped) goes first, e.g. for an unknown command;
    `by_meaning`: the bot matches by meaning too (SEMANTIC_MODEL)."""
    text = (
        "*papers-bot* posts this channel a daily digest of new papers on its topics.\n"
        "• `/papers subscribe <topic>` follow a topic, "
        "e.g. `/papers subscribe contrastive learning`\n"
        "• `/papers unsubscribe <topic or number>` stop following one (numbers from `list`)\n"
        "• `/papers list` the topics this channel follows\n"
        "• `/papers search <query>` search every stored paper; add `since:30d` or "
        "`since:2024-07-01` to limit by date\n"
        "• `/papers liked` the papers this channel liked most in the last 7 days\n"
        "• `/papers why <arXiv id or link>` how each topic scored that paper: why it came or not\n"
        "• `/papers help` this message\n"
        f"A channel can follow up to {max_topics} topics of up to 200 characters. "
        "React 👍 ❤️ 🔥 or 👎 on a paper reply: the next digests learn from it."
    )
    syntax = HELP_TOPIC_SYNTAX.format(meaning=HELP_BY_MEANING if by_meaning else "")
    body = [_section(text), _section(syntax)]
    if hint:
        return f"{hint}\n{text}", [_section(hint), *body]
    return text, body


def topic_list(
    topics: Sequence[str], warning: str | None = None, readings: Sequence[str] = ()
) -> Message:
    """The channel's topics, numbered; `warning` (already escaped) adds a note below;
    `readings`: how the bot reads each topic ("" when as written)."""
    extra = [_context(warning)] if warning else []
    if not topics:
        text = "This channel follows no topics yet. Try `/papers subscribe contrastive learning`."
        return text, [_section(text), *extra]
    shown = [f" — _read as {escape(r)}_" if r else "" for r in readings] or [""] * len(topics)
    lines = "\n".join(
        f"{i}. {escape(t)}{r}" for i, (t, r) in enumerate(zip(topics, shown, strict=True), 1)
    )
    text = f"This channel follows {len(topics)} topic{'s' if len(topics) != 1 else ''}:\n{lines}"
    return text, [
        _section(text),
        _context("Remove one with `/papers unsubscribe <number>`."),
        *extra,
    ]


def notice(text: str) -> Message:
    """A one-line message: confirmations, errors, hints."""
    return text, [_section(text)]


def search_results(query: str, papers: Sequence[PaperView], offset: int, more: bool) -> Message:
    """Search hits formatted like digest replies, with a button for the next page."""
    shown = escape(query)
    if not papers:
        text = (
            f"Nothing found for “{shown}”. Try fewer or broader words, drop a `since:` filter, "
            "or check the spelling."
        )
        return text, [_section(text)]
    first, last = offset + 1, offset + len(papers)
    text = f"Results {first}–{last} for “{shown}”"
    blocks: list[dict] = [_section(f"*{text}*")]
    for paper in papers:
        blocks.append({"type": "divider"})
        blocks.extend(paper_message(paper)[1])
    if more:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "search_more",
                        "text": {"type": "plain_text", "text": "More results"},
                        "value": json.dumps({"q": query[:1500], "o": last}),
                    }
                ],
            }
        )
    return text, blocks


def liked_papers(items: Sequence[tuple[PaperView, int]], days: int) -> Message:
    if not items:
        text = (
            f"No paper got a 👍 here in the last {days} days. React on a digest reply "
            "to tell me what this channel likes."
        )
        return text, [_section(text)]
    lines = [
        f"{i}. <{paper_url(p.id)}|{escape(' '.join(p.title.split()))}> · {votes:+d}"
        for i, (p, votes) in enumerate(items, 1)
    ]
    text = f"Most liked in this channel, last {days} days:\n" + "\n".join(lines)
    return text, [_section(text)]


def why_report(
    paper: PaperView, verdicts: Sequence[tuple[str, str, bool, str]], sent: bool
) -> Message:
    """`/papers why`: per channel topic (topic, reading, passes, reason), how it scored a paper."""
    title = escape(" ".join(paper.title.split()))
    head = f"*<{paper_url(paper.id)}|{title}>*"
    if sent:
        head += "\nThis channel already got it in a digest."
    blocks = [_section(head)]
    lines = []
    for topic, reading, passes, reason in verdicts:
        mark = ":white_check_mark:" if passes else ":x:"
        line = f"{mark} *{escape(topic)}* — {escape(reason)}"
        if reading:
            line += f"\n      _read as {escape(reading)}_"
        lines.append(line)
    blocks.append(_section("\n".join(lines)))
    blocks.append(
        _context("Fix a topic that reads wrong with `/papers unsubscribe` and a new wording.")
    )
    text = f"Why or why not: {title}\n" + "\n".join(lines)
    return text, blocks
