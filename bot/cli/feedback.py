"""`papers-bot feedback`: list the reactions in force."""

from __future__ import annotations

import json

from sqlmodel import Session

from bot.cli.common import open_database
from bot.settings import Settings


def cmd_feedback(args, settings: Settings) -> int:
    from bot.matching.feedback import polarity
    from storage import queries

    engine = open_database(settings)
    with Session(engine) as session:
        reactions = queries.reactions_in_force(session=session, channel_id=args.channel)
        titles = {
            p.id: p.title
            for p in queries.get_papers(
                list({r.paper_id for r in reactions}), session=session
            ).values()
        }
    rows = [
        {
            "team": r.team_id,
            "channel": r.channel_id,
            "paper_id": r.paper_id,
            "title": titles.get(r.paper_id, ""),
            "user": r.user_id,
            "reaction": r.reaction,
            "polarity": polarity(r.reaction, settings),
            "message_ts": r.message_ts,
            "at": r.created_at.isoformat(),
        }
        for r in reactions
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("no reactions stored yet")
    else:
        for row in rows:
            sign = {1: "+", -1: "-", 0: " "}[row["polarity"]]
            print(
                f"{sign} {row['channel']:<12} {row['paper_id']:<12} :{row['reaction']}: "
                f"by {row['user']}  {row['title'][:60]}"
            )
    return 0
