"""Does team feedback help? A simulated channel likes one subtopic on day one; day two is measured.

A channel follows a broad topic that lets through papers of many subtopics. For each
subtopic of `relevance_dev.json`, the 70 sample papers are split into two days: the
subtopic's graded papers alternate between day one and day two (in id order), the other
papers too. On day one the channel's digest (`DIGEST_MAX_PAPERS` papers) is posted and the
team reacts 👍 on the papers graded for the subtopic, and on nothing else. On day two the
channel ranks the other half with and without the Rocchio expansion built from those
votes (`bot.matching.feedback.expansion`, as `bot.digest.planning` uses it), and we compare
nDCG@5 and P@5 of the day-two ranking against the subtopic's grades. The topic threshold is
the same with and without feedback, so the set of papers that can be posted does not change:
only the order.
Subtopics with fewer than two graded papers passing on day two, or no 👍 on day one, are
left out (nothing to measure).

Run: `python benchmarks/feedback_eval.py` (writes `benchmarks/results/feedback.md`).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.matching import feedback  # noqa: E402
from bot.matching.index import Bm25Index, Doc  # noqa: E402
from bot.matching.ranking import match_topics, parse_topic  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CHANNEL_TOPICS = ("learning", "image")
DIGEST_MAX_PAPERS = 20


def ndcg(ranked: list[str], grades: dict[str, int], k: int = 5) -> float:
    dcg = sum(grades.get(p, 0) / math.log2(i + 2) for i, p in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    best = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / best if best else 0.0


def evaluate(index: Bm25Index, ids: list[str], labels: dict, channel_topic: str) -> list[dict]:
    topics = [parse_topic(channel_topic)]
    rows = []
    for key, name in labels["topics"].items():
        grades = labels["labels"][key]
        graded = sorted(grades)
        others = [i for i in ids if i not in grades]
        day_one, day_two = graded[0::2] + others[0::2], graded[1::2] + others[1::2]
        posted = match_topics(index, topics, day_one, limit=DIGEST_MAX_PAPERS)
        votes = {m.paper_id: 1 for m in posted if m.paper_id in grades}
        extra = feedback.expansion(index, votes)
        before = [m.paper_id for m in match_topics(index, topics, day_two, limit=len(ids))]
        after_matches = match_topics(index, topics, day_two, limit=len(ids), extra_terms=extra)
        after = [m.paper_id for m in after_matches]
        judged = {p: g for p, g in grades.items() if p in before}
        if len(judged) < 2 or not votes:
            continue
        rows.append(
            {
                "channel": channel_topic,
                "subtopic": name,
                "liked": len(votes),
                "judged": len(judged),
                "ndcg_before": ndcg(before, judged),
                "ndcg_after": ndcg(after, judged),
                "p5_before": sum(1 for p in before[:5] if p in grades) / 5,
                "p5_after": sum(1 for p in after[:5] if p in grades) / 5,
                "boosted": sum(1 for m in after_matches if m.boosted),
                "same_set": sorted(before) == sorted(after),
            }
        )
    return rows


def main() -> int:
    items = json.loads((DATA / "seed_daily_papers.json").read_text())
    labels = json.loads((DATA / "relevance_dev.json").read_text())
    docs = [
        Doc(i["paper"]["id"], i["paper"]["title"], i["paper"]["summary"], (), i["paper"]["upvotes"])
        for i in items
    ]
    index = Bm25Index.build(docs)
    ids = sorted(d.id for d in docs)
    lines = [
        "| channel topic | liked subtopic | 👍 day one | graded on day two | nDCG@5 before "
        "| nDCG@5 after | P@5 before | P@5 after | marked lifted | same papers eligible |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    everything = []
    for channel_topic in CHANNEL_TOPICS:
        rows = evaluate(index, ids, labels, channel_topic)
        everything += rows
        for r in rows:
            lines.append(
                f"| {r['channel']} | {r['subtopic']} | {r['liked']} | {r['judged']} "
                f"| {r['ndcg_before']:.3f} | {r['ndcg_after']:.3f} | {r['p5_before']:.2f} "
                f"| {r['p5_after']:.2f} | {r['boosted']} | {'yes' if r['same_set'] else 'no'} |"
            )
    n = len(everything) or 1
    keys = ("ndcg_before", "ndcg_after", "p5_before", "p5_after")
    mean = {k: sum(r[k] for r in everything) / n for k in keys}
    lines.append(
        f"| **mean of {len(everything)}** | | | | **{mean['ndcg_before']:.3f}** "
        f"| **{mean['ndcg_after']:.3f}** | **{mean['p5_before']:.2f}** "
        f"| **{mean['p5_after']:.2f}** | | |"
    )
    table = "\n".join(lines)
    print(table)
    out = ROOT / "benchmarks" / "results" / "feedback.md"
    doc = (__doc__ or "").split("Run:")[0].strip()
    out.write_text(
        "# Feedback evaluation\n\nGenerated by `python benchmarks/feedback_eval.py`.\n\n"
        f"{doc}\n\n{table}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
