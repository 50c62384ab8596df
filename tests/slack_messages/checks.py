"""Checks a message payload the way Slack would: slack_sdk's Block Kit models and validators,
Slack's documented limits, and mrkdwn that shows exactly what the bot meant.

`problems(payload)` lists every rule a `{"text": ..., "blocks": [...]}` payload breaks (an
empty list when it is fine). Limits (api.slack.com Block Kit reference and chat.postMessage):
a text object at most 3,000 characters; a context block at most 10 elements; a button's
text 75 and its value 2,000; `action_id` 255; at most 50 blocks; a message's `text` at most
40,000, and at most 4,000 as a notification fallback. Lengths are counted in UTF-16 code
units, the stricter of the two counts Slack may use.

mrkdwn: `&`, `<` and `>` are control characters, so a `<` must open one of the bot's own
links (`<https://…|label>`), mentions (`<@U…>`, `<#C…>`) or dates (`<!date^…|…>`), a `>`
must close one, and an `&` must start `&amp;`, `&lt;` or `&gt;`. Slack has no escape for
`*`, `_`, `~` and backticks, so on every line (link targets aside) each must come in pairs,
as the bot's own markup does; an odd one is text that broke the formatting around it. No
invisible format character (bidi overrides, zero-width spaces; joiners aside) may reach the
reader.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

TEXT_OBJECT = 3000
CONTEXT_ELEMENTS = 10
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
ACTION_ID = 255
BLOCKS = 50
MESSAGE_TEXT = 40_000
FALLBACK_TEXT = 4000

_LINK = re.compile(r"<(https://[^\s<>|]+)\|([^<>|]+)>")
_MENTION = re.compile(r"<@[UW][A-Z0-9]+>|<#[CG][A-Z0-9]+>")
_DATE = re.compile(r"<!date\^\d+\^[^<>|]+\|([^<>|]+)>")  # shown in the reader's time zone
_ENTITY = re.compile(r"&(amp|lt|gt);")
_FORMATTING = "*_~`"
_CODE = re.compile(r"`[^`]*`")


def slack_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def mrkdwn_problems(text: str, where: str) -> list[str]:
    """What is wrong with one mrkdwn string."""
    found = []
    if slack_len(text) > MESSAGE_TEXT:
        found.append(f"{where}: {slack_len(text)} characters")
    hidden = {
        f"U+{ord(ch):04X}"
        for ch in text
        if unicodedata.category(ch) == "Cf" and ch not in "\u200c\u200d"
    }
    if hidden:
        found.append(f"{where}: invisible format characters {sorted(hidden)}")
    labels_only = _MENTION.sub("@user", _LINK.sub(lambda m: m[2], _DATE.sub(r"\1", text)))
    if "<" in labels_only or ">" in labels_only:
        i = max(labels_only.find("<"), labels_only.find(">"))
        near = labels_only[max(0, i - 30) : i + 30]
        found.append(f"{where}: a raw < or > outside a link: …{near}…")
    if "&" in _ENTITY.sub("", labels_only):
        found.append(f"{where}: a raw & (not &amp; &lt; &gt;)")
    for link in _LINK.finditer(text):
        if "&" in _ENTITY.sub("", link[1]):
            found.append(f"{where}: a raw & in the link {link[1][:60]}")
    for number, line in enumerate(labels_only.split("\n"), 1):
        for mark in _FORMATTING:
            counted = line if mark == "`" else _CODE.sub("", line)  # code spans format nothing
            if counted.count(mark) % 2:
                found.append(f"{where} line {number}: an unpaired {mark!r}: {line[:80]!r}")
    return found


def _walk(node: Any, path: str):
    """Every dict in a block, with where it is."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def block_problems(block: dict, where: str) -> list[str]:
    found = []
    try:
        parsed = Block.parse(block)
        if parsed is None:
            return [f"{where}: slack_sdk does not know this block: {block.get('type')}"]
        parsed.validate_json()
        if parsed.to_dict() != block:
            found.append(f"{where}: slack_sdk reads it differently: {parsed.to_dict()}")
    except SlackObjectFormationError as exc:
        return [f"{where}: {exc}"]
    for path, node in _walk(block, where):
        kind = node.get("type")
        if kind in ("mrkdwn", "plain_text"):
            text = node.get("text", "")
            if not text:
                found.append(f"{path}: empty text")
            if slack_len(text) > TEXT_OBJECT:
                found.append(f"{path}: {slack_len(text)} characters, more than {TEXT_OBJECT}")
            if kind == "mrkdwn":
                found += mrkdwn_problems(text, path)
        if kind == "context" and len(node.get("elements", [])) > CONTEXT_ELEMENTS:
            found.append(f"{path}: more than {CONTEXT_ELEMENTS} elements")
        if kind == "button":
            if slack_len(node["text"]["text"]) > BUTTON_TEXT:
                found.append(f"{path}: button text over {BUTTON_TEXT}")
            if slack_len(node.get("value", "")) > BUTTON_VALUE:
                found.append(f"{path}: value of {slack_len(node['value'])}, over {BUTTON_VALUE}")
            if len(node.get("action_id", "")) > ACTION_ID:
                found.append(f"{path}: action_id over {ACTION_ID}")
    return found


