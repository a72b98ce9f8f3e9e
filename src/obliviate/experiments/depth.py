"""How deep does each method forget? Every method against a model retrained without the classes,
on outputs and on what the features still reveal (docs/results/depth.md).

    python scripts/depth.py run --suite fc --seeds 0,1,2 --methods mnemonic-variants
    python scripts/depth.py run --suite digits --seeds 0 --methods all
    python scripts/depth.py table          # rewrite docs/results/depth.md from the results

Suites: ``fc`` and ``convnet`` on Fashion-MNIST (10 epochs, the paper's recipe), ``digits``
(fc, 40 epochs at lr 0.1). Requests: every class alone, {1,8} and {2,4,6} (``--requests`` picks
a subset, e.g. ``3,7,1+8``). For each (suite, seed, request): the model is trained once, the
reference is retrained once (``obliviate.references.retrained_reference``, the ``retrain``
method with the model's recipe), and every method forgets; each result is measured with
``obliviate.evidence`` (prototype attacks at k = 1 and 10, one block earlier where the model has
one, RE, relearn time, agreement and JS divergence to the reference, MIA) plus A_R against the
truncation oracle (the original with the forget classes' logits masked). One JSON row per
(suite, seed, request, method) goes to RUNS/results.jsonl; a rerun skips the rows it has, and
``run`` starts from the rows committed beside the page when RUNS has none.

Method rows (``--methods``):
  mnemonic            the default, data-free (``depth auto``: output only when the features
                      cannot be verified without data)
  mnemonic-deep-data  ``depth features`` verified on the training data (the default when
                      ``--data`` is given)
  mnemonic-deep       ``depth features`` without data, written with ``force`` (verified: false)
  mnemonic-output     ``depth output``
  paper               paper mode, the architecture's lambdas, written with ``force``
  ssd sfdn fastmu lwsf erm-ktp finetune gradient-ascent random-label retrain
                      the registered baselines at their defaults (data where they need it)
``mnemonic-variants`` = the five mnemonic rows; ``baselines`` = the others; ``all`` = both.
"""

from __future__ import annotations

import logging
import math
import shutil
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

import obliviate
from obliviate import api, references
from obliviate.errors import NotVerifiedError, ObliviateError
from obliviate.evidence import EvidenceConfig, gather_evidence
from obliviate.experiments.engine import (
    Page,
    Results,
    markdown_table,
    read_rows,
    run_queue,
    write_page,
)
from obliviate.metrics import RelearnConfig
from obliviate.training import TrainConfig, predict

log = logging.getLogger(__name__)
SUITES = {
    "fc": ("fashion-mnist", "fc", TrainConfig(epochs=10)),
    "convnet": ("fashion-mnist", "convnet", TrainConfig(epochs=10)),
    "digits": ("digits", "fc", TrainConfig(epochs=40, lr=0.1)),
}
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
}
GROUPS = {
    "mnemonic-variants": ["mnemonic", "mnemonic-deep-data", "mnemonic-deep", "mnemonic-output",
                          "paper"],
    "baselines": ["ssd", "sfdn", "fastmu", "lwsf", "erm-ktp", "finetune", "gradient-ascent",
                  "random-label", "retrain"],
}  # fmt: skip
GROUPS["all"] = GROUPS["mnemonic-variants"] + GROUPS["baselines"]
#: the issue's goals for the default forget, per request
GOALS = {"fe": 99.5, "dar_median": -1.0, "dar_worst": -3.0, "proto_median": 2.0,
         "proto_worst": 5.0, "re_median": -3.0}  # fmt: skip


@dataclass(frozen=True)
class DepthOptions:
    """What ``run`` measures (``table`` needs none of it)."""

    suite: str | None = field(default=None, metadata={
        "choices": list(SUITES), "help": "the suite to run (required)"})  # fmt: skip
    seeds: str = "0"
    methods: str = field(default="mnemonic-variants",
                         metadata={"help": "method rows and groups, comma-separated"})  # fmt: skip
    requests: str | None = field(default=None, metadata={"help": "e.g. 3,7,1+8 (default: every "
                                                         "class, {1,8}, {2,4,6})"})  # fmt: skip
    relearn_steps: int = 1000
    relearn_max_steps: int = 300


def parse_requests(text: str | None) -> list[list[int]]:
    if not text:
        return REQUESTS
    return [[int(c) for c in token.split("+")] for token in text.split(",")]


def method_rows(text: str) -> list[str]:
    """The row labels named by ``--methods`` (labels and groups, comma-separated)."""
    labels = []
    for token in text.split(","):
        labels += GROUPS.get(token, [token])
    unknown = [m for m in labels if m not in ROWS]
    if unknown:
        raise ObliviateError(f"unknown method rows {unknown}; known: {', '.join(ROWS)}")
    return labels


