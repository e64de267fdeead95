"""The HTML report reads plainly: no series of a baseline that was not run, log axes ticked at 1/2/5,
zero counts not shown as alarms."""

from __future__ import annotations

import re

import pytest

from qimeng.core.verdict import Status
from qimeng.kernels.bench.metrics import BenchMetrics
from qimeng.kernels.bench.report import load_metrics, plot_figures, write_report
from qimeng.kernels.result import EvalResult
from qimeng.kernels.store import Store


@pytest.fixture()
def eager_only(tmp_path):
    """A run with eager as its only baseline: speed-ups 0.3x, 1.5x and 12x; one incorrect sample."""
    with Store(tmp_path / "q.db") as store:
        store.put_run("r", {"device": "cpu", "baselines": ["eager"], "problems": ["a", "b", "c", "d"]})
        for name, speedup in (("a", 0.3), ("b", 1.5), ("c", 12.0)):
            store.record_eval("r", name, name, EvalResult(status=Status.OK, ref_ms=speedup, candidate_ms=1.0,
                                                          speedup=speedup, baselines_ms={"eager": speedup}))
        store.record_eval("r", "d", "d", EvalResult(status=Status.INCORRECT, reason="mismatch"))
        yield store


def _metrics(store: Store) -> BenchMetrics:
    return load_metrics(store, "r")[0]


def test_no_compile_series_when_compile_was_not_run(eager_only, tmp_path):
    assert list(_metrics(eager_only).fast_p) == ["eager"]
    for name, figure in plot_figures(_metrics(eager_only)).items():
        ax = figure.axes[0]
        labels = ax.get_legend_handles_labels()[1]
        assert all("compile" not in label for label in labels), name
        assert ax.get_legend() is None, name  # one series: named in the title, no legend
    markdown = write_report(eager_only, "r", tmp_path / "rep").markdown.read_text()
    assert "vs compile" not in markdown and "| compile |" not in markdown


def test_the_speedup_axis_is_ticked_at_1_2_5(eager_only):
    ax = plot_figures(_metrics(eager_only))["speedup_distribution"].axes[0]
    low, high = ax.get_xlim()
    ticks = [t for t in ax.xaxis.get_majorticklocs() if low <= t <= high]
    mantissas = {round(t / 10 ** int(f"{t:e}".split("e")[1]), 6) for t in ticks}
    assert mantissas <= {1.0, 2.0, 5.0} and len(ticks) >= 4  # 0.5, 1, 2, 5, 10 at least over 0.3..12
    figure = ax.figure
    figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert "1x" in labels and "2x" in labels and "0.5x" in labels
    assert not [t.get_text() for t in ax.get_xminorticklabels() if t.get_text()]


def test_zero_counts_are_not_red(eager_only, tmp_path):
    page = write_report(eager_only, "r", tmp_path / "rep").html.read_text()
    rows = dict(re.findall(r"<tr><td(?: class='\w+')?>(\w+)</td><td>(\d+)</td></tr>", page))
    assert rows["incorrect"] == "1" and rows["timeout"] == "0"
    assert "<td class='bad'>incorrect</td><td>1</td>" in page
    assert "<td>timeout</td><td>0</td>" in page and "<td class='bad'>timeout</td>" not in page
