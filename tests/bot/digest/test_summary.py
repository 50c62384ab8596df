"""Summaries: Hugging Face's when given, else the most informative sentences, never cut mid-word."""

from __future__ import annotations

from bot.digest.summary import leans_back, shorten, split_sentences, summarize

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


def test_list_items_and_latex_escapes_are_not_summaries():
    abstract = (
        "We study two ways to make sentence embeddings uniform across the space. "
        "1) Better uniformity. 2) Fewer collapsed dimensions in the embedding. "
        "Our whitening method improves correlation by 2.5\\% on seven semantic similarity tasks. "
        "It is simple to implement and fast to train on a single accelerator."
    )
    summary = summarize(abstract)
    assert "1) Better uniformity." not in summary
    assert "2.5%" in summary and "\\%" not in summary


def test_sentences_that_point_back_come_only_after_their_antecedent():
    abstract = (
        "Large language models hallucinate facts when asked about rare entities. "
        "Retrieval helps, but retrieved passages are often noisy and long. "
        "Thus motivated, we propose a contrastive filter that outperforms strong baselines. "
        "However, our filter improves accuracy by 9 points on four benchmarks. "
        "1) Better uniformity of the representation space improves results considerably. "
        "This paper also releases a benchmark of rare-entity questions with verified answers."
    )
    summary = summarize(abstract)
    parts = split_sentences(summary)
    assert parts, summary
    for i, sentence in enumerate(split_sentences(abstract)):
        if sentence in parts and leans_back(sentence):
            previous = split_sentences(abstract)[i - 1]
            assert previous in parts, (sentence, summary)  # read in context
    assert not leans_back(parts[0]), summary
    assert "This paper also releases" in summary  # names its referent: stands alone


def test_leans_back_reads_openings():
    for sentence in (
        "Thus motivated, we go.",
        "1) Better uniformity.",
        "This is new.",
        "However, it fails.",
        "(ii) A second point.",
        "These results hold.",
    ):
        assert leans_back(sentence), sentence
    for sentence in (
        "This paper studies X.",
        "We propose X.",
        "Thesis work is hard.",
        "Third-party code is used.",
        "There is growing interest in X.",
    ):
        assert not leans_back(sentence), sentence
