"""Tables (markdown, CSV), plots (PNG + CSV) and a self-contained ``report.html`` of a bench run."""

from __future__ import annotations

import base64
import csv
import html
import math
import statistics
from pathlib import Path
from typing import Any

from obliviate.bench.config import BenchConfig
from obliviate.bench.results import ResultsFile

#: (row key, column title, lower is better, definition) of the summary table, paper's order first.
COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("score", "S", False, "the paper's unlearning score (A_R + (FE + RE) / 2) / 2, in %"),
    ("retain_acc", "A_R", False, "test accuracy on the retained classes, in %"),
    ("forget_err", "FE", False, "test error on the forget classes, in % (100: all forgotten)"),
    ("relearn_err", "RE", False, "forget-class test error after the relearn probe (the final "
     "layer retrained on the frozen features), in %"),
    ("seconds", "Time (s)", True, "the method's own time, in seconds"),
    ("mia_efficacy", "MIA-eff.", False, "share of forget-class training samples that a "
     "membership attack calls non-members, in %"),
    ("kl_to_retrained", "KL to retrained", True, "mean KL divergence from the model retrained "
     "without the forget classes on forget-class test samples, in nats"),
    ("gap_retain_test_acc", "gap A_R", True, "|A_R - the retrained model's A_R|, in points"),
    ("gap_forget_train_acc", "gap forget-train acc", True, "|forget-class training accuracy - "
     "the retrained model's|, in points"),
    ("ev_proto_k10", "Proto k=10", True, "prototype attack: forget-class test samples assigned "
     "to their class by the nearest mean of 10 training samples' features per class, in %"),
    ("ev_proto_gap", "Proto gap", True, "Proto k=10 minus the retrained model's, in points "
     "(> 0: the features hold more of the class than after retraining)"),
    ("ev_relearn_gap", "RE gap", False, "RE minus the retrained model's RE, in points "
     "(< 0: the head relearns the class more easily than after retraining)"),
    ("ev_relearn_steps_ratio", "relearn-time ratio", False, "fine-tune steps on 10 samples per "
     "class to regain 90 % of the original's forget-class accuracy, over the retrained "
     "model's (>= 1: as slow as from retraining)"),
    ("ev_agree_forget", "agree forget", False, "forget-class test samples on which the "
     "prediction equals the retrained model's, in %"),
)  # fmt: skip


def legend() -> list[tuple[str, str]]:
    """``(column title, definition and which way is better)`` for every summary column."""
    return [(title, f"{text}; {'lower' if lower else 'higher'} is better")
            for _, title, lower, text in COLUMNS]  # fmt: skip


def current_rows(config: BenchConfig, results: ResultsFile) -> dict[str, list[dict[str, Any]]]:
    """The rows of this grid (other grids in the same file are ignored), by method, in order."""
    wanted = {config.row_key(m, s): m for s in config.seeds for m in ("original", *config.methods)}
    by_method: dict[str, list[dict[str, Any]]] = {m: [] for m in ("original", *config.methods)}
    for row in results.rows:
        method = wanted.get(row.get("row_key"))
        if method is not None:
            by_method[method].append(row)
    return {m: rows for m, rows in by_method.items() if rows}


def mean_std(values: list[float | None]) -> tuple[float, float] | None:
    """Mean and sample standard deviation (0 for one value); ``None`` if nothing to average."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None
    return statistics.mean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def summary(config: BenchConfig, results: ResultsFile) -> list[dict[str, Any]]:
    """One dict per method: ``n`` seeds and ``(mean, std)`` of every column (or ``None``)."""
    out = []
    for method, rows in current_rows(config, results).items():
        entry: dict[str, Any] = {"method": method, "n": len(rows)}
        for key, *_ in COLUMNS:
            entry[key] = mean_std([r.get(key) for r in rows])
        out.append(entry)
    return out


def _best(entries: list[dict[str, Any]], key: str, lower: bool) -> str | None:
    scored = [(e[key][0], e["method"]) for e in entries
              if e["method"] != "original" and e[key] is not None]  # fmt: skip
    if not scored:
        return None
    return (min if lower else max)(scored)[1]


def _fmt(stat: tuple[float, float] | None, key: str, seeds: int) -> str:
    """``mean ± std`` over seeds; the mean alone for one seed (its spread is unknown)."""
    if stat is None:
        return "-"
    digits = 3 if key in ("seconds", "kl_to_retrained") else 1
    if seeds < 2:
        return f"{stat[0]:.{digits}f}"
    return f"{stat[0]:.{digits}f} ± {stat[1]:.{digits}f}"


def markdown_table(entries: list[dict[str, Any]]) -> str:
    """The paper's layout: S, A_R, FE, RE, time as mean ± std over seeds (the mean alone for
    one seed); best S and time in bold; a legend of every column below."""
    bold = {"score": _best(entries, "score", False), "seconds": _best(entries, "seconds", True)}
    lines = ["| Method | seeds | " + " | ".join(title for _, title, *_ in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]  # fmt: skip
    for e in entries:
        cells = []
        for key, *_ in COLUMNS:
            text = _fmt(e[key], key, e["n"])
            cells.append(f"**{text}**" if bold.get(key) == e["method"] else text)
        lines.append(f"| {e['method']} | {e['n']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- **{title}**: {text}" for title, text in legend()]
    return "\n".join(lines) + "\n"


def write_csv(entries: list[dict[str, Any]], path: Path) -> None:
    """The summary as CSV: ``<key>_mean`` and ``<key>_std`` columns."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "seeds", *[f"{k}_{s}" for k, *_ in COLUMNS
                                              for s in ("mean", "std")]])  # fmt: skip
        for e in entries:
            cells: list[Any] = [e["method"], e["n"]]
            for key, *_ in COLUMNS:
                cells += list(e[key]) if e[key] is not None else ["", ""]
            writer.writerow(cells)


