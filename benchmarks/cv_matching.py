"""Cross-validated choice of the matching rule's thresholds: one command, one table.

Run from the repo root: `.venv/bin/python benchmarks/cv_matching.py` (a few minutes the
first time, while the papers are encoded; vectors are cached, see `benchmarks/cv_vectors.py`).

Two graded sets, each over its own archive as the bot would hold it:
- the 20 real topics of `../shared/data/relevance_real_dev.json` over the 1,591 papers
  listed in its window (2025-10-01 to 2026-01-31) of `hf_daily_real.json`: index, IDF and
  acronyms from those papers, closeness against all of them;
- the 8 sample topics of `relevance_dev.json` over the 70 sample papers (one day);
- plus channels on subjects each archive lacks (they must get nothing).

For every (topic, paper) pair the product's own functions (`bot.matching.ranking.topic_features`,
`Semantics.closeness`) compute the features once; then each candidate rule is applied with
`bot.matching.ranking.decide`, as `match_topics` applies it, and the posted papers are capped
at DIGEST_MAX_PAPERS per channel and listing day, best first. Scored per topic: precision
(papers graded 1 or 2 among those posted; an empty digest counts 0, an unjudged paper as
not relevant) and core recall (grade-2 papers posted / grade-2 papers).

Selection: among the grid `GRID`, the rule whose worst macro figure over the training topics
(precision and core recall, of each set) is best (ties: their sum), among the rules posting
nothing to any off-subject channel. Leave-one-topic-out over the 28 graded topics: each
topic is scored with the rule chosen on the 27 others, so no threshold has seen the topic
it is scored on. The in-sample figures use the rule chosen on all 28 (the one the bot
ships: `bot.matching.ranking.RULE`). Writes its part of `benchmarks/results/relevance.md`
(`eval_relevance.py` writes the other).
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.cv_vectors import (  # noqa: E402
    cached_vectors,
    load_json,
    sample_items,
    window_items,
)
from benchmarks.eval_real_days import ABSENT_TOPICS  # noqa: E402
from benchmarks.eval_relevance import write_section  # noqa: E402
from bot.matching import ranking  # noqa: E402
from bot.matching.acronyms import Acronyms  # noqa: E402
from bot.matching.embedding import Encoder, bundled_model_dir  # noqa: E402
from bot.matching.index import Bm25Index, Doc  # noqa: E402
from bot.matching.ranking import Rule, decide, parse_topic, topic_features  # noqa: E402
from bot.matching.semantic import Semantics, paper_text  # noqa: E402

DIGEST_MAX_PAPERS = 10
CHUNK = 500  # rules scored at once
# Subjects absent from each archive: no paper of the window has their key word at all
# (checked by search), and those of the evaluations over the same papers
# (`benchmarks/eval_real_days.py`: "maritime law" has its rarer word in one paper on vessel
# routes; the sample's are those of `benchmarks/eval_relevance.py`).
REAL_OFF_TOPICS = (
    "earthquake detection",
    "fraud detection",
    "protein folding",
    "spiking neural networks",
    "seismic imaging",
    *ABSENT_TOPICS,
)
SAMPLE_OFF_TOPICS = (
    "quantum error correction",
    "protein structure prediction",
    "graph neural networks for molecules",
    "time series forecasting",
    "machine translation",
)
GRID = {
    "min_score": (0.5, 0.6, 0.65, 0.7, 0.75, 0.8),
    "min_coverage": (0.6, 0.7, 0.8, 0.9, 1.0),
    "min_qualifier": (0.5, 1.0),
    "near_score": (0.2, 0.3, 0.4),
    "min_closeness": (1.5, 2.0, 2.5, 3.0, math.inf),
    "meaning_only": (4.0, 4.5, 5.0, math.inf),
    "veto_closeness": (-math.inf, 0.0, 1.0, 1.5),
    "partial_coverage": (0.5, 0.6, 0.7),
    "partial_closeness": (2.5, 3.0, 3.5, math.inf),
}


@dataclass
class Case:
    """One channel: its topic's features over an archive, and the grades to score it by."""

    set_name: str
    topic: str
    features: ranking.Features
    z: np.ndarray
    day: np.ndarray  # listing day number of each row
    grades: np.ndarray  # 0/1/2 per row (unjudged: 0)
    cores: int  # grade-2 papers in the whole archive
    off: bool = False


