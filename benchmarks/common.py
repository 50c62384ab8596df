"""Measuring helpers shared by `benchmarks/bench_*.py`: memory, percentiles, tables, workers.

Each benchmark runs its measurements in worker subprocesses (`run_worker`), so that every
resident-memory figure is that of a fresh process doing one thing, and prints a Markdown
table that it also writes to `benchmarks/results/<name>.md`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PYTHON = sys.executable


def status_mb(field: str, pid: int | str = "self") -> float:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in MB; 0 if unavailable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def rss_mb(pid: int | str = "self") -> float:
    return status_mb("VmRSS", pid)


def peak_mb(pid: int | str = "self") -> float:
    return status_mb("VmHWM", pid)


def anon_mb(pid: int | str = "self") -> float:
    """The anonymous part of the resident memory (RssAnon): the process's own pages, as
    opposed to pages of mapped files, which the kernel can drop and read again."""
    return status_mb("RssAnon", pid)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column (l or r), default l then r."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpus = os.cpu_count()
    return (
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{cpus} CPUs, {platform.system()} {platform.release()}"
    )


def write_result(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return path


def run_worker(script: Path, *args: str, timeout: float = 1800, env: dict | None = None) -> dict:
    """Run `script --worker args...` in a fresh interpreter; its last stdout line is JSON."""
    started = time.monotonic()
    done = subprocess.run(
        [PYTHON, str(script), "--worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"worker {args} failed with status {done.returncode}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["worker_seconds"] = time.monotonic() - started
    return result


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"
