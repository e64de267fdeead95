"""``qimeng report RUN``: a Markdown report and one standalone HTML page (plots embedded as base64
PNG) of a bench run: metrics, counts per status, speed-up distribution, fast_p curve, per-problem bars.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from qimeng.kernels.store import Store
from qimeng.core.verdict import BadInput
from qimeng.kernels.bench.metrics import BASELINES, BenchMetrics, ProblemOutcome, compute_metrics, speedup_over

PLOT_NAMES = ("speedup_distribution", "fast_p_curve", "per_problem")
_COLOURS = {"eager": "#1f77b4", "compile": "#ff7f0e"}


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    html: Path
    plots: dict[str, Path]


def load_metrics(store: Store, run: str) -> tuple[BenchMetrics, dict[str, Any]]:
    """The metrics of ``run`` and its config; ``BadInput`` when the store has no such run."""
    config = store.run_config(run)
    if config is None:
        known = ", ".join(r.name for r in store.runs()) or "none"
        raise BadInput(f"{store.path}: no run named {run!r} (runs: {known})")
    baselines = tuple(dict.fromkeys((*BASELINES, *config.get("baselines", ()))))
    return compute_metrics(store.evaluations(run), config.get("problems"), baselines), config


def write_report(store: Store, run: str, out_dir: Path) -> ReportFiles:
    """Write ``report.md``, ``report.html`` and the plots (PNG) of ``run`` into ``out_dir``."""
    metrics, config = load_metrics(store, run)
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs = {name: _png(figure) for name, figure in plot_figures(metrics).items()}
    plot_paths = {}
    for name, data in pngs.items():
        plot_paths[name] = out_dir / f"{name}.png"
        plot_paths[name].write_bytes(data)
    tables = _tables(metrics)
    header = _header(run, config, metrics, str(store.path))
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(render_markdown(header, tables, {n: p.name for n, p in plot_paths.items()}))
    html_path.write_text(render_html(header, tables, pngs))
    return ReportFiles(md_path, html_path, plot_paths)


# -- tables -----------------------------------------------------------------------------------------

Table = tuple[str, list[str], list[list[str]]]  # title, column names, rows


def _fmt(value: float | None, suffix: str = "", digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}g}{suffix}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _header(run: str, config: dict[str, Any], metrics: BenchMetrics, store_path: str) -> list[tuple[str, str]]:
    versions: dict[str, str] = {}
    for outcome in metrics.problems:
        for record in outcome.samples:
            versions = versions or record.result.versions
    items = [("run", run), ("store", store_path),
             ("generated", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
    for key in ("device", "baselines", "correctness_trials", "timing_trials", "small",
                "problems_dir", "candidates_dir"):
        if key in config:
            items.append((key, str(config[key])))
    items += [(k, str(v)) for k, v in sorted(versions.items())]
    return items


def _tables(m: BenchMetrics) -> list[Table]:
    summary = [
        ["problems", str(m.n_problems)],
        ["samples (evaluated pairs)", str(m.n_samples)],
        ["problems without a candidate", str(len(m.missing))],
        ["correctness rate (correct samples / samples)", _pct(m.correctness_rate)],
        ["solved rate (problems with a correct sample)", _pct(m.solved_rate)],
        ["flagged samples (correct, in no score: listed below)", str(m.flagged_samples)],
        ["samples timed without the GPU lock (timing_unlocked)", str(m.timing_unlocked)],
        ["correct samples without a meaningful timing", str(m.untimed_correct)],
        ["median roofline share (roofline time / candidate time)", _fmt(m.median_roofline_share)],
        *([f"pass@{k} (unbiased, over problems)", _pct(v)] for k, v in m.pass_at_k.items()),
    ]
    thresholds = sorted(next(iter(m.fast_p.values()), {}))
    speed = [[b, *(_pct(m.fast_p[b][p]) for p in thresholds), _fmt(m.geomean_speedup[b], "x"),
              _fmt(m.median_speedup[b], "x"), str(m.timed_problems[b])] for b in m.fast_p]
    statuses = [[s, str(n)] for s, n in m.status_counts.items()]
    baselines = list(m.fast_p)
    per_problem = [_problem_row(o, baselines) for o in m.problems]
    flagged = [[f.problem, f.candidate, _fmt(f.speedup, "x"), ", ".join(f.flags), _short(f.reason)] for f in m.flagged]
    return [
        ("Summary", ["metric", "value"], summary),
        ("Speed-up", ["baseline", *(f"fast_{p:g}" for p in thresholds), "geomean", "median", "timed problems"],
         speed),
        ("Counts per status (samples)", ["status", "samples"], statuses),
        ("Problems (best sample)", ["problem", "samples", "best candidate", "status", "ref ms", "candidate ms",
                                    *(f"vs {b}" for b in baselines), "flags", "reason"], per_problem),
        ("Flagged samples (not counted in any score)", ["problem", "candidate", "measured vs eager", "flags",
                                                         "reason"], flagged),
    ]


def _short(text: str) -> str:
    return text if len(text) <= 160 else text[:157] + "..."


def _problem_row(outcome: ProblemOutcome, baselines: list[str]) -> list[str]:
    best = outcome.best
    if best is None:
        return [outcome.problem, "0", "–", "missing", "–", "–", *("–" for _ in baselines), "", "no candidate"]
    r = best.result
    reason = _short(r.reason)
    return [outcome.problem, str(len(outcome.samples)), best.candidate, r.status.value, _fmt(r.ref_ms, digits=4),
            _fmt(r.candidate_ms, digits=4), *(_fmt(speedup_over(r, b), "x") for b in baselines),
            ", ".join(r.flags), reason]


# -- rendering --------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(header: list[tuple[str, str]], tables: list[Table], plot_files: dict[str, str]) -> str:
    lines = [f"# qimeng bench report: {dict(header)['run']}", ""]
    lines += [f"- **{k}**: {_md_cell(v)}" for k, v in header[1:]]
    for title, columns, rows in tables:
        lines += ["", f"## {title}", "", "| " + " | ".join(columns) + " |",
                  "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({file})" for name, file in plot_files.items()]
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}
td.ok{color:#137333}td.bad{color:#b3261e}"""