def _capped(case: Case, passes: np.ndarray, score: np.ndarray) -> np.ndarray:
    """`passes` with at most DIGEST_MAX_PAPERS a listing day, best first (score moved by
    closeness in meaning, as in `match_topics`)."""
    rows = np.flatnonzero(passes)
    final = score[rows] + ranking.SEMANTIC_WEIGHT * np.clip(np.nan_to_num(case.z[rows]) / 3, -1, 1)
    order = np.lexsort((-final, case.day[rows]))
    rows, days = rows[order], case.day[rows][order]
    first = np.searchsorted(days, days, side="left")
    kept = np.zeros(len(passes), dtype=bool)
    kept[rows[np.arange(len(rows)) - first < DIGEST_MAX_PAPERS]] = True
    return kept


def posted_rows(case: Case, rule: Rule) -> np.ndarray:
    """Rows the channel gets under `rule`."""
    passes, score, _variant, _meaning = decide(case.features, case.z, rule)
    return np.flatnonzero(_capped(case, passes, score))


def score_case(case: Case, rule: Rule) -> tuple[int, int, int, float, float]:
    """(posted, relevant posted, core posted, precision, core recall)."""
    rows = posted_rows(case, rule)
    grades = case.grades[rows]
    relevant, core = int((grades >= 1).sum()), int((grades == 2).sum())
    precision = relevant / len(rows) if len(rows) else 0.0
    recall = core / case.cores if case.cores else 1.0
    return len(rows), relevant, core, precision, recall


