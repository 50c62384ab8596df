"""Block Kit builders: every message papers-bot shows, as plain dicts plus a text fallback.

Each builder returns `(text, blocks)`; `text` is the notification and screen-reader
fallback Slack asks for (at most 4,000 characters). Everything user- or source-supplied goes
through `bot.digest.mrkdwn` (`escape`, `fit`), so a topic or an abstract can never ping
`@channel`, forge a link or break the bold around it; long content is spread over several
blocks at line or item boundaries (`pack`), and whatever is shortened or left out says so.
Called by `bot.digest`, `bot.archive.search` and `handlers.*`; checked against Slack's limits
by `tests/slack_messages`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.digest.mrkdwn import (
    BUTTON_VALUE_CHARS,
    FALLBACK_CHARS,
    TEXT_CHARS,
    escape,
    fit,
    pack,
    slack_len,
    visible,
)

Message = tuple[str, list[dict]]

HELP_BY_MEANING = (
    "; a paper that mentions them only briefly, or most of them, still comes if its abstract "
    "is close in meaning"
)
HELP_TOPIC_SYNTAX = (
    "*Topic syntax*\n"
    "• plain words match anywhere in title or abstract: `contrastive learning`{meaning}\n"
    '• `"quoted phrase"` must appear as written: `"sparse autoencoders"`\n'
    "• `-word` excludes papers that mention it: `diffusion -audio`\n"
    '• `author:name` only papers by that author: `author:hinton` or `author:"Yann LeCun"`\n'
    "• `cat:category` only papers listed in that arXiv category (or archive): "
    "`cat:cs.RO grasping`, `cat:eess.AS speech`\n"
    "• a list means any of its members: `RLHF and reward models`, `image, video generation`; "
    "single words joined by “and” stay one subject (`vision and language`)\n"
    "• `X for Y` or `X in Y` keeps papers on X that mention Y: "
    "`hallucination in vision-language models`\n"
    "• acronyms match their expansions both ways, as papers define them: `RAG`\n"
    "Refused: more than 5 alternatives, a word both asked for and excluded "
    "(`learning -learning`), an `author:` without a name. `/papers list` shows how I read "
    "each topic"
)


TITLE_CHARS = 500  # a title as shown, escaped
TOPIC_CHARS = 400  # a topic as shown: 200 typed characters fit unless mostly & < >
NAME_CHARS = 100  # an author's name, a matched word
URL_CHARS = 1000  # longer source URLs (as written in the link) are not linked
QUERY_CHARS = 300  # a search query repeated in its answer
PAGED_QUERY_CHARS = (BUTTON_VALUE_CHARS - 10) // 2  # always fits a button, emoji and all


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _sections(pieces: Sequence[str], sep: str = "\n") -> list[dict]:
    """Whole pieces over as many sections as they need (each within Slack's 3,000)."""
    return [_section(text) for text in pack(pieces, sep=sep)]


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _fallback(head: str, items: Sequence[str], sep: str = "\n") -> str:
    """`head` and as many `items` as fit the fallback text, then how many were left out."""
    text = head
    for shown, item in enumerate(items):
        candidate = f"{text}{sep if shown else _head_sep(sep)}{item}"
        if slack_len(candidate) + len(f"{sep}… and 99 more") > FALLBACK_CHARS:
            return f"{text}{sep if shown else _head_sep(sep)}… and {len(items) - shown} more"
        text = candidate
    return text


def _head_sep(sep: str) -> str:
    """What separates a fallback's head from its first item: a line break or a space."""
    return "\n" if "\n" in sep else " "


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
    sources: Sequence[str] = ()  # "hf", "arxiv": who listed it (empty: Hugging Face)
    primary_category: str | None = None
    reading: str = ""  # how the bot read the topic, when not as written


SOURCE_LABELS = {"hf": "Hugging Face", "arxiv": "arXiv"}


SEMANTIC_NOTE = (
    "the words appear briefly or in part, but the abstract is close in meaning to the topic"
)


def paper_url(paper_id: str) -> str:
    return f"https://huggingface.co/papers/{paper_id}"


def _authors(names: Sequence[str]) -> str:
    """Up to three names, escaped, then "et al." for the rest."""
    if not names:
        return ""
    shown = ", ".join(fit(name, NAME_CHARS) for name in names[:3])
    return shown + (" et al." if len(names) > 3 else "")


def _link(url: str, label: str) -> str:
    """Slack's `<url|label>`; a `|` in the (escaped) label would end the URL part early."""
    return f"<{url.replace('&', '&amp;')}|{label.replace('|', '∣')}>"


def _arxiv_only(paper: PaperView) -> bool:
    return list(paper.sources) == ["arxiv"]


def view_url(paper: PaperView) -> str:
    """Where the title links: the Hugging Face page, or arXiv's for a paper only arXiv listed."""
    return f"https://arxiv.org/abs/{paper.id}" if _arxiv_only(paper) else paper_url(paper.id)


def origin(paper: PaperView) -> str:
    """Where the paper came from and its primary category: "via arXiv · cs.RO"."""
    names = [SOURCE_LABELS.get(s, s) for s in paper.sources] or [SOURCE_LABELS["hf"]]
    text = "via " + " and ".join(names)
    return text + (f" · {paper.primary_category}" if paper.primary_category else "")


def _links(paper: PaperView) -> list[str]:
    links = [] if _arxiv_only(paper) else [_link(paper_url(paper.id), "Hugging Face")]
    links += [
        _link(f"https://arxiv.org/abs/{paper.id}", "arXiv"),
        _link(f"https://arxiv.org/pdf/{paper.id}", "PDF"),
    ]
    if paper.github_repo and safe_url(paper.github_repo):
        links.append(_link(paper.github_repo, "Code"))
    if paper.project_page and safe_url(paper.project_page):
        links.append(_link(paper.project_page, "Project page"))
    return links


def safe_url(url: str | None) -> bool:
    """An https URL that can sit inside Slack's `<url|label>` without breaking out of it."""
    if not url or len(url.replace("&", "&amp;")) > URL_CHARS or url != visible(url):
        return False
    if any(ch in url for ch in "<>| \t\n\r"):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def why_line(paper: PaperView) -> str:
    if not paper.topic:
        return ""
    terms = ", ".join(f"_{fit(t, NAME_CHARS)}_" for t in paper.terms[:10])
    if len(paper.terms) > 10:
        terms += f" and {len(paper.terms) - 10} more"
    line = f"Matched *{fit(paper.topic, TOPIC_CHARS)}*" + (f" on {terms}" if terms else "")
    if paper.reading:
        line += f" · read as {fit(paper.reading, TOPIC_CHARS)}"
    if paper.semantic:
        line += f" · {SEMANTIC_NOTE}"
    if paper.boosted:
        line += " · lifted by this channel's reactions"
    return line


def paper_message(paper: PaperView) -> Message:
    """A digest reply or a search hit: linked title, authors, why it matched, summary, links."""
    title = fit(paper.title, TITLE_CHARS)
    head = f"*{_link(view_url(paper), title)}*"
    if authors := _authors(paper.authors):
        head += f"\n{authors}"
    blocks = [_section(head)]
    if why := why_line(paper):
        blocks.append(_context(why))
    if paper.summary:
        blocks.append(_section(fit(paper.summary, TEXT_CHARS)))
    meta = _links(paper) + ([f"▲ {paper.upvotes}"] if paper.upvotes else [])
    meta.append(escape(origin(paper)))
    elements = [{"type": "mrkdwn", "text": text} for text in pack(meta, sep=" · ")]
    blocks.append({"type": "context", "elements": elements})
    text = f"{title} — {view_url(paper)}"
    return text, blocks


def paper_plain_text(paper: PaperView) -> str:
    """The same reply for a terminal (`digest --dry-run`, `search`)."""
    lines = [f"{' '.join(paper.title.split())}", f"  {view_url(paper)}", f"  {origin(paper)}"]
    if paper.authors:
        lines.append(
            f"  {', '.join(paper.authors[:3])}" + (" et al." if len(paper.authors) > 3 else "")
        )
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
    return visible("\n".join(lines))


def digest_parent(day: dt.date, count: int, topics: Sequence[str]) -> Message:
    noun = "paper" if count == 1 else "papers"
    shown = [fit(t, TOPIC_CHARS) for t in topics]
    text = _fallback(f"Papers for {day:%a %d %b %Y}: {count} new {noun} on", shown, ", ")
    bold = [f"*{t}*" for t in shown] or [""]
    blocks = [
        *_sections([f":newspaper: *{count} new {noun}* for {bold[0]}".rstrip(), *bold[1:]], ", "),
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
        "• `/papers subscribe &lt;topic&gt;` follow a topic, "
        "e.g. `/papers subscribe contrastive learning`\n"
        "• `/papers unsubscribe &lt;topic or number&gt;` stop following one "
        "(numbers from `list`)\n"
        "• `/papers list` the topics this channel follows\n"
        "• `/papers search &lt;query&gt;` search every stored paper; add `since:30d` or "
        "`since:2024-07-01` to limit by date, `cat:cs.RO` by arXiv category\n"
        "• `/papers liked` the papers this channel liked most in the last 7 days\n"
        "• `/papers settings` when this channel's digest comes, how many papers, from where\n"
        "• `/papers why &lt;arXiv id or link&gt;` how each topic scored that paper: "
        "why it came or not\n"
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
    topics: Sequence[str],
    warning: str | None = None,
    readings: Sequence[str] = (),
    *,
    schedule: str | None = None,
) -> Message:
    """Every topic of the channel, numbered (the numbers `unsubscribe` takes); `warning`
    (already escaped) adds a note below; `readings`: how the bot reads each topic ("" when
    as written); `schedule` (the channel's digest settings, in words) a line about when they
    come."""
    extra = [_context(warning)] if warning else []
    if schedule:
        extra.insert(0, _context(f"Digest: {escape(schedule)}. Change it: `/papers settings`."))
    if not topics:
        text = "This channel follows no topics yet. Try `/papers subscribe contrastive learning`."
        return text, [_section(text), *extra]
    head = f"This channel follows {len(topics)} topic{'s' if len(topics) != 1 else ''}:"
    shown = [f" — _read as {fit(r, TOPIC_CHARS)}_" if r else "" for r in readings]
    shown += [""] * (len(topics) - len(shown))
    lines = [
        f"{i}. {fit(t, TOPIC_CHARS)}{r}"
        for i, (t, r) in enumerate(zip(topics, shown, strict=True), 1)
    ]
    return _fallback(head, lines), [
        *_sections([head, *lines]),
        _context("Remove one with `/papers unsubscribe &lt;number&gt;`."),
        *extra,
    ]


def notice(text: str) -> Message:
    """A one-line message: confirmations, errors, hints (already escaped, within 3,000)."""
    return text, [_section(text)]


def more_value(query: str, offset: int) -> str | None:
    """The "More results" button's value: the offset, a colon, the query as typed; None
    when that is longer than a button can hold."""
    value = f"{offset}:{query}"
    return value if slack_len(value) <= BUTTON_VALUE_CHARS else None


def read_more_value(value: str) -> tuple[str, int]:
    """(query, offset) from a "More results" value (also the older JSON form); ValueError
    when it is not one."""
    if value.startswith("{"):
        state = json.loads(value)
        offset = state["o"]
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise ValueError(f"offset {offset!r} is not a whole number")
        return str(state["q"]), offset
    offset, sep, query = value.partition(":")
    if not sep or not offset.isdigit() or not query:
        raise ValueError("not a search_more value")
    return query, int(offset)


def search_results(query: str, papers: Sequence[PaperView], offset: int, more: bool) -> Message:
    """Search hits formatted like digest replies, with a button for the next page."""
    shown = fit(query, QUERY_CHARS)
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
    if more and (value := more_value(query, last)) is not None:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "search_more",
                        "text": {"type": "plain_text", "text": "More results"},
                        "value": value,
                    }
                ],
            }
        )
    elif more:
        blocks.append(
            _context(
                "There are more results, but a search this long cannot be paged: "
                f"shorten it to {PAGED_QUERY_CHARS} characters or fewer to see them."
            )
        )
    return text, blocks