def oracle_retain_acc(model, data, classes) -> float:
    retain = [c for c in range(data.num_classes) if c not in classes]
    with torch.no_grad():
        logits = torch.cat([model(data.test.x[i : i + 2048])
                            for i in range(0, len(data.test.x), 2048)])  # fmt: skip
    pred = torch.tensor(retain)[logits[:, retain].argmax(1)]
    keep = ~torch.isin(data.test.y, torch.tensor(classes))
    return 100.0 * float((pred[keep] == data.test.y[keep]).float().mean())


def _retain_acc(model, data, classes) -> float:
    keep = ~torch.isin(data.test.y, torch.tensor(classes))
    return 100.0 * float((predict(model, data.test.x[keep]) == data.test.y[keep]).float().mean())


class _Suite:
    """One suite's models, references and rows; each model and reference made once, when the
    first row that needs it runs."""

    def __init__(self, suite: str, runs: Path, options: DepthOptions) -> None:
        self.suite, self.runs = suite, runs
        self.data = api.resolve_dataset(SUITES[suite][0])
        self.config = EvidenceConfig(relearn=RelearnConfig(steps=options.relearn_steps),
                                     relearn_max_steps=options.relearn_max_steps)  # fmt: skip
        self.bundles: dict[int, obliviate.ModelBundle] = {}
        self.requests: dict[tuple, dict] = {}

    def trained(self, seed: int) -> obliviate.ModelBundle:
        if seed not in self.bundles:
            _, arch, config = SUITES[self.suite]
            path = self.runs / "models" / f"{self.suite}-s{seed}.safetensors"
            if path.exists():
                self.bundles[seed] = obliviate.load(path)
            else:
                codes = obliviate.CodeConfig(seed=seed)
                bundle = api.train(self.data, arch, config=replace(config, seed=seed),
                                   codes=codes, progress=False)  # fmt: skip
                path.parent.mkdir(parents=True, exist_ok=True)
                obliviate.save(bundle, path)
                self.bundles[seed] = bundle
        return self.bundles[seed]

    def request(self, seed: int, classes: list[int]) -> dict:
        """The request's reference, oracle A_R and (once measured) the reference's evidence."""
        key = (seed, tuple(classes))
        if key not in self.requests:
            bundle = self.trained(seed)
            reference = references.retrained_reference(bundle, classes, self.data, seed=seed,
                                                       cache_dir=self.runs / "references",
                                                       progress=False)  # fmt: skip
            oracle = oracle_retain_acc(bundle.model, self.data, classes)
            self.requests[key] = {"reference": reference, "measures": None, "oracle": oracle}
        return self.requests[key]

    def row(self, key: dict) -> dict:
        seed, classes, label = key["seed"], key["classes"], key["label"]
        bundle = self.trained(seed)
        request = self.request(seed, classes)
        reference, data = request["reference"], self.data
        method, hyper, with_data, force = ROWS[label]
        started = time.perf_counter()
        try:
            if label == "retrain":
                result = reference
            else:
                result = api.forget(bundle, classes, method=method,
                                    data=data if with_data else None, seed=seed,
                                    progress=False, force=force, **hyper)  # fmt: skip
        except (NotVerifiedError, ObliviateError) as exc:
            return {"suite": self.suite, "seed": seed, "classes": classes, "label": label,
                    "refused": str(exc)[:300]}  # fmt: skip
        report = gather_evidence(result.model.eval(), reference.model.eval(), data,
                                 classes, original=bundle.model.eval(), config=self.config,
                                 reference_measures=request["measures"])  # fmt: skip
        request["measures"] = report.reference
        record = result.history[-1]
        ar = _retain_acc(result.model, data, classes)
        oracle = request["oracle"]
        return {
            "suite": self.suite, "seed": seed, "classes": classes, "label": label,
            "method": method, "hyperparameters": hyper, "data_given": with_data,
            "verified": record.get("verified"), "depth": record.get("depth"),
            "ms": 1000.0 * record["seconds"], "retain_acc": ar, "oracle_retain_acc": oracle,
            "dar": ar - oracle, **report.model.flat(),
            "reference": report.reference.flat(), **report.agreement, **report.gaps,
            "wall_s": time.perf_counter() - started,
        }  # fmt: skip