def per_class_table(config: BenchConfig, results: ResultsFile) -> dict[str, dict[int, float]]:
    """Mean per-class test accuracy of every method over seeds."""
    out: dict[str, dict[int, float]] = {}
    for method, rows in current_rows(config, results).items():
        classes = sorted({int(c) for r in rows for c in r["per_class_acc"]})
        out[method] = {}
        for c in classes:
            stat = mean_std([r["per_class_acc"].get(str(c)) for r in rows])
            out[method][c] = stat[0] if stat else math.nan
    return out


def plot_per_class(table: dict[str, dict[int, float]], forget: list[int], path: Path) -> None:
    """Grouped bars: per-class test accuracy of every method (paper Table 6 as a chart)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(table)
    classes = sorted(next(iter(table.values())))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(9, len(classes) * 1.2), 4.5))
    colours = plt.get_cmap("tab20")
    for i, method in enumerate(methods):
        xs = [c + (i - (len(methods) - 1) / 2) * width for c in classes]
        ax.bar(xs, [table[method][c] for c in classes], width=width, label=method,
               color=colours(i % 20))  # fmt: skip
    ax.set_xticks(classes)
    ax.set_xticklabels([f"{c}{' (forget)' if c in forget else ''}" for c in classes], fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("per-class test accuracy after forgetting (mean over seeds)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_per_class_csv(table: dict[str, dict[int, float]], path: Path) -> None:
    classes = sorted(next(iter(table.values())))
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", *[f"class_{c}" for c in classes]])
        for method, accs in table.items():
            writer.writerow([method, *[accs[c] for c in classes]])


def _markdown_to_html_table(markdown: str) -> str:
    lines = [line for line in markdown.strip().splitlines()
             if line.startswith("|") and not set(line) <= set("|-")]  # the table, not the legend
    out = ["<table>"]
    for i, line in enumerate(lines):
        tag = "th" if i == 0 else "td"
        cells = [c.strip() for c in line.strip("|").split("|")]
        rendered = []
        for cell in cells:
            bold = cell.startswith("**") and cell.endswith("**")
            text = html.escape(cell.strip("*"))
            rendered.append(f"<{tag}>{'<b>' + text + '</b>' if bold else text}</{tag}>")
        out.append("<tr>" + "".join(rendered) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def write_report(config: BenchConfig, table_md: str, images: list[Path], path: Path,
                 machine: str) -> None:  # fmt: skip
    """A self-contained HTML page: the grid, the table and every plot embedded as base64."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>obliviate bench</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;"
        "text-align:right}td:first-child{text-align:left}</style></head><body>",
        f"<h1>obliviate bench: {html.escape(config.dataset)} / {html.escape(config.model)}, "
        f"forget {html.escape(str(list(config.forget_classes)))}</h1>",
        f"<p>seeds {html.escape(str(list(config.seeds)))}; measured on {html.escape(machine)}</p>",
        _markdown_to_html_table(table_md),
        "<ul>" + "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(d)}</li>"
                         for t, d in legend()) + "</ul>",
    ]
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(image.stem)}</h2>"
                     f"<img alt='{html.escape(image.stem)}' src='data:image/png;base64,{data}'>")
    parts.append(f"<h2>grid</h2><pre>{html.escape(_config_text(config))}</pre></body></html>")
    path.write_text("\n".join(parts))


def _config_text(config: BenchConfig) -> str:
    import json

    return json.dumps(config.to_dict(), indent=2)


def write_outputs(config: BenchConfig, results: ResultsFile, out: Path) -> dict[str, Path]:
    """table.md, table.csv, per_class.png/.csv and report.html in ``out``; returns the paths."""
    entries = summary(config, results)
    table_md = markdown_table(entries)
    paths = {"table_md": out / "table.md", "table_csv": out / "table.csv",
             "per_class_png": out / "per_class.png", "per_class_csv": out / "per_class.csv",
             "report": out / "report.html"}  # fmt: skip
    paths["table_md"].write_text(table_md)
    write_csv(entries, paths["table_csv"])
    per_class = per_class_table(config, results)
    plot_per_class(per_class, list(config.forget_classes), paths["per_class_png"])
    write_per_class_csv(per_class, paths["per_class_csv"])
    machine = next((r.get("machine", "") for r in results.rows), "")
    write_report(config, table_md, [paths["per_class_png"]], paths["report"], machine)
    return paths


__all__ = ["summary", "markdown_table", "write_outputs"]