def render_html(header: list[tuple[str, str]], tables: list[Table], pngs: dict[str, bytes]) -> str:
    esc = html.escape
    run = dict(header)["run"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>qimeng bench: {esc(run)}</title>"
             f"<style>{_CSS}</style></head><body><h1>qimeng bench report: {esc(run)}</h1><ul>"]
    parts += [f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in header[1:]]
    parts.append("</ul>")
    for title, columns, rows in tables:
        parts.append(f"<h2>{esc(title)}</h2><table><tr>" + "".join(f"<th>{esc(c)}</th>" for c in columns) + "</tr>")
        for row in rows:
            cells = []
            for column, cell in zip(columns, row):
                css = ("ok" if cell == "ok" else "bad") if column == "status" else ""
                cells.append(f"<td class='{css}'>{esc(cell)}</td>" if css else f"<td>{esc(cell)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Plots</h2>")
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode()
        parts.append(f"<img alt='{esc(name)}' src='data:image/png;base64,{encoded}'>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- plots ------------------------------------------------------------------------------------------

def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _sample_speedups(m: BenchMetrics, baseline: str) -> list[float]:
    values = (speedup_over(r.result, baseline) for o in m.problems for r in o.samples)
    return [v for v in values if v is not None]


def plot_figures(m: BenchMetrics) -> dict[str, Figure]:
    """The three plots of a report, as matplotlib figures (no pyplot: safe in any thread)."""
    return {"speedup_distribution": _distribution(m), "fast_p_curve": _fast_p_curve(m),
            "per_problem": _per_problem(m)}


def _no_data(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")


def _distribution(m: BenchMetrics) -> Figure:
    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    data = {b: _sample_speedups(m, b) for b in m.fast_p}
    values = [v for vs in data.values() for v in vs]
    if values:
        import numpy as np

        low, high = min(values + [1.0]), max(values + [1.0])
        bins = np.geomspace(low / 1.05, high * 1.05, 30)
        for baseline, vs in data.items():
            if vs:
                ax.hist(vs, bins=bins, alpha=0.6, label=f"vs {baseline} ({len(vs)})",
                        color=_COLOURS.get(baseline))
        ax.set_xscale("log")
        from matplotlib.ticker import FuncFormatter

        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
        ax.axvline(1.0, color="k", lw=1, ls="--")
        ax.legend()
    else:
        _no_data(ax, "no correct, timed samples")
    ax.set_xlabel("speed-up (baseline time / candidate time), log scale")
    ax.set_ylabel("samples")
    ax.set_title("Speed-up distribution (correct samples)")
    return fig


def _fast_p_curve(m: BenchMetrics) -> Figure:
    import numpy as np

    from qimeng.kernels.bench.metrics import fast_p

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    solved = sum(o.solved for o in m.problems)
    top = max([2.5] + [s for o in m.problems for s in o.speedups.values() if s is not None]) * 1.1
    ps = np.linspace(0.0, top, 300)
    for baseline in m.fast_p:
        speedups = [o.speedups[baseline] for o in m.problems]
        curve = [fast_p(speedups, m.n_problems, float(p), solved=solved) for p in ps]
        ax.plot(ps, curve, label=f"vs {baseline}", color=_COLOURS.get(baseline))
        marks = sorted(m.fast_p[baseline])
        ax.scatter(marks, [m.fast_p[baseline][p] for p in marks], color=_COLOURS.get(baseline), zorder=3)
    ax.set_xlabel("speed-up threshold p")
    ax.set_ylabel("fast_p (share of problems)")
    ax.set_ylim(0, 1.05)
    ax.set_title("fast_p: correct and faster than p times the baseline")
    ax.legend()
    return fig


def _per_problem(m: BenchMetrics) -> Figure:
    names = [o.problem for o in m.problems]
    fig = Figure(figsize=(8, max(2.5, 0.28 * len(names) + 1.2)))
    ax = fig.subplots()
    if not names:
        _no_data(ax, "no problems")
        return fig
    ys = range(len(names))
    width = 0.8 / max(1, len(m.fast_p))
    for i, baseline in enumerate(m.fast_p):
        values = [o.speedups[baseline] or 0.0 for o in m.problems]
        ax.barh([y + i * width for y in ys], values, height=width, label=f"vs {baseline}",
                color=_COLOURS.get(baseline))
    for y, outcome in zip(ys, m.problems):
        best = outcome.best
        if not outcome.solved:
            status = best.result.status.value if best else "missing"
            ax.text(0.0, y, f"  {status}", va="center", fontsize=8, color="#b3261e")
    ax.axvline(1.0, color="k", lw=1, ls="--")
    ax.set_yticks([y + width * (len(m.fast_p) - 1) / 2 for y in ys], names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("best speed-up of a correct sample (0: none)")
    ax.set_title("Per-problem speed-up")
    ax.legend(loc="lower right")
    return fig


def report_command(run: str, out: Path | None) -> int:
    """``qimeng report RUN``: returns the exit status (2 when the run does not exist)."""
    from rich.console import Console

    from qimeng.settings import Settings

    console = Console(stderr=True)
    settings = Settings.from_env()
    try:
        with Store.open(settings) as store:
            files = write_report(store, run, out or settings.work_dir / "reports" / run)
    except BadInput as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    console.print(f"wrote {files.markdown} and {files.html}")
    return 0


def export_command(run: str | None, out: Path) -> int:
    """``qimeng export [RUN] --out FILE.jsonl``: one JSON object per stored evaluation."""
    import json

    from rich.console import Console

    from qimeng.kernels.result import integrity_flags
    from qimeng.settings import Settings

    console = Console(stderr=True)
    with Store.open(Settings.from_env()) as store:
        if run is not None and store.run_config(run) is None:
            console.print(f"[red]error:[/red] {store.path}: no run named {run!r}")
            return 2
        out.parent.mkdir(parents=True, exist_ok=True)
        count = 0
        with out.open("w") as handle:
            for record in store.iter_evaluations(run):
                row = {**record.to_json(), "clean": record.result.clean,
                       "integrity_flags": integrity_flags(record.result.flags)}
                handle.write(json.dumps(row, sort_keys=True) + "\n")
                count += 1
    console.print(f"wrote {count} evaluation(s) to {out}")
    return 0
