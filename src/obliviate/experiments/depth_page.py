"""docs/results/depth.md from the rows of ``obliviate.experiments.depth``: the summaries per
suite and method, the goals, the verdict, plots and per-request tables."""

from __future__ import annotations

import logging
import math
import shutil
import statistics
from pathlib import Path

from typing import Any

from obliviate.experiments.depth_prose import ATTACKER_HEAD, ATTACKER_LEGEND, LEGEND, PAGE_HEAD
from obliviate.experiments.engine import markdown_table, read_rows, write_page
from obliviate.training import TrainConfig

log = logging.getLogger(__name__)
SUITES = {
    "fc": ("fashion-mnist", "fc", TrainConfig(epochs=10)),
    "convnet": ("fashion-mnist", "convnet", TrainConfig(epochs=10)),
    "digits": ("digits", "fc", TrainConfig(epochs=40, lr=0.1)),
    "resnet": ("fashion-mnist", "resnet18", TrainConfig(epochs=4)),
}
#: The architectures' options per suite (``model_kwargs`` of :func:`obliviate.train`).
MODEL_OPTIONS = {"resnet": {"width": 8}}


def arch_label(suite: str) -> str:
    """The suite's architecture as the page names it, with its options (``resnet18 width=8``)."""
    arch = SUITES[suite][1]
    options = " ".join(f"{k}={v}" for k, v in MODEL_OPTIONS.get(suite, {}).items())
    return f"{arch} {options}" if options else arch
REQUESTS = [[c] for c in range(10)] + [[1, 8], [2, 4, 6]]
#: label -> (method, hyperparameters, data given, force)
ROWS = {
    "mnemonic": ("mnemonic", {}, False, False),
    "mnemonic-deep-data": ("mnemonic", {"depth": "features"}, True, False),
    "mnemonic-deep": ("mnemonic", {"depth": "features"}, False, True),
    "mnemonic-output": ("mnemonic", {"depth": "output"}, False, False),
    "paper": ("mnemonic", {"lambda1": 1e-3, "lambda2": 10.0}, False, True),
    "ssd": ("ssd", {}, True, True),
    "sfdn": ("sfdn", {}, True, True),
    "fastmu": ("fastmu", {}, True, True),
    "lwsf": ("lwsf", {}, False, True),
    "erm-ktp": ("erm-ktp", {}, True, True),
    "finetune": ("finetune", {}, True, True),
    "gradient-ascent": ("gradient-ascent", {}, True, True),
    "random-label": ("random-label", {}, True, True),
    "retrain": ("retrain", {}, True, True),
    # not a method: a model retrained with another seed, judged against the reference like
    # any forget; what "indistinguishable from retraining" looks like on each measure
    "retrain-seed+1": ("retrain", {}, True, True),
}
GROUPS = {
    "mnemonic-variants": ["mnemonic", "mnemonic-deep-data", "mnemonic-deep", "mnemonic-output",
                          "paper"],
    "baselines": ["ssd", "sfdn", "fastmu", "lwsf", "erm-ktp", "finetune", "gradient-ascent",
                  "random-label", "retrain", "retrain-seed+1"],
}  # fmt: skip
GROUPS["all"] = GROUPS["mnemonic-variants"] + GROUPS["baselines"]
#: the issue's goals for the default forget, per request
GOALS = {"fe": 99.5, "dar_median": -1.0, "dar_worst": -3.0, "proto_median": 2.0,
         "proto_worst": 5.0, "re_median": -3.0}  # fmt: skip


def _stat(values: list[float], how: str) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return None
    return {"median": statistics.median, "max": max, "min": min}[how](vals)


