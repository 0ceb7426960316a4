"""The rank statistics behind benchmarks/README.md's proxy tables (benchmarks/rank_stats.py):
the figures that decide nascell-search's default child budget."""

import importlib.util
import math
import os

import pytest

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "rank_stats.py")
_spec = importlib.util.spec_from_file_location("rank_stats", _PATH)
rank_stats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rank_stats)


def test_kendall_tau_b_by_hand():
    assert rank_stats.kendall_tau([1, 2, 3, 4, 5], [10, 20, 30, 40, 50]) == 1.0
    assert rank_stats.kendall_tau([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == -1.0
    assert rank_stats.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # One pair tied only in a, one only in b, four concordant: 4 / sqrt(5 * 5) (tau-b).
    assert rank_stats.kendall_tau([1, 1, 2, 3], [1, 2, 2, 3]) == pytest.approx(0.8)


def test_spearman_uses_mean_ranks_of_ties():
    assert rank_stats.spearman([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)
    # ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4): Pearson of the ranks
    assert rank_stats.spearman([7, 7, 8, 9], [1, 2, 3, 4]) == pytest.approx(
        0.9486832980505138)


def test_a_proxy_row_ranks_the_diverged_last_and_reports_the_trained_cells_alone():
    inf = math.inf
    # (proxy, reference, cpu): two cells diverge under both; the three trained ones are
    # ordered backwards by the proxy.
    pairs = [(300.0, 100.0, 10.0), (200.0, 150.0, 10.0), (100.0, 200.0, 10.0),
             (inf, inf, 1.0), (inf, inf, 1.0)]
    row, (cells, tau, cpu) = rank_stats.proxy_row("p", pairs)
    assert cells == 5 and cpu == pytest.approx(6.4)
    # 3 discordant pairs among the trained, 6 concordant ones trained-vs-diverged, 1 joint tie
    assert tau == pytest.approx((6 - 3) / 9)
    assert "| -1.000 (3) |" in row and "| 2 / 2 |" in row
    assert rank_stats.proxy_row("p", pairs[:2])[1][0] == 2  # under 3 cells: no statistics