def problems(payload: dict) -> list[str]:
    """Every rule the message payload breaks."""
    found = []
    text = payload.get("text")
    blocks = payload.get("blocks") or []
    if isinstance(blocks, str):  # form-encoded requests carry blocks as JSON
        blocks = json.loads(blocks)
    if not isinstance(text, str) or not text.strip():
        found.append("no fallback text")
    else:
        if slack_len(text) > FALLBACK_TEXT:
            found.append(f"fallback text of {slack_len(text)} characters, over {FALLBACK_TEXT}")
        found += mrkdwn_problems(text, "text")
    if len(blocks) > BLOCKS:
        found.append(f"{len(blocks)} blocks, over {BLOCKS}")
    for i, block in enumerate(blocks):
        found += block_problems(block, f"blocks[{i}]")
    return found


MODAL_TITLE = 24  # a modal's title, submit and close texts
MODAL_BUTTON = 24
VIEW_BLOCKS = 100  # a modal or a Home tab
INPUT_LABEL = 2000
INPUT_HINT = 2000
OPTION_TEXT = 75
PRIVATE_METADATA = 3000
CALLBACK_ID = 255


def view_problems(view: dict) -> list[str]:
    """Every rule a `views.open` / `views.publish` view breaks (slack_sdk's View model,
    Slack's limits for modals and the Home tab, and each block as in a message)."""
    found = []
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, TypeError) as exc:
        found.append(f"view: {exc}")
    blocks = view.get("blocks") or []
    if len(blocks) > VIEW_BLOCKS:
        found.append(f"{len(blocks)} blocks, over {VIEW_BLOCKS}")
    if view.get("type") == "modal":
        for key, limit in (
            ("title", MODAL_TITLE),
            ("submit", MODAL_BUTTON),
            ("close", MODAL_BUTTON),
        ):
            text = (view.get(key) or {}).get("text", "")
            if key == "title" and not text:
                found.append("a modal without a title")
            if slack_len(text) > limit:
                found.append(f"{key}: {slack_len(text)} characters, over {limit}")
            if view.get(key) and view[key].get("type") != "plain_text":
                found.append(f"{key}: not plain_text")
        if slack_len(view.get("private_metadata", "")) > PRIVATE_METADATA:
            found.append(f"private_metadata over {PRIVATE_METADATA}")
        if len(view.get("callback_id", "")) > CALLBACK_ID:
            found.append(f"callback_id over {CALLBACK_ID}")
    elif view.get("type") != "home":
        found.append(f"a view of type {view.get('type')!r}")
    for i, block in enumerate(blocks):
        where = f"blocks[{i}]"
        found += block_problems(block, where)
        if block.get("type") == "input":
            if slack_len(block["label"]["text"]) > INPUT_LABEL:
                found.append(f"{where}: label over {INPUT_LABEL}")
            if "hint" in block and slack_len(block["hint"]["text"]) > INPUT_HINT:
                found.append(f"{where}: hint over {INPUT_HINT}")
        for path, node in _walk(block, where):
            option = "value" in node and isinstance(node.get("text"), dict)
            if option and slack_len(node["text"]["text"]) > OPTION_TEXT:
                found.append(f"{path}: option text over {OPTION_TEXT}")
    return found


def errors_problems(answer: dict, view: dict) -> list[str]:
    """A `response_action: errors` answer: each key names an input block of `view`, each
    message is non-empty plain text Slack can show under the field."""
    found = []
    if answer.get("response_action") != "errors" or not answer.get("errors"):
        return [f"not an errors answer: {answer}"]
    inputs = {b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"}
    for block_id, message in answer["errors"].items():
        if block_id not in inputs:
            found.append(f"errors: {block_id!r} is not an input block of the view")
        if not isinstance(message, str) or not message.strip():
            found.append(f"errors[{block_id}]: empty")
        elif slack_len(message) > TEXT_OBJECT:
            found.append(f"errors[{block_id}]: {slack_len(message)} characters")
    return found
