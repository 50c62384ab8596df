"""`papers-bot search`: search the stored papers."""

from __future__ import annotations

import json

from sqlmodel import Session

from bot.cli.common import UserError, open_database
from bot.settings import Settings


def cmd_search(args, settings: Settings) -> int:
    from bot.archive.live import Archive
    from bot.archive.search import search_papers
    from bot.digest.blocks import paper_url
    from bot.matching.ranking import TopicError
    from bot.subscriptions import Refused

    if not 1 <= args.limit <= 1000:
        raise UserError("--limit must be between 1 and 1000")
    engine = open_database(settings)
    with Session(engine) as session:
        try:
            page = search_papers(
                " ".join(args.query),
                session=session,
                archive=Archive(engine),  # search matches by words only: no encoder
                today=settings.today(),
                limit=args.limit,
            )
        except (Refused, TopicError) as exc:
            raise UserError(str(exc).replace("`/papers search", "`papers-bot search")) from None
    rows = [
        {
            "id": p.id,
            "title": p.title,
            "score": round(score, 4),
            "url": paper_url(p.id),
            "listed_on": p.listed_on.isoformat(),
            "upvotes": p.upvotes,
        }
        for p, score in page.hits
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif not rows:
        print("nothing found; try fewer or broader words")
    else:
        for i, row in enumerate(rows, 1):
            print(f"{i:>3}. {row['score']:7.3f}  {row['title']}\n      {row['url']}")
    return 0
