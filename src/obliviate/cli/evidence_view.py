"""What ``obliviate evidence`` prints: the measures side by side, the signed gaps with their
bands, a legend, and one verdict line (:mod:`obliviate.evidence`, :mod:`obliviate.bands`)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

#: What the agreement rows of the evidence table mean.
AGREEMENT_LEGEND = ("agree forget/retain: test samples of the forget/kept classes whose "
                    "prediction equals the reference's, %; js forget/retain: mean Jensen-Shannon "
                    "divergence of the outputs to the reference's, nats, lower is closer; "
                    "output-only: the same for the output-only forget of the original")  # fmt: skip


def _columns(report: Any) -> dict[str, dict[str, Any]]:
    ref_title = "retrained" if report.reference_kind == "retrained" else "original (reference)"
    columns = {"model": report.model.flat(), ref_title: report.reference.flat()}
    if report.second_reference is not None:
        columns["retrained, seed 1"] = report.second_reference.flat()
    if report.original is not None:
        columns["original"] = report.original.flat()
    return columns


def evidence_rows(report: Any) -> list[str]:
    """The keys of the measures the evidence table shows: those measured on some model (a
    model of one block has no "block earlier" rows)."""
    from obliviate.evidence import MEASURES

    columns = list(_columns(report).values())
    return [key for key, _, _ in MEASURES if any(c.get(key) is not None for c in columns)]


def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4f}"


def evidence_table(report: Any, name: str) -> Table:
    """Measures of the model, its reference, a retrain with another seed and the original,
    side by side."""
    from obliviate.evidence import MEASURES

    columns = _columns(report)
    table = Table(title=f"evidence: {name}, forget classes {report.forget_classes}")
    table.add_column("measure")
    for i, title in enumerate(columns):
        table.add_column(name if i == 0 else title, justify="right")
    shown = evidence_rows(report)
    for key, label, _ in MEASURES:
        if key in shown:
            table.add_row(label, *[_fmt_value(c.get(key)) for c in columns.values()])
    baseline = report.output_only_agreement or {}
    for key, value in report.agreement.items():
        table.add_row(key.replace("_", " "), _fmt_value(value), *["-"] * (len(columns) - 1))
        if key in baseline:
            table.add_row(f"{key.replace('_', ' ')}, output-only", _fmt_value(baseline[key]),
                          *["-"] * (len(columns) - 1))  # fmt: skip
    if report.ulira is not None:
        u = report.ulira
        table.add_row(f"U-LiRA AUC ({u['n']} shadows per side)", _fmt_value(u["auc"]),
                      *["-"] * (len(columns) - 1))  # fmt: skip
    return table


_PLACE = {"within": "within the band", "shallower": "SHALLOWER than retraining",
          "beyond": "BEYOND retraining"}  # fmt: skip


def describe_evidence(report: Any) -> list[str]:
    """The gaps to the reference, each with its band and where it lies, the legend, and the
    verdict line."""
    from obliviate.bands import GAP_BANDS, NAMES, RATIO_BANDS, ULIRA_MAX_AUC, judge
    from obliviate.evidence import MEASURES

    against = ("a model retrained without the classes" if report.reference_kind == "retrained"
               else "the ORIGINAL model (no retrained reference: gaps say how far the forget "
               "moved, not how close it came to retraining)")  # fmt: skip
    lines = [f"gaps to {against} (model minus reference; a band on both sides):"]
    second = report.second_gaps or {}
    for key, verdict in judge(report).items():
        value = verdict["value"]
        if key in GAP_BANDS:
            low, high = GAP_BANDS[key]
            text = f"{value:+.2f} (band {low:+g}..{high:+g})"
        elif key in RATIO_BANDS:
            low, high = RATIO_BANDS[key]
            text = f"x{value:.2f} (band x{low:g}..x{high:g})"
        elif key == "ulira_auc":
            u = report.ulira
            text = (f"{value:.2f} over {u['n']} shadows per side (at most {ULIRA_MAX_AUC:.2f}, or "
                    f"chance: permutation p {u.get('auc_p_value', float('nan')):.3f})")  # fmt: skip
        else:
            text = f"{value:.3g} (the output-only forget: {report.output_only_agreement[key]:.3g})"
        if f"gap_{key}" in second:
            other = second[f"gap_{key}"]
            text += "; a retrain with another seed: " + (f"x{other:.2f}" if key in RATIO_BANDS
                                                        else f"{other:+.2f}")  # fmt: skip
        lines.append(f"  {NAMES[key]}: {text}: {_PLACE[verdict['place']]}")
    shown = evidence_rows(report)
    lines.append("legend: " + "; ".join([f"{label}: {text}" for key, label, text in MEASURES
                                         if key in shown] + [AGREEMENT_LEGEND]))  # fmt: skip
    lines.append(verdict_line(report))
    return lines


def verdict_line(report: Any) -> str:
    """One line: how deep the forget is, on which measures, against which reference
    (:func:`obliviate.bands.depth_verdict`)."""
    from obliviate.bands import depth_verdict

    verdict = depth_verdict(report)
    n, depth = len(verdict["measures"]), verdict["depth"]

    def listed(names: list[str]) -> str:
        return f"{len(names)} of {n}" + (f" ({', '.join(names)})" if names else "")

    if depth == "not shown deep":
        what = (f"within the bands of the original on {listed(verdict['as_original'])}; without "
                "a retrained reference (--retrain) depth cannot be shown")  # fmt: skip
    else:
        parts = [f"within the band of the retrained model on {listed(verdict['within'])}"]
        if verdict["shallower"]:
            parts.append(f"shallower on {', '.join(verdict['shallower'])}")
        if verdict["beyond"]:
            parts.append(f"beyond retraining on {', '.join(verdict['beyond'])}")
        if depth in ("output only", "not told apart"):
            parts.append(f"within the bands of the original on {listed(verdict['as_original'])}")
        what = "; ".join(parts)
    return f"depth: {depth} — {what} (reference: {report.reference_source or report.reference_kind})"
