"""Command text as Slack delivers it (escaped or not) is read back as the user typed it."""

from __future__ import annotations

import pytest

from handlers.slack_text import plain


@pytest.mark.parametrize(
    ("delivered", "typed"),
    [
        ("subscribe <#C0123|nlp> transformers", "subscribe #nlp transformers"),
        ("subscribe #nlp transformers", "subscribe #nlp transformers"),  # should_escape off
        ("subscribe <#C0123> transformers", "subscribe #C0123 transformers"),
        ("search <@U0123|ana> diffusion", "search @ana diffusion"),
        (
            "search <https://arxiv.org/abs/2407.1|arxiv.org/abs/2407.1>",
            "search https://arxiv.org/abs/2407.1",
        ),
        ("search <mailto:a@b.org|a@b.org>", "search a@b.org"),
        ("subscribe <!here> <!channel> transformers", "subscribe transformers"),
        (
            "subscribe diffusion &amp; flow &lt;matching&gt;",
            "subscribe diffusion & flow <matching>",
        ),
        ("subscribe &lt;!channel&gt; x", "subscribe <!channel> x"),  # typed, not a mention
        ("subscribe gnp\u202eexe\u200b.png  \t tab", "subscribe gnpexe.png tab"),
        ("subscribe 👨\u200d👩\u200d👧 family", "subscribe 👨\u200d👩\u200d👧 family"),
    ],
)
def test_read_as_typed(delivered, typed):
    assert plain(delivered) == typed
