"""Summaries: Hugging Face's when given, else the most informative sentences, never cut mid-word."""

from __future__ import annotations

from bot.summary import shorten, split_sentences, summarize

ABSTRACT = (
    "Deep networks are widely used. "
    "Contrastive learning has become a popular method, e.g. for pre-training. "
    "We propose a temperature-aware contrastive loss that controls the penalty on hard negatives. "
    "Experiments show our method outperforms baselines on five benchmarks. "
    "Code is available online."
)


def test_ai_summary_wins():
    assert summarize(ABSTRACT, "  A short AI summary.  ") == "A short AI summary."


def test_sentence_split_keeps_abbreviations():
    parts = split_sentences(ABSTRACT)
    assert len(parts) == 5
    assert parts[1].endswith("e.g. for pre-training.")


def test_extractive_summary_keeps_order_and_picks_contributions():
    summary = summarize(ABSTRACT)
    assert "We propose a temperature-aware contrastive loss" in summary
    assert summary.index("We propose") < summary.index("Experiments show")
    assert "Code is available online." not in summary


def test_never_cut_mid_word():
    text = "word " * 200
    short = shorten(text, 50)
    assert len(short) <= 50
    assert short.endswith("word…")


def test_short_abstract_is_kept_whole():
    assert summarize("One sentence only.") == "One sentence only."