def _describe(row: dict) -> str:
    head = f"{row['suite']} s{row['seed']} {row['classes']} {row['label']}"
    if "refused" in row:
        return f"{head}: refused ({row['refused']})"[:200]
    return (f"{head}: FE {row['forget_err']:.1f} dAR {row['dar']:+.2f} proto "
            f"{row['proto_k10']:.1f} (ref {row['reference']['proto_k10']:.1f}) RE "
            f"{row['relearn_err']:.1f} (ref {row['reference']['relearn_err']:.1f}) "
            f"{row['ms']:.1f} ms")  # fmt: skip


def run(options: DepthOptions, runs: Path, page: Path) -> None:
    """Every (seed, request, method row) of ``options.suite`` that RUNS/results.jsonl lacks."""
    if options.suite is None:
        raise ObliviateError(f"run needs --suite ({', '.join(SUITES)})")
    labels = method_rows(options.methods)
    runs.mkdir(parents=True, exist_ok=True)
    results = runs / "results.jsonl"
    committed = page.parent / "depth" / "results.jsonl"
    if not results.exists() and committed.exists():  # resume from the rows behind the page
        shutil.copyfile(committed, results)
    suite = _Suite(options.suite, runs, options)
    plan = ({"suite": options.suite, "seed": seed, "classes": classes, "label": label}
            for seed in [int(s) for s in options.seeds.split(",")]
            for classes in parse_requests(options.requests) for label in labels)  # fmt: skip
    run_queue(Results(results), plan, suite.row, describe=_describe)


# --- the page ---------------------------------------------------------------------------------


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
        dataset, arch, _ = SUITES[suite]
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


def table(options: DepthOptions, runs: Path, page: Path) -> None:
    """The page from RUNS/results.jsonl, with its plots, and the rows copied beside it."""
    rows = read_rows(runs / "results.jsonl")
    suites = [s for s in SUITES if any(r["suite"] == s for r in rows)]
    out = [PAGE_HEAD.strip(), ""] + verdict(rows)
    for suite in suites:
        mine = [r for r in rows if r["suite"] == suite]
        seeds = sorted({r["seed"] for r in mine})
        requests = sorted({tuple(r["classes"]) for r in mine})
        dataset, arch, _ = SUITES[suite]
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


PAGE_HEAD = """
# How deep is the forget? Every method against retraining

Written by `python scripts/depth.py table` from `runs/depth/results.jsonl`, copied beside this
page as `depth/results.jsonl` (rows made by `python scripts/depth.py run ...`, the commands in
the script's doc; `run` starts from that copy when `runs/depth` has none). Each row forgets one request (every class
alone, {1,8}, {2,4,6}) from a model trained with mnemonic codes, and is judged against a model
retrained without the classes with the same recipe, on the test split: outputs (FE, A_R against
the truncation oracle) and what the features still reveal (prototype attacks, the relearn probe,
relearn time), with the attacker's samples drawn from the training split with a fixed seed.

Goals of the default forget (issue 22), per request: FE ≥ 99.5; A_R − oracle median ≥ −1,
worst ≥ −3; prototype k=10 − retrained median ≤ +2, worst ≤ +5; RE − retrained median ≥ −3.
"""

LEGEND = """
**Columns.** *rows (verified / refused)*: requests × seeds, how many the method's own check
verified, how many it refused. *FE min*: the smallest forget-class test error (%). *A_R−oracle*:
retain-class test accuracy minus the truncation oracle's (the original with the forget logits
masked), in points; higher is better. *proto gap*: nearest-prototype accuracy (k = 10 training
samples per class, cosine, penultimate features) on the forget classes' test samples, minus the
retrained model's; lower is deeper, > 0 means the features hold more of the class than after
retraining. *RE gap*: relearn-probe error (head retrained 1000 steps on frozen features) minus
the retrained model's; higher is deeper. *early-block proto gap*: the prototype gap one block
before the penultimate features (models with several blocks). *relearn-time ratio*: (steps + 1)
to regain 90 % of the original's forget-class accuracy when fine-tuning the whole model on 10
samples per class, over the retrained model's (≥ 1: as slow as from retraining; the budget is
300 steps). *agree forget*: forget-class test samples on which the prediction equals the
retrained model's. *JS forget*: mean Jensen-Shannon divergence to the retrained model on them
(nats). *MIA*: forget training samples a membership attack calls non-members. *ms*: the
method's own time. *goals met*: all six goals over the rows shown. *mnemonic --data (auto)*
is derived, not run: per request and seed, the `mnemonic-deep-data` row where the data verified
the deep forget, else the `mnemonic` (output-only) row, which is what `depth auto` does when
`--data` is given.
"""


PAGE = Page(doc=__doc__, options=DepthOptions, run=run, table=table, runs=Path("runs/depth"),
            out=Path("docs/results/depth.md"))