def score_rules(case: Case, rules: Rule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(posted, precision, core recall) of a batch of rules (fields of shape (rules, 1, 1)),
    through the same `decide`; the daily cap is applied rule by rule only where it binds."""
    passes, score, _variant, _meaning = decide(case.features, case.z, rules)
    if not passes.shape[1]:  # nothing within reach of any rule
        none = np.zeros(len(passes))
        return none.astype(np.int64), none, none if case.cores else np.ones(len(passes))
    days = np.unique(case.day, return_inverse=True)[1]
    per_day = passes.astype(np.int32) @ np.eye(days.max() + 1, dtype=np.int32)[days]
    for r in np.flatnonzero((per_day > DIGEST_MAX_PAPERS).any(axis=1)):
        passes[r] = _capped(case, passes[r], score[r])
    counts = passes.astype(np.int64)
    posted = counts.sum(axis=1)
    relevant = counts @ (case.grades >= 1).astype(np.int64)
    core = counts @ (case.grades == 2).astype(np.int64)
    precision = np.where(posted > 0, relevant / np.maximum(posted, 1), 0.0)
    recall = core / case.cores if case.cores else np.ones(len(posted))
    return posted, precision, recall


def archive_cases(
    set_name: str,
    papers: list[tuple[str, dict]],
    topics: dict[str, str],
    labels: dict[str, dict[str, int]],
    off_topics: tuple[str, ...],
    encoder: Encoder | None,
) -> list[Case]:
    """The features of every topic over one archive (index, acronyms, closeness)."""
    docs = [
        Doc(
            id=p["id"],
            title=p["title"],
            abstract=p["summary"],
            authors=tuple(a.get("name", "") for a in p.get("authors", [])),
            upvotes=int(p.get("upvotes", 0)),
        )
        for _day, p in papers
    ]
    index = Bm25Index.build(docs)
    acronyms = Acronyms()
    acronyms.add((d.id, d.title, d.abstract) for d in docs)
    days = sorted({day for day, _p in papers})
    day = np.array([days.index(d) for d, _p in papers])
    ids = [d.id for d in docs]
    semantics = None
    if encoder is not None:
        vectors = cached_vectors([paper_text(d.title, d.abstract) for d in docs], encoder)
        semantics = Semantics(encoder, vectors, zip(ids, vectors, strict=True))
        semantics.warm(parse_topic(t).words for t in [*topics.values(), *off_topics])
    rows = np.arange(len(index))
    cases = []
    for key, text in [*topics.items(), *((None, t) for t in off_topics)]:
        topic = parse_topic(text)
        features = topic_features(index, topic, rows, acronyms=acronyms)
        z = np.full(len(rows), np.nan)
        if semantics is not None:
            z = semantics.closeness(topic.words, index.ids_at(rows.tolist()))
        graded = labels.get(key, {}) if key else {}
        grades = np.array([graded.get(pid, 0) for pid in index.ids_at(rows.tolist())])
        cores = int((grades == 2).sum())
        # Only rows some rule of the grid can let in are kept, to score the grid quickly.
        keep = (features.coverage >= min(GRID["min_coverage"])) & (
            features.scores >= min(GRID["near_score"])
        )
        keep |= features.coverage >= min(GRID["partial_coverage"])
        keep = keep.any(axis=0) | (np.nan_to_num(z, nan=-np.inf) >= min(GRID["meaning_only"]))
        features = ranking.Features(
            features.reading,
            features.variants,
            features.scores[:, keep],
            features.coverage[:, keep],
            None if features.qualifier is None else features.qualifier[keep],
            features.mask[keep],
        )
        cases.append(
            Case(set_name, text, features, z[keep], day[keep], grades[keep], cores, key is None)
        )
    return cases


def all_cases(words_only: bool) -> tuple[list[Case], str]:
    folder = None if words_only else bundled_model_dir()
    encoder = Encoder.load(folder) if folder is not None else None
    real = load_json("relevance_real_dev.json")
    sample = load_json("relevance_dev.json")
    cases = archive_cases(
        "real", window_items(), real["topics"], real["labels"], REAL_OFF_TOPICS, encoder
    )
    cases += archive_cases(
        "sample",
        [("2024-07-29", p) for p in sample_items()],
        sample["topics"],
        sample["labels"],
        SAMPLE_OFF_TOPICS,
        encoder,
    )
    method = encoder.model_id if encoder else "none (words only)"
    return cases, method


def batch(rules: list[Rule]) -> Rule:
    """Many rules as one, each field an array of shape (rules, 1, 1) (see `decide`)."""
    names = [f.name for f in fields(Rule)]
    arrays = {n: np.array([getattr(r, n) for r in rules]).reshape(-1, 1, 1) for n in names}
    return Rule(**arrays)


def grid_rules(words_only: bool = False) -> list[Rule]:
    names = [f.name for f in fields(Rule)]
    grid = dict(GRID)
    if words_only:  # closeness is unknown: its thresholds cannot matter
        grid |= {"near_score": (ranking.NEAR_SCORE,), "min_closeness": (math.inf,)}
        grid |= {"meaning_only": (math.inf,), "veto_closeness": (-math.inf,)}
        grid |= {"partial_coverage": (ranking.PARTIAL_COVERAGE,), "partial_closeness": (math.inf,)}
    rules = []
    for values in itertools.product(*(grid[name] for name in names)):
        rule = Rule(**dict(zip(names, values, strict=True)))
        if (
            rule.near_score <= rule.min_score
            and (math.isfinite(rule.min_closeness) or rule.near_score == grid["near_score"][0])
            and (
                math.isfinite(rule.partial_closeness)
                or rule.partial_coverage == grid["partial_coverage"][0]
            )
        ):
            # near_score only matters with a finite min_closeness, partial_coverage with a
            # finite partial_closeness
            rules.append(rule)
    return rules


def choose(
    precision: np.ndarray,
    recall: np.ndarray,
    off_posts: np.ndarray,
    train: np.ndarray,
    sets: np.ndarray,
) -> int:
    """The rule (row) whose worst macro figure over the `train` topics (columns) is best:
    precision and core recall of each set, as the bar asks for both on both sets (ties: the
    sum); only rules posting nothing off-subject count."""
    worst = np.full(len(precision), np.inf)
    total = np.zeros(len(precision))
    for name in np.unique(sets):
        cols = train & (sets == name)
        for figure in (precision, recall):
            mean = figure[:, cols].mean(axis=1)
            worst, total = np.minimum(worst, mean), total + mean
    objective = worst + 1e-3 * total
    objective[off_posts > 0] = -np.inf
    return int(np.argmax(objective))


def run(words_only: bool) -> str:
    started = time.monotonic()
    cases, method = all_cases(words_only)
    graded = [c for c in cases if not c.off]
    offs = [c for c in cases if c.off]
    rules = grid_rules(words_only or method.startswith("none"))
    precision = np.zeros((len(rules), len(graded)))
    recall = np.zeros((len(rules), len(graded)))
    off_posts = np.zeros(len(rules), dtype=np.int64)
    for start in range(0, len(rules), CHUNK):
        chunk = slice(start, start + CHUNK)
        rule = batch(rules[chunk])
        for j, case in enumerate(graded):
            _n, precision[chunk, j], recall[chunk, j] = score_rules(case, rule)
        for case in offs:
            off_posts[chunk] += score_rules(case, rule)[0]
    everything = np.ones(len(graded), dtype=bool)
    sets = np.array([c.set_name for c in graded])
    shipped = choose(precision, recall, off_posts, everything, sets)
    held_out: list[int] = []
    for j in range(len(graded)):
        train = everything.copy()
        train[j] = False
        held_out.append(choose(precision, recall, off_posts, train, sets))
    return report(cases, graded, offs, rules, shipped, held_out, method, time.monotonic() - started)


def _rule_text(rule: Rule) -> str:
    return ", ".join(f"{f.name}={getattr(rule, f.name)}" for f in fields(Rule))


def report(
    cases: list[Case],
    graded: list[Case],
    offs: list[Case],
    rules: list[Rule],
    shipped: int,
    held_out: list[int],
    method: str,
    seconds: float,
) -> str:
    rule = rules[shipped]
    lines = [
        "## Matching rule chosen by cross-validation over topics",
        "",
        "Generated by `benchmarks/cv_matching.py` (see its docstring for the protocol). Encoder:",
        f"{method}. {len(rules)} candidate rules; {seconds:.0f} s.",
        "",
        f"Rule chosen on all {len(graded)} graded topics (shipped as `ranking.RULE`):",
        f"`{_rule_text(rule)}`.",
        "",
        "Per topic: in-sample = that rule; cross-validated = the rule chosen on the other",
        "topics (leave one topic out). Precision counts unjudged papers as not relevant and",
        "an empty digest as 0.",
        "",
        "| set | topic | core | posted | precision | core recall | CV posted | CV precision "
        "| CV core recall |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sums: dict[str, list[list[float]]] = {}
    for j, case in enumerate(graded):
        n, _rel, _core, p, r = score_case(case, rule)
        cn, _crel, _ccore, cp, cr = score_case(case, rules[held_out[j]])
        sums.setdefault(case.set_name, []).append([p, r, cp, cr])
        lines.append(
            f"| {case.set_name} | {case.topic} | {case.cores} | {n} | {p:.2f} | {r:.2f} | "
            f"{cn} | {cp:.2f} | {cr:.2f} |"
        )
    lines += [
        "",
        "| set | topics | precision | core recall | CV precision | CV core recall |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, rows in sums.items():
        p, r, cp, cr = np.mean(rows, axis=0)
        lines.append(f"| {name} | {len(rows)} | {p:.2f} | {r:.2f} | **{cp:.2f}** | **{cr:.2f}** |")
    lines += ["", "Channels on subjects the archive lacks (must get nothing):", ""]
    lines += ["| set | off-subject channel | posted | CV posted (most over the folds) |"]
    lines += ["|---|---|---:|---:|"]
    for case in offs:
        worst = max(len(posted_rows(case, rules[k])) for k in set(held_out))
        lines.append(
            f"| {case.set_name} | {case.topic} | {len(posted_rows(case, rule))} | {worst} |"
        )
    chosen = [rules[k] for k in held_out]
    lines += ["", "How stable the choice is: each threshold's values over the 28 folds:", ""]
    for f in fields(Rule):
        counts: dict[float, int] = {}
        for r in chosen:
            counts[getattr(r, f.name)] = counts.get(getattr(r, f.name), 0) + 1
        text = ", ".join(f"{v} ({n})" for v, n in sorted(counts.items()))
        lines.append(f"- `{f.name}`: {text}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--words-only", action="store_true", help="the rule used without the sentence encoder"
    )
    words_only = parser.parse_args().words_only
    text = run(words_only)
    if words_only:  # the rule used when the sentence encoder is off
        text = text.replace(
            "(shipped as `ranking.RULE`)", "(`ranking.WORDS_RULE`, without the encoder)"
        )
        text = text.replace("over topics\n", "over topics, by words only\n", 1)
    write_section("cv_matching-words" if words_only else "cv_matching", text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
