"""What emoji mean, and the bounded expansion reactions produce."""

from __future__ import annotations

from types import SimpleNamespace

from bot.matching import feedback
from bot.matching.index import Bm25Index, Doc
from bot.settings import Settings

SETTINGS = Settings()


def r(paper, user, reaction):
    return SimpleNamespace(paper_id=paper, user_id=user, reaction=reaction)


def test_skin_tones_fold_into_base_emoji():
    assert feedback.base_reaction("+1::skin-tone-3") == "+1"
    assert feedback.base_reaction(":Heart:") == "heart"


def test_polarity_from_settings():
    assert feedback.polarity("+1::skin-tone-5", SETTINGS) == 1
    assert feedback.polarity("fire", SETTINGS) == 1
    assert feedback.polarity("-1", SETTINGS) == -1
    assert feedback.polarity("thinking_face", SETTINGS) == 0
    custom = Settings(positive_reactions=frozenset({"thinking_face"}))
    assert feedback.polarity("thinking_face", custom) == 1


def test_each_user_counts_once_per_paper():
    votes = feedback.paper_votes(
        [
            r("p1", "U1", "+1"),
            r("p1", "U1", "heart"),
            r("p1", "U2", "fire"),
            r("p2", "U1", "-1"),
            r("p3", "U1", "eyes_unknown"),
        ],
        SETTINGS,
    )
    assert votes == {"p1": 2, "p2": -1}


def test_expansion_is_bounded_and_favours_shared_terms(seed_docs: list[Doc]):
    index = Bm25Index.build(seed_docs)
    liked = {"2407.20001": 1, "2407.20018": 1, "2407.20053": 1}  # recommendation papers
    weights = feedback.expansion(index, liked)
    assert 0 < len(weights) <= feedback.MAX_TERMS
    assert max(abs(w) for w in weights.values()) <= 1.0
    one_vote = feedback.expansion(index, {"2407.20001": 1})
    assert max(one_vote.values()) < 1.0  # one reaction carries less weight than three
    assert feedback.expansion(index, {}) == {}