def liked_papers(items: Sequence[tuple[PaperView, int]], days: int) -> Message:
    if not items:
        text = (
            f"No paper got a 👍 here in the last {days} days. React on a digest reply "
            "to tell me what this channel likes."
        )
        return text, [_section(text)]
    head = f"Most liked in this channel, last {days} days:"
    lines = [
        f"{i}. {_link(paper_url(p.id), fit(p.title, TITLE_CHARS))} · {votes:+d}"
        for i, (p, votes) in enumerate(items, 1)
    ]
    return _fallback(head, lines), _sections([head, *lines])


def why_report(
    paper: PaperView, verdicts: Sequence[tuple[str, str, bool, str]], sent: bool
) -> Message:
    """`/papers why`: per channel topic (topic, reading, passes, reason), how it scored a paper."""
    title = fit(paper.title, TITLE_CHARS)
    head = f"*{_link(paper_url(paper.id), title)}*"
    if sent:
        head += "\nThis channel already got it in a digest."
    lines = []
    for topic, reading, passes, reason in verdicts:
        mark = ":white_check_mark:" if passes else ":x:"
        line = f"{mark} *{fit(topic, TOPIC_CHARS)}* — {fit(reason, TEXT_CHARS // 4)}"
        if reading:
            line += f"\n      _read as {fit(reading, TOPIC_CHARS)}_"
        lines.append(line)
    footer = _context("Fix a topic that reads wrong with `/papers unsubscribe` and a new wording.")
    return _fallback(f"Why or why not: {title}", lines), [
        _section(head),
        *_sections(lines),
        footer,
    ]
