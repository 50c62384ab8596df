"""Topic readings: lists, qualifiers, acronyms learned from papers, and refused shapes."""

from __future__ import annotations

import pytest

from bot.matching.acronyms import Acronyms, definitions
from bot.matching.interpret import MAX_ALTERNATIVES, describe, read_topic, split_topic
from bot.matching.ranking import TopicError, parse_topic


def labels(words: str) -> tuple[list[str], list[str]]:
    reading = read_topic(split_topic(words))
    return [a.label for a in reading.alternatives], [a.label for a in reading.qualifier]


@pytest.mark.parametrize(
    ("topic", "alternatives", "qualifier"),
    [
        # lists and coordination mean any of their members
        ("code generation and software engineering agents",
         ["code generation", "software engineering agents"], []),
        ("robot manipulation, vision-language-action models",
         ["robot manipulation", "vision-language-action models"], []),
        ("image generation / video generation", ["image generation", "video generation"], []),
        ("GANs or diffusion models", ["GANs", "diffusion models"], []),
        # a single plain word shares the head of the member after it
        ("protein and molecule design", ["protein design", "molecule design"], []),
        ("sentence and document embeddings", ["sentence embeddings", "document embeddings"], []),
        # ... but an acronym or a hyphenated compound is a subject by itself
        ("RLHF and reward models", ["RLHF", "reward models"], []),
        ("text-to-speech and speech synthesis", ["text-to-speech", "speech synthesis"], []),
        ("RLHF and DPO", ["RLHF", "DPO"], []),
        # single words joined by "and" stay one subject
        ("vision and language", ["vision language"], []),
        ("sense and respond", ["sense respond"], []),
        # no conjunction: never split
        ("mixture of experts", ["mixture of experts"], []),
        ("question answering", ["question answering"], []),
        ("learning with noisy labels", ["learning with noisy labels"], []),
        # qualifiers restrict
        ("KV cache compression for long-context inference",
         ["KV cache compression"], ["long-context inference"]),
        ("hallucination in vision-language models",
         ["hallucination"], ["vision-language models"]),
        ("RAG for question answering, summarization",
         ["RAG"], ["question answering", "summarization"]),
        # an alias in parentheses
        ("retrieval-augmented generation (RAG)", ["retrieval-augmented generation", "RAG"], []),
    ],
)  # fmt: skip
def test_structure(topic, alternatives, qualifier):
    assert labels(parse_topic(topic).words) == (alternatives, qualifier)


def test_too_many_alternatives_is_refused_and_a_handful_is_not():
    members = ["graph", "speech", "robot", "protein", "vision", "music", "chess"]
    parse_topic(", ".join(f"{m} models" for m in members[:MAX_ALTERNATIVES]))
    with pytest.raises(TopicError, match="at most 5 alternatives"):
        parse_topic(", ".join(f"{m} models" for m in members[: MAX_ALTERNATIVES + 1]))


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("learning -learning", "excludes it too"),
        ('"graph neural" networks -graph', "excludes it too"),
        ("author:", "needs part of a name"),
        ("author:.*", "needs part of a name"),
        ("author:[", "needs part of a name"),
        ('author:""', "needs part of a name"),
        ("diffusion author:x", "needs part of a name"),
    ],
)
def test_topics_that_can_never_match_are_refused(topic, message):
    with pytest.raises(TopicError, match=message):
        parse_topic(topic)


ABSTRACTS = [
    ("a", "RAG at scale", "We study retrieval-augmented generation (RAG) for open QA."),
    ("b", "Better RAG", "Retrieval-Augmented Generation (RAG) grounds large language models."),
    ("c", "MoE", "A sparse mixture of experts (MoE) with Low-Rank Adaptation (LoRA)."),
    ("d", "Experts", "Mixture-of-Experts (MoE) layers, see (Table 1) and (ours)."),
    ("e", "Splats", "3D Gaussian Splatting (3DGS) renders scenes; reinforcement learning "
     "from human feedback (RLHF) aligns; key-value (KV) caches; Large Language Models (LLMs)."),
]  # fmt: skip


def test_definitions_spell_the_initials():
    found = {short: stems for short, stems, *_ in definitions(ABSTRACTS[4][2])}
    assert found == {
        "3dgs": ("3d", "gaussian", "splat"),
        "rlhf": ("reinforc", "learn", "human", "feedback"),
        "kv": ("key", "valu"),
        "llm": ("larg", "languag", "model"),
    }
    assert definitions("see (Table 1), our method (ours) and (ViT-B) or (e.g. this)") == []
    assert definitions("a fast sampler (RAG)") == []  # the initials do not match
    moe = definitions(ABSTRACTS[2][2])
    assert [(s, stems) for s, stems, *_ in moe] == [
        ("moe", ("mixtur", "expert")),
        ("lora", ("low", "rank", "adapt")),
    ]


def test_acronyms_need_support_and_match_both_ways():
    table = Acronyms()
    table.add(ABSTRACTS)
    assert table.expansions("rag") == (("retriev", "augment", "generat"),)
    assert table.expansions("moe") == (("mixtur", "expert"),)
    assert table.expansions("lora") == ()  # defined by one paper only
    table.add(ABSTRACTS)  # papers seen before count once
    assert table.expansions("lora") == ()

    def reading(text):
        return read_topic(parse_topic(text).structure, table)

    rag = reading("RAG")
    assert rag.alternatives[0].variants == (("rag",), ("retriev", "augment", "generat"))
    assert describe(rag) == "RAG; RAG = retrieval-augmented generation"
    experts = reading("mixture of experts routing")
    assert experts.alternatives[0].variants == (("mixtur", "expert", "rout"), ("moe", "rout"))
    revision = table.revision
    table.add([("f", "LoRA", "Low-rank adaptation (LoRA) of large models.")])
    assert table.revision > revision
    assert table.expansions("lora") == (("low", "rank", "adapt"),)


def test_describe_shows_lists_and_qualifiers():
    reading = read_topic(parse_topic("hallucination, bias in VLMs").structure)
    assert describe(reading) == "any of: hallucination · bias; only for: VLMs"
    reading = read_topic(parse_topic("hallucination and bias in VLMs").structure)
    assert describe(reading) == "hallucination bias; only for: VLMs"
