"""The kernel benchmark runs, and finds the C loops giving numpy's floats at its sizes."""

from __future__ import annotations

import pytest

from benchmarks import bench_kernels
from bot.matching.index import scoring


def test_the_c_loops_give_numpys_floats_at_benchmark_size():
    if scoring.add_weights is None:
        pytest.skip("the C extension was not built (no C compiler at install)")
    result = bench_kernels.worker(reps=1)
    assert len(result["rows"]) == len(bench_kernels.LISTS) + len(bench_kernels.FOUND)
    assert all(same for *_timing, same in result["rows"])
    table = bench_kernels.report(result, 1)
    assert table.count("| True |") == len(result["rows"])
