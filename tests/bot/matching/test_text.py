"""The shared tokenizer: stemming, stopwords, compounds, acronyms, normalisation."""

from __future__ import annotations

import pytest

from bot.matching.text import (
    STOPWORDS,
    prefix_stem,
    split_tokens,
    surface_of,
    tokenize,
    tokenize_with_surface,
)


def test_inflections_share_a_stem():
    assert tokenize("learning learned learns learn") == ["learn"] * 4
    assert tokenize("representations representation") == ["represent"] * 2
    assert tokenize("recommender recommendation recommendations") == ["recommend"] * 3
    assert tokenize("interpretable interpretability") == ["interpret"] * 2


def test_adjectives_in_y_meet_their_noun():
    assert tokenize("noisy") == tokenize("noise") == tokenize("noises")
    assert tokenize("study studies studied studying") == [tokenize("study")[0]] * 4


def test_function_words_and_abstract_boilerplate_are_dropped():
    assert tokenize("We propose a novel method and show that it is effective") == [
        "method",
        "effect",
    ]
    assert tokenize("In this paper, we present state-of-the-art results") == ["result"]
    assert {"we", "propose", "paper", "show", "novel", "the", "of"} <= STOPWORDS


def test_content_words_are_kept():
    assert tokenize("learning network model data") == ["learn", "network", "model", "data"]
    assert tokenize("few-shot")[:2] == ["few", "shot"]  # "few" matters in compounds


def test_numbers_single_letters_and_urls_are_dropped():
    assert tokenize("a 2024 x 10 benchmark") == ["benchmark"]
    assert tokenize("Code: https://github.com/foo/recommender-systems and www.x.org/robot") == [
        "code"
    ]


def test_hyphenated_compounds_match_every_spelling():
    hyphen = set(tokenize("vision-language"))
    assert set(tokenize("vision language")) <= hyphen
    assert set(tokenize("visionlanguage")) <= hyphen
    assert set(tokenize("few shot")) <= set(tokenize("few-shot"))
    assert set(tokenize("fewshot")) <= set(tokenize("few-shot"))


def test_joined_compounds_come_after_the_running_words():
    tokens = tokenize("vision-language model for few-shot learning")
    running = ["vision", "languag", "model", "few", "shot", "learn"]
    assert tokens == [*running, "visionlanguag", "fewshot"]
    assert split_tokens("vision-language model") == (
        ["vision", "languag", "model"],
        ["visionlanguag"],
    )
    assert tokenize("vision-language model", compounds=False) == ["vision", "languag", "model"]


def test_prefixed_words_also_yield_their_remainder():
    assert tokenize("biomedical datasets") == ["biomed", "dataset", "medic"]
    assert split_tokens("Multimodal pretraining of hypergraphs") == (
        ["multimod", "pretrain", "hypergraph"],
        ["modal", "train", "graph"],
    )
    # the closed spelling now meets the hyphenated one on the remainder
    assert "medic" in tokenize("bio-medical")
    assert set(tokenize("medical")) <= set(tokenize("biomedical"))
    assert prefix_stem("neuroscience") == tokenize("science")[0]


def test_topics_get_no_prefix_remainders():
    # a wrong split never changes a topic's stems: "prediction" stays "predict"
    assert tokenize("prediction biomedical", compounds=False) == ["predict", "biomed"]
    assert tokenize("prediction")[0] == tokenize("predicting")[0] == "predict"


@pytest.mark.parametrize(
    "word",
    [
        "research",  # no "re"
        "interface",  # no "inter"
        "supervision",  # no "super"
        "unsupervised",  # no negations
        "nonlinear",
        "preserving",  # remainder stem too short: "serv"
        "microsoft",
        "predict",
        "prefix",
        "multitask",  # the price of the guard
        "pre",
        "biology",
        "self2024",
    ],
)
def test_prefix_guards(word):
    assert prefix_stem(word) == ""
    assert tokenize(word, compounds=False) == tokenize(word)


def test_odd_hyphens():
    assert tokenize("pre- and post-training") == ["pre", "post", "train", "posttrain"]
    assert tokenize("state-of-the-art well-known") == []
    assert tokenize("method--which") == ["method"]


def test_acronyms_either_way():
    assert tokenize("LLMs") == tokenize("llms") == tokenize("LLM") == ["llm"]
    assert tokenize("CNNs DNNs") == ["cnn", "dnn"]
    assert tokenize("CLIP") == tokenize("clip")
    assert tokenize("GANs VAEs") == ["gan", "vae"]


def test_unicode_is_normalised():
    assert tokenize("Müller") == tokenize("Muller") == ["muller"]
    assert tokenize("ﬁne‑tuning") == tokenize("fine-tuning")  # ligature, non-breaking hyphen
    assert tokenize("LEARNING") == tokenize("learning")


def test_ascii_fast_path_agrees_with_the_unicode_path():
    text = "Pre- and post-training of vision--language models: the few-shot CLIP (ViT-B/32)."
    assert tokenize(text) == tokenize(text + " é")  # "é" forces the unicode path


def test_surface_words_for_explanations():
    pairs = tokenize_with_surface("Contrastive Learning of LLMs")
    assert pairs == [("contrast", "contrastive"), ("learn", "learning"), ("llm", "llms")]
    assert [stem for stem, _ in tokenize_with_surface("few-shot")] == tokenize("few-shot")
    tokenize("learn learning")
    assert surface_of("learn") == "learn"  # the shortest word seen with that stem
    assert surface_of("zzzunseen") == "zzzunseen"