def _f(value: float | None, fmt: str = "{:+.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if "refused" not in r]
    proto = [r["proto_gap"] for r in ok]
    re_gap = [r["relearn_gap"] for r in ok]
    dar = [r["dar"] for r in ok]
    fe = [r["forget_err"] for r in ok]
    return {
        "n": len(rows), "refused": len(rows) - len(ok),
        "verified": sum(1 for r in ok if r.get("verified") is True),
        "fe_min": _stat(fe, "min"), "dar_median": _stat(dar, "median"),
        "dar_worst": _stat(dar, "min"), "proto_median": _stat(proto, "median"),
        "proto_worst": _stat(proto, "max"), "re_median": _stat(re_gap, "median"),
        "re_worst": _stat(re_gap, "min"),
        "steps_ratio_median": _stat([r.get("relearn_steps_ratio") for r in ok], "median"),
        "early_gap_median": _stat([r.get("proto_early_k10") - r["reference"]["proto_early_k10"]
                                   for r in ok if r.get("proto_early_k10") is not None], "median"),
        "agree_forget_median": _stat([r.get("agree_forget") for r in ok], "median"),
        "js_forget_median": _stat([r.get("js_forget") for r in ok], "median"),
        "mia_median": _stat([r.get("mia_efficacy") for r in ok], "median"),
        "ms_median": _stat([r.get("ms") for r in ok], "median"),
    }  # fmt: skip


def meets(s: dict) -> bool:
    need = ("fe_min", "dar_median", "dar_worst", "proto_median", "proto_worst", "re_median")
    if any(s[k] is None for k in need):
        return False
    return (s["fe_min"] >= GOALS["fe"] and s["dar_median"] >= GOALS["dar_median"]
            and s["dar_worst"] >= GOALS["dar_worst"] and s["proto_median"] <= GOALS["proto_median"]
            and s["proto_worst"] <= GOALS["proto_worst"]
            and s["re_median"] >= GOALS["re_median"])  # fmt: skip


def goals_failed(s: dict) -> list[str]:
    """The issue's goals that a summary misses, in words."""
    checks = [("fe_min", ">=", "fe", "FE min"), ("dar_median", ">=", "dar_median",
              "A_R−oracle median"), ("dar_worst", ">=", "dar_worst", "A_R−oracle worst"),
              ("proto_median", "<=", "proto_median", "proto gap median"),
              ("proto_worst", "<=", "proto_worst", "proto gap worst"),
              ("re_median", ">=", "re_median", "RE gap median")]  # fmt: skip
    out = []
    for key_, op, goal, name in checks:
        value = s[key_]
        ok = value is not None and (value >= GOALS[goal] if op == ">=" else value <= GOALS[goal])
        if not ok:
            out.append(f"{name} {_f(value, '{:+.2f}')} (goal {op} {GOALS[goal]:+g})")
    return out


def verdict(rows: list[dict]) -> list[str]:
    """Per suite: what depth the default reached on every row, whether it meets the goals, and
    the deep candidates: first those measured on every request the default was, then by the
    fewest missed goals, then by the most rows; a partial one is marked as not a verdict."""
    out = ["## Verdict", ""]
    for suite in [s for s in SUITES if any(r["suite"] == s for r in rows)]:
        mine = [r for r in rows if r["suite"] == suite]
        dataset, arch = SUITES[suite][0], arch_label(suite)
        default = [r for r in mine if r["label"] == "mnemonic"]
        depths = [r.get("depth") for r in default if "refused" not in r]
        n_output = sum(1 for d in depths if d == "output")
        s = summarise(default)
        missed = goals_failed(s)
        line = (f"* **{dataset} `{arch}`**: the default (data-free) forget wrote depth "
                f"`output` on {n_output} of {len(default)} requests"
                + (f" and `features` on {len(depths) - n_output}" if len(depths) > n_output
                   else "")
                + "; goals " + ("met." if not missed else "missed: " + "; ".join(missed) + "."))  # fmt: skip
        requests = {(r["seed"], tuple(r["classes"])) for r in default}
        candidates = []
        for label in ("mnemonic-deep-data", "mnemonic-deep"):
            group = [r for r in mine if r["label"] == label]
            if group:
                covered = len(requests & {(r["seed"], tuple(r["classes"])) for r in group})
                partial = covered < len(requests)
                # a candidate measured on every request of the default outranks a partial one
                candidates.append(((partial, len(goals_failed(summarise(group))), -len(group)),
                                   label, group, covered, partial))  # fmt: skip
        for i, (_, label, group, covered, partial) in enumerate(sorted(candidates)):
            cs = summarise(group)
            cmissed = goals_failed(cs)
            seeds = sorted({r["seed"] for r in group})
            line += (f" {'Best deep candidate' if i == 0 else 'Also measured'}: `{label}` "
                     f"({len(group)} rows, seeds {', '.join(map(str, seeds))}; {cs['refused']} "
                     f"refused; on {covered} of the default's {len(requests)} requests): proto gap "
                     f"{_f(cs['proto_median'])} / {_f(cs['proto_worst'])} (median / worst), RE "
                     f"gap {_f(cs['re_median'])}, A_R−oracle {_f(cs['dar_median'], '{:+.2f}')}"
                     f" / {_f(cs['dar_worst'], '{:+.2f}')}, FE min "
                     f"{_f(cs['fe_min'], '{:.1f}')}; goals "
                     + ("met" if not cmissed else "missed: " + "; ".join(cmissed))
                     + (" (on part of the requests only: not a verdict)." if partial else "."))  # fmt: skip
        out.append(line)
    return out + [""]


def _summary_cells(label: str, s: dict) -> list[str]:
    return [label, f"{s['n']} ({s['verified']} / {s['refused']})", _f(s["fe_min"], "{:.1f}"),
            f"{_f(s['dar_median'], '{:+.2f}')} / {_f(s['dar_worst'], '{:+.2f}')}",
            f"{_f(s['proto_median'])} / {_f(s['proto_worst'])}",
            f"{_f(s['re_median'])} / {_f(s['re_worst'])}", _f(s["early_gap_median"]),
            _f(s["steps_ratio_median"], "{:.2f}"), _f(s["agree_forget_median"], "{:.1f}"),
            _f(s["js_forget_median"], "{:.3f}"), _f(s["mia_median"], "{:.1f}"),
            _f(s["ms_median"], "{:.1f}"), "yes" if meets(s) else "no"]  # fmt: skip


SUMMARY_HEADER = ["method", "rows (verified / refused)", "FE min", "A_R−oracle median / worst",
                  "proto gap median / worst", "RE gap median / worst",
                  "early-block proto gap median", "relearn-time ratio median",
                  "agree forget median %", "JS forget median", "MIA median %", "ms median",
                  "goals met"]  # fmt: skip


def table(options: Any, runs: Path, page: Path) -> None:
    """The page from RUNS/results.jsonl, with its plots, and the rows copied beside it."""
    rows = read_rows(runs / "results.jsonl")
    if not rows:
        from obliviate.errors import ObliviateError

        raise ObliviateError(f"no rows in {runs / 'results.jsonl'}: run first, or give --runs "
                             "docs/results/depth (the rows committed beside the page)")  # fmt: skip
    new = [r for r in rows if r.get("measures") == 2]  # with the attacker's measures (issue 34)
    out = [PAGE_HEAD.strip(), ""]
    if new:
        out += [ATTACKER_HEAD.strip(), "", *attacker_overview(new)]
        for suite in [s for s in SUITES if any(r["suite"] == s for r in new)]:
            dataset, arch = SUITES[suite][0], arch_label(suite)
            out += [f"### {dataset} `{arch}`", ""]
            out += attacker_section([r for r in new if r["suite"] == suite])
        out += [ATTACKER_LEGEND.strip(), "", "## The first measures (issue 22)", ""]
    rows = [r for r in rows if r.get("measures") != 2]
    suites = [s for s in SUITES if any(r["suite"] == s for r in rows)]
    out += verdict(rows)
    for suite in suites:
        mine = [r for r in rows if r["suite"] == suite]
        seeds = sorted({r["seed"] for r in mine})
        requests = sorted({tuple(r["classes"]) for r in mine})
        dataset, arch = SUITES[suite][0], arch_label(suite)
        out += [f"### {dataset} `{arch}` — seeds {', '.join(map(str, seeds))}; "
                f"{len(requests)} requests", ""]  # fmt: skip
        groups = {label: [r for r in mine if r["label"] == label] for label in ROWS}
        groups["mnemonic --data (auto)"] = with_data_default(mine)
        body = [_summary_cells(label, summarise(group)) for label, group in groups.items() if group]
        out += markdown_table(SUMMARY_HEADER, body)
        out.append("")
        plot = page.parent / "depth" / f"{suite}.png"
        _plot(mine, plot, f"{dataset} {arch}")
        out += [f"![prototype gap against A_R change, {suite}](depth/{plot.name})", ""]
        out += per_request(mine)
    out.append(LEGEND.strip())
    write_page(page, "\n".join(out) + "\n")
    data = page.parent / "depth" / "results.jsonl"  # the rows behind the page, committed
    data.parent.mkdir(parents=True, exist_ok=True)
    if data.resolve() != (runs / "results.jsonl").resolve():
        shutil.copyfile(runs / "results.jsonl", data)
    log.info("copied the rows to %s", data)


def with_data_default(rows: list[dict]) -> list[dict]:
    """What the default does when ``--data`` is given (``depth auto``): the deep forget where
    the data verified it, else the output-only step. Derived per request and seed from the
    ``mnemonic-deep-data`` row (refused when the data did not verify it) and the
    ``mnemonic`` row (output only; with data its strength may differ, its features do not)."""
    out = []
    for row in rows:
        if row["label"] != "mnemonic-deep-data":
            continue
        if "refused" not in row:
            out.append(row)
            continue
        fallback = [r for r in rows if r["label"] == "mnemonic" and r["seed"] == row["seed"]
                    and r["classes"] == row["classes"]]  # fmt: skip
        out += fallback
    return out


def per_request(rows: list[dict]) -> list[str]:
    """Per request (mean over seeds): the default, the deep rows and retrain."""
    labels = [m for m in ("mnemonic", "mnemonic-deep-data", "mnemonic-deep") if
              any(r["label"] == m for r in rows)]  # fmt: skip
    if not labels:
        return []
    body = []
    for request in sorted({tuple(r["classes"]) for r in rows}, key=lambda c: (len(c), c)):
        refs = [r["reference"] for r in rows if tuple(r["classes"]) == request and "reference" in r]
        if not refs:
            continue
        cells = ["{" + ",".join(map(str, request)) + "}",
                 f"{statistics.mean(x['proto_k10'] for x in refs):.1f} / "
                 f"{statistics.mean(x['relearn_err'] for x in refs):.1f}"]  # fmt: skip
        for label in labels:
            g = [r for r in rows if tuple(r["classes"]) == request and r["label"] == label
                 and "refused" not in r]  # fmt: skip
            cells.append("-" if not g else
                         f"{statistics.mean(r['proto_k10'] for r in g):.1f} / "
                         f"{statistics.mean(r['relearn_err'] for r in g):.1f} / "
                         f"{statistics.mean(r['dar'] for r in g):+.2f}")  # fmt: skip
        body.append(cells)
    out = ["<details><summary>per request (mean over seeds): proto k=10 / RE / A_R−oracle"
           "</summary>", "", *markdown_table(["request", "retrained proto / RE", *labels], body)]
    return out + ["", "</details>", ""]


def _plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label in ROWS:
        g = [r for r in rows if r["label"] == label and "refused" not in r]
        if g:
            ax.scatter([r["dar"] for r in g], [r["proto_gap"] for r in g], s=12, label=label,
                       alpha=0.7)  # fmt: skip
    ax.axhline(0, color="grey", lw=0.8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("A_R − truncation oracle (points; right is better)")
    ax.set_ylabel("prototype k=10 − retrained (points; lower is deeper)")
    ax.set_title(f"{title}: one point per request and seed", fontsize=9)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- the attacker's measures, in two-sided bands (issue 34) ---------------------------------

#: page goals over a method's rows: gaps median within [-5, +2] and worst at most +5 (KR k=10,
#: KR k=100, Spotter, prototype k=10); agreement and JS to retraining no farther than the
#: output-only forget's (medians of the per-request differences); U-LiRA telling it from
#: retraining on at most 1 row in 10 (or 1 row); no refused row
BAND_GOALS = {"median": (-5.0, 2.0), "worst": 5.0}
_GAPS = [("gap_kr_k10", "KR k=10"), ("gap_kr_k100", "KR k=100"), ("gap_spotter", "Spotter"),
         ("gap_proto_k10", "prototype k=10")]  # fmt: skip


def attacker_summary(rows: list[dict], all_rows: list[dict]) -> dict:
    """A method's rows (with the new measures) summed up: every signed gap's median and worst,
    the forget-class MIA and relearn time, agreement and JS against the output-only forget of
    the same request and seed, U-LiRA, the bands' verdicts, and the page goals missed."""
    ok = [r for r in rows if "refused" not in r]
    out: dict[str, Any] = {"n": len(rows), "refused": len(rows) - len(ok)}
    missed = [f"{out['refused']} of {len(rows)} refused"] if out["refused"] else []
    for key, name in _GAPS:
        vals = [r[key] for r in ok if r.get(key) is not None]
        out[key] = (_stat(vals, "median"), _stat(vals, "max"), _stat(vals, "min"))
        med, worst, _ = out[key]
        low, high = BAND_GOALS["median"]
        if med is not None and not low <= med <= high:
            missed.append(f"{name} gap median {med:+.1f} (band {low:+g}..{high:+g})")
        if worst is not None and worst > BAND_GOALS["worst"]:
            missed.append(f"{name} gap worst {worst:+.1f} (> {BAND_GOALS['worst']:+g})")
    out["mia"] = _stat([r.get("gap_mia_forget_auc") for r in ok], "median")
    out["relearn"] = _stat([r.get("gap_relearn_steps_fresh") for r in ok], "median")
    agree, js = [], []
    for r in ok:
        base = r.get("output_only_agreement")
        if base:
            agree.append(r["agree_forget"] - base["agree_forget"])
            js.append(r["js_forget"] - base["js_forget"])
    out["agree"], out["js"] = _stat(agree, "median"), _stat(js, "median")
    if out["agree"] is not None and out["agree"] < -1e-9:
        missed.append(f"agreement {out['agree']:+.1f} points below the output-only forget's")
    if out["js"] is not None and out["js"] > 1e-9:
        missed.append(f"JS {out['js']:+.3f} above the output-only forget's")
    out["ulira"] = _stat([(r.get("ulira") or {}).get("auc") for r in ok], "median")
    # a row where U-LiRA tells the model from retraining: AUC above 0.60 beyond chance (its
    # permutation p below 0.05); chance alone does so on 1 row in 20
    judged = [r for r in ok if r.get("ulira")]
    out["told"] = sum(1 for r in judged if "U-LiRA" in r["bands"]["shallower"])
    if judged and out["told"] > max(1, len(judged) // 10):
        missed.append(f"U-LiRA tells it from retraining on {out['told']} of {len(judged)} rows")
    depths = [r["bands"]["depth"] for r in ok if r.get("bands")]
    out["deep"] = sum(1 for d in depths if d == "deep")
    out["beyond"] = sum(1 for d in depths if d == "beyond retraining")
    out["missed"] = missed
    return out


def attacker_section(rows: list[dict]) -> list[str]:
    """The suite's table of the new measures, for the rows that have them (none: nothing)."""
    new = [r for r in rows if r.get("measures") == 2]  # rows made with the attacker's measures
    if not new:
        return []
    body, lines = [], []
    for label in ROWS:
        group = [r for r in new if r["label"] == label]
        if not group:
            continue
        s = attacker_summary(group, rows)
        cells = [label, f"{s['n']} ({s['refused']})"]
        for key, _ in _GAPS:
            med, worst, best = s[key]
            cells.append(f"{_f(med)} / {_f(worst)} / {_f(best)}")
        cells += [_f(s["mia"], "{:+.2f}"), _f(s["relearn"], "{:.2f}"), _f(s["agree"]),
                  _f(s["js"], "{:+.3f}"),
                  f"{_f(s['ulira'], '{:.2f}')} ({s['told']})",
                  f"{s['deep']} / {s['beyond']}", "yes" if not s["missed"] else "no"]  # fmt: skip
        body.append(cells)
        if label.startswith("mnemonic") or label.startswith("retrain"):
            lines.append(f"* `{label}`: " + ("meets the band goals." if not s["missed"] else
                                            "misses: " + "; ".join(s["missed"]) + "."))  # fmt: skip
    header = ["method", "rows (refused)", *[f"{n} gap median / worst / lowest" for _, n in _GAPS],
              "forget-MIA AUC gap median", "relearn-time ratio (fresh rows) median",
              "agree forget − output-only median", "JS forget − output-only median",
              "U-LiRA AUC median (rows told apart)", "deep / beyond (bands)",
              "band goals met"]  # fmt: skip
    seeds = sorted({r["seed"] for r in new})
    shadows = sorted({(r.get("ulira") or {}).get("n") for r in new if r.get("ulira")})
    requests = {tuple(r["classes"]) for r in new}
    judged = {tuple(r["classes"]) for r in new if r.get("ulira")}
    where = f" (rows of {len(judged)} of {len(requests)} requests)" if shadows else ""
    return ([f"Seeds {', '.join(map(str, seeds))}; {len(requests)} requests; U-LiRA shadows "
             f"per side: {', '.join(map(str, shadows)) or 'none'}{where}.", "",
             *markdown_table(header, body), "", *lines, "", *block_kr_section(new)])  # fmt: skip


def attacker_overview(rows: list[dict]) -> list[str]:
    """One line per suite: its coverage, the methods whose rows meet every band goal, and where
    the mnemonic rows land per request (the bands' verdicts counted)."""
    lines = ["**In short** (from the tables below; `retrain` is the reference itself):", ""]
    for suite in [s for s in SUITES if any(r["suite"] == s for r in rows)]:
        mine = [r for r in rows if r["suite"] == suite]
        labels = [label for label in ROWS if any(r["label"] == label for r in mine)]
        met = [f"`{label}`" for label in labels if label != "retrain"  # the reference itself
               and not attacker_summary([r for r in mine if r["label"] == label], mine)["missed"]]
        places = []
        for label in ("mnemonic", "mnemonic-deep-data", "mnemonic-deep"):
            judged = [r["bands"]["depth"] for r in mine if r["label"] == label and r.get("bands")]
            if judged:
                counts = {d: judged.count(d) for d in dict.fromkeys(judged)}
                places.append(f"`{label}` " + ", ".join(f"{d} {n}" for d, n in counts.items()))
        dataset, arch = SUITES[suite][0], arch_label(suite)
        requests = len({tuple(r["classes"]) for r in mine})
        forgetting = [m for m in met if not m.startswith("`retrain")]
        closest = "" if forgetting else closest_candidate(mine, labels)
        lines.append(f"* {dataset} `{arch}`, {requests} requests, {len(labels)} methods: the band "
                     f"goals are met by {', '.join(met) or 'none'}{closest}. Per request, the "
                     "bands say: " + "; ".join(places) + ".")  # fmt: skip
    return [*lines, ""]


def band_distance(s: dict) -> float:
    """How far a method's summary (:func:`attacker_summary`) lies outside the gap goals: for each
    gap, the distance of its median from the band and of its worst above the limit (points)."""
    low, high = BAND_GOALS["median"]
    total = 0.0
    for key, _ in _GAPS:
        med, worst, _ = s[key]
        if med is not None:
            total += max(0.0, low - med, med - high)
        if worst is not None:
            total += max(0.0, worst - BAND_GOALS["worst"])
    return total


def closest_candidate(rows: list[dict], labels: list[str]) -> str:
    """``"; closest: `label` (misses ...)"``: the forgetting method (not a retrain, and with a
    row that was not refused) with the fewest page goals missed, then the least
    :func:`band_distance`; empty without one."""
    ranked = []
    for label in labels:
        if label.startswith("retrain"):
            continue
        s = attacker_summary([r for r in rows if r["label"] == label], rows)
        if s["refused"] == s["n"]:  # nothing measured: no candidate
            continue
        ranked.append((len(s["missed"]), band_distance(s), label, s["missed"]))
    if not ranked:
        return ""
    _, _, label, missed = min(ranked)
    return f"; closest: `{label}` (misses {len(missed)}: {'; '.join(missed)})"


def block_kr_gaps(rows: list[dict]) -> dict[str, list[float]]:
    """Per earlier block (``block1``, ...), the KR k=10 gaps (model minus reference) of the rows
    that measured it; the penultimate features' gap is ``gap_kr_k10``."""
    out: dict[str, list[float]] = {}
    for r in rows:
        if "refused" in r:
            continue
        for key, value in r.items():
            if key.startswith("kr_block") and key.endswith("_k10") and value is not None:
                ref = r["reference"].get(key)
                if ref is not None:
                    block = key[len("kr_"):-len("_k10")]
                    out.setdefault(block, []).append(float(value) - float(ref))
    return out


def block_kr_section(rows: list[dict]) -> list[str]:
    """KR k=10 at every block before the penultimate features, per method (none when the
    suite's model lists no earlier block): reported, not judged."""
    blocks = sorted({b for label in ROWS for b in block_kr_gaps(
        [r for r in rows if r["label"] == label])})  # fmt: skip
    if not blocks:
        return []
    body = []
    for label in ROWS:
        gaps = block_kr_gaps([r for r in rows if r["label"] == label])
        if gaps:
            body.append([label, *(f"{_f(_stat(gaps.get(b, []), 'median'))} / "
                                  f"{_f(_stat(gaps.get(b, []), 'max'))}" for b in blocks)])
    header = ["method", *[f"KR k=10 gap at {b} median / worst" for b in blocks]]
    return ["KR at the earlier blocks (a fresh head on the pooled output of the first *i* "
            "blocks; reported, not judged: the band goals are set on the penultimate features):",
            "", *markdown_table(header, body), ""]  # fmt: skip
