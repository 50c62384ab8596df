"""Why BM25's posting sums are written in C: the C loops against numpy (and numba, if installed).

`bot/matching/index/_kernels.c` sums a posting list into a score per doc (`Bm25.scores`) and
finds some rows in one (`scoring.scores_at`). This times both against the numpy code they
replace, on posting lists the size of a million-paper archive's common words (rows spread
over 1,000,000 docs, term frequencies 1 to 4), and checks that the floats are the same. If
numba is importable (it is not a dependency), its compiled version of the same loop is
timed too, with what importing and compiling it adds to the process's resident memory:
numba is the library that would otherwise do this job. Writes `results/kernels.md`.

    .venv/bin/python benchmarks/bench_kernels.py [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402

DOCS = 1_000_000
LISTS = (100_000, 500_000, 900_000)  # postings of one word: rare-ish to "model"
FOUND = (1_000, 100_000)  # rows `scores_at` looks up in a 500,000-posting list
C = 2.5  # idf x (k1 + 1)


def posting_list(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.sort(rng.choice(DOCS, size=size, replace=False)).astype(np.int32)
    tf = rng.choice(np.array([1, 1, 1, 2, 2, 3, 4], np.uint16), size=size)
    return rows, tf


def numpy_sum(out, rows, tf, norm) -> None:  # `Bm25.scores` without the C loop
    added = np.multiply(tf, C, dtype=np.float64)
    below = norm[rows]
    below += tf
    added /= below
    if len(rows) * 16 > len(out):
        out += np.bincount(rows, weights=added, minlength=len(out))
    else:
        out[rows] += added


def numpy_at(out, wanted, rows, tf, norm) -> None:  # `scores_at` without the C loop
    at = np.minimum(np.searchsorted(rows, wanted.astype(np.int32)), len(rows) - 1)
    found = np.flatnonzero(rows[at] == wanted)
    t = tf[at[found]]
    out[found] += 1.0 * (np.multiply(t, C, dtype=np.float64) / (norm[wanted[found]] + t))


def best(function, reps: int) -> tuple[float, np.ndarray]:
    times, out = [], None
    for _ in range(reps):
        started = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - started)
    return min(times), out


def worker(reps: int) -> dict:
    from bot.matching.index import scoring

    if scoring.add_weights is None:
        raise SystemExit("the C extension is not built: reinstall with a C compiler")
    rng = np.random.default_rng(0)
    norm = 1.5 * (0.25 + 0.75 * rng.uniform(0.3, 2.5, DOCS))
    rows_out = []
    for size in LISTS:
        rows, tf = posting_list(rng, size)

        def with_numpy(rows=rows, tf=tf):
            out = np.zeros(DOCS)
            numpy_sum(out, rows, tf, norm)
            return out

        def with_c(rows=rows, tf=tf):
            out = np.zeros(DOCS)
            scoring.add_weights(out, rows, tf, norm, C, 1.0)
            return out

        (t_np, a), (t_c, b) = best(with_numpy, reps), best(with_c, reps)
        rows_out.append(["sum a list into every doc", size, t_np, t_c, bool(np.array_equal(a, b))])
    rows, tf = posting_list(rng, 500_000)
    for size in FOUND:
        wanted = np.sort(rng.choice(DOCS, size=size, replace=False)).astype(np.int64)

        def at_numpy(wanted=wanted):
            out = np.zeros(len(wanted))
            numpy_at(out, wanted, rows, tf, norm)
            return out

        def at_c(wanted=wanted):
            out = np.zeros(len(wanted))
            scoring.add_weights_at(out, wanted, rows, tf, norm, C, 1.0)
            return out

        (t_np, a), (t_c, b) = best(at_numpy, reps), best(at_c, reps)
        same = bool(np.array_equal(a, b))
        rows_out.append(["find rows in a 500,000 list", size, t_np, t_c, same])
    return {"rows": rows_out, "numba": numba_worker(reps, norm)}


def numba_worker(reps: int, norm: np.ndarray) -> dict | None:
    """The same sum compiled by numba, and the memory its import and compile add."""
    before = common.status_mb("VmRSS"), common.anon_mb()
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(nogil=True)
    def add(out, rows, tf, norm, c):
        for i in range(rows.size):
            t = np.float64(tf[i])
            out[rows[i]] += (t * c) / (norm[rows[i]] + t)

    rows, tf = posting_list(np.random.default_rng(1), LISTS[-1])
    add(np.zeros(DOCS), rows, tf, norm, C)  # compile
    after = common.status_mb("VmRSS"), common.anon_mb()

    def run():
        out = np.zeros(DOCS)
        add(out, rows, tf, norm, C)
        return out

    seconds, _out = best(run, reps)
    return {
        "version": numba.__version__,
        "size": LISTS[-1],
        "s": seconds,
        "rss_mb": after[0] - before[0],
        "anon_mb": after[1] - before[1],
    }


def report(result: dict, reps: int) -> str:
    rows = [
        [what, f"{size:,}", f"{1000 * t_np:.2f}", f"{1000 * t_c:.2f}", f"{t_np / t_c:.1f}x", same]
        for what, size, t_np, t_c, same in result["rows"]
    ]
    text = [
        "# BM25's posting sums: C against numpy\n\n",
        f"Generated by `benchmarks/bench_kernels.py` on {time.strftime('%Y-%m-%d')} "
        f"({common.machine()}; a shared, noisy machine). Best of {reps} runs each; "
        f"{DOCS:,} docs; rows spread at random, term frequencies 1 to 4.\n\n",
        common.table(
            ["what", "postings or rows", "numpy ms", "C ms", "speed-up", "same floats"], rows
        ),
    ]
    numba = result["numba"]
    if numba is None:
        text.append("\nnumba is not installed here, so it was not measured.\n")
    else:
        text.append(
            f"\nnumba {numba['version']} (`@njit`, the same loop) summed {numba['size']:,} "
            f"postings in {common.ms(numba['s'])} ms, but importing and compiling it added "
            f"{numba['rss_mb']:.0f} MB resident ({numba['anon_mb']:.0f} MB anonymous, the rest "
            "its LLVM library mapped), against the C extension's few kilobytes: at a million "
            "papers that alone would take the bot over its 1 GB memory target.\n"
        )
    return "".join(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.reps)))
        return 0
    result = common.run_worker(Path(__file__), "--reps", str(args.reps))
    common.write_result("kernels", report(result, args.reps))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
