"""The million-paper benchmark's harness, run on 300 papers of the real pool: its restart
really starts from the snapshot, its searches find papers, its compacting start keeps every
paper, its ingest stores and indexes every new paper and replacement, and its report judges
each target from the numbers it was given."""

from __future__ import annotations

import bot.archive.live as archive_module
from benchmarks import bench_million, synthetic
from storage.db import open_engine, upgrade


def test_harness_restarts_from_the_snapshot_searches_and_ingests(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_module, "SNAPSHOT_MIN_PAPERS", 10)
    monkeypatch.setattr(bench_million, "INGEST_DAY_PAPERS", 20)
    monkeypatch.setattr(bench_million, "REPLACED", 5)
    monkeypatch.setattr(archive_module, "RETIRED_SHARE", archive_module.RETIRED_SHARE)  # restored
    cache = str(tmp_path / "cache")
    monkeypatch.setenv("XDG_CACHE_HOME", cache)  # restored after the test
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    engine = open_engine(url)
    upgrade(engine)
    synthetic._fill(engine, 300, lambda _msg: None, "real")
    engine.dispose()

    first = bench_million.start_worker(url, cache, 1, search=False)
    assert first["papers"] == 300 and first["reused"] == 0
    restart = bench_million.start_worker(url, cache, 1, search=True)
    assert restart["papers"] == 300 and restart["reused"] == 300
    assert len(restart["first"]) == len(synthetic.queries()) and restart["hits"] > 0
    compact = bench_million.compact_worker(url, cache)
    assert compact["papers"] == 300
    ingest = bench_million.ingest_worker(url, cache, 300, "real")
    assert [day["new"] for day in ingest["days"]] == [20] * bench_million.INGEST_DAYS
    assert ingest["replaced"]["new"] == 15 and ingest["replaced"]["updated"] == 5
    assert ingest["papers"] == ingest["stored"] == 300 + 20 * bench_million.INGEST_DAYS + 15

    text = bench_million.report(300, "real", 10.0, first, restart, compact, ingest)
    restart["ready_s"] = bench_million.TARGET_START_S + 1
    slow = bench_million.report(300, "real", 10.0, first, restart, compact, ingest)
    assert "| restart to ready ≤ 10 s | " in text and "s | met |" in text
    assert f"| {restart['ready_s']:.1f} s | missed |" in slow
