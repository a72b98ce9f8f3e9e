"""Hayase et al.'s Fashion-MNIST experiments in full: Patterns B and C with the line and tile
transforms on class 0, CE / CE+Fisher / CE+Fisher+RLD, with the paper's Table S1 settings and
with settings searched on our own model; Pattern A with RLD; and which reading of the
normalised hard tanh to use, decided by training both (docs/results/finer-forgetting.md, the
part below ``<!-- finer_full.py -->``).

    python scripts/finer_full.py --runs runs/finer-full --device cuda --trials 30
    python scripts/finer_full.py --runs runs/finer-full --table-only    # page + plots

Steps, each row appended to RUNS/results.jsonl (a rerun skips what is there):

1. ``activation``: the poisoned MLP pretrained with each activation (tile, every seed): the
   loss of every epoch and the test accuracies. The one used below is chosen by a rule fixed
   here: the higher mean clean accuracy ``D_r``, unless its pretraining loss ever rose from one
   epoch to the next more often than the other's.
2. ``search``: per (pattern, transform), Optuna on seed 0's model (the paper's 20/80 split of
   D_f / D_f,clean, TPE, unstable settings pruned), ``--trials`` trials of 10-epoch forgetting.
   Seeds 1 and 2 are not searched on: their rows are held out.
3. ``run``: per (pattern, transform, seed, settings in {table-s1, searched}) the three losses
   (Patterns B/C) or RLD (Pattern A), test accuracy on the four sets.

``scripts/finer_parallel.sh`` runs one process per (pattern, transform) in RUNS/parts/ and
merges their rows (``--merge-parts``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate.data import Dataset, Split
from obliviate.experiments.engine import (
    Page,
    Results,
    ints,
    mean_std,
    names,
    read_rows,
    run_queue,
    splice,
    write_page,
)
from obliviate.finer import build_finer_data
from obliviate.finer.forgetting import (
    FISHER_DATA,
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
)
from obliviate.finer.tuning import max_fisher, paper_settings, tune
from obliviate.training import fit

log = logging.getLogger(__name__)
SETS = ("D_r", "D_f", "D_f,clean", "D_r,extra")
LOSSES = ("CE", "CE+Fisher", "CE+Fisher+RLD")
#: Pattern A's hand-picked setting before this search (docs/results/finer-forgetting.md, grid).
PATTERN_A_FIXED = {"lr": 3e-4, "lambda_kl": 3e4}
#: Pattern A's search score (obliviate.finer.tuning.pattern_score): "target" = D_f^val <= 2 %
#: first, then D_r^val; rows from before it used "min" = min(D_r^val, 1 - D_f^val).
A_OBJECTIVE = "target"
MARKER = "<!-- finer_full.py -->"


@dataclass(frozen=True)
class FinerOptions:
    """The runs' data, device, seeds and budget (the page needs only ``fisher``)."""

    dataset: str = "fashion-mnist"
    data_dir: Path | None = field(default=None, metadata={"type": Path})
    device: str = "cpu"
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"type": ints})
    trials: int = 30
    pretrain_epochs: int = 10
    forget_epochs: int = 10
    patterns: tuple[str, ...] = field(default=("B", "C", "A"), metadata={
        "type": names, "help": "which patterns to run, in order"})  # fmt: skip
    transforms: tuple[str, ...] = field(default=("line", "tile"), metadata={
        "type": names, "help": "B/C transforms to run"})  # fmt: skip
    fisher: str = field(default="retain", metadata={
        "choices": FISHER_DATA,
        "help": "the remembering term's Fisher: on D_r (retain) or D_f ∪ D_r"})  # fmt: skip


def new_mlp(data: Dataset, device: str, activation: str = "as-written") -> torch.nn.Module:
    """The paper's MLP for ``data``, freshly initialised, on ``device``."""
    return obliviate.create_model("hardtanh-mlp", input_shape=data.input_shape,
                                  num_classes=data.num_classes,
                                  activation=activation).to(device)  # fmt: skip


def train_mlp(data: Dataset, split: Split, seed: int, *, epochs: int, device: str,
              activation: str = "as-written") -> tuple[torch.nn.Module, list[float]]:  # fmt: skip
    """The paper's MLP of ``seed`` trained on ``split`` (``epochs``, SGD at the package's
    defaults), in eval mode, and its epoch losses."""
    torch.manual_seed(seed)
    net = new_mlp(data, device, activation)
    losses = fit(net, split.x.to(device), split.y.to(device),
                 obliviate.TrainConfig(epochs=epochs, seed=seed), progress=False)  # fmt: skip
    return net.eval(), losses


def _describe(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k not in ("trials", "losses")})


class Runner:
    def __init__(self, options: FinerOptions, runs: Path) -> None:
        self.options, self.runs = options, runs
        self.results = Results(runs / "results.jsonl")
        # rows written before --fisher existed used D_f ∪ D_r, and Pattern A's search then scored
        # min(D_r, 1 - D_f)
        _normalise(self.results.rows)
        self.data = obliviate.load_dataset(options.dataset, data_dir=options.data_dir)
        self.models: dict[tuple, tuple] = {}
        self.settings: dict[tuple, ForgetSettings] = {}
        self.start = time.perf_counter()

    def stamp(self, row: dict) -> dict:
        row["elapsed"] = time.perf_counter() - self.start
        row["device"] = self.options.device
        row["fisher"] = self.options.fisher
        return row

    def poisoned(self, transform: str, seed: int, activation: str):
        key = (transform, seed, activation)
        if key not in self.models:
            data = build_finer_data(self.data, [0], transform)
            net, losses = train_mlp(self.data, data.pretraining(), seed,
                                    epochs=self.options.pretrain_epochs,
                                    device=self.options.device, activation=activation)  # fmt: skip
            self.models[key] = (data, net, pretraining_fisher(net, data, on=self.options.fisher),
                                losses)  # fmt: skip
        return self.models[key]

    # -- 1. which activation ------------------------------------------------------------------

    def activation(self) -> str:
        plan = ({"kind": "activation", "activation": act, "seed": seed}
                for act in ("as-written", "continuous") for seed in self.options.seeds)  # fmt: skip
        run_queue(self.results, plan, self.pretrain, describe=_describe)
        return choose_activation([r for r in self.results.rows if r["kind"] == "activation"])

    def pretrain(self, key: dict) -> dict:
        try:
            data, net, _, losses = self.poisoned("tile", key["seed"], key["activation"])
            acc = {k: 100 * v for k, v in accuracies(net, data).items()}
            return self.stamp({**key, "losses": losses, "accuracy": acc, "diverged": False})
        except obliviate.ObliviateError as exc:
            return self.stamp({**key, "diverged": True, "error": str(exc)})

    # -- 2. and 3. ----------------------------------------------------------------------------

    def settings_for(self, pattern: str, transform: str, which: str, act: str) -> ForgetSettings:
        base = paper_settings("fashion-mnist", transform if pattern != "A" else "none", pattern,
                              epochs=self.options.forget_epochs)  # fmt: skip
        if pattern == "A" and which == "fixed":
            return dataclasses.replace(base, **PATTERN_A_FIXED)
        if which != "searched":
            return base
        fisher_on = self.options.fisher
        objective = {"objective": A_OBJECTIVE} if pattern == "A" else {}
        row = self.results.find(kind="search", pattern=pattern, transform=transform,
                                activation=act, fisher=fisher_on, **objective)  # fmt: skip
        if row is None:
            data, net, fisher, _ = self.poisoned(transform, self.options.seeds[0], act)
            t0 = time.perf_counter()
            result = tune(net, data, base, fisher, trials=self.options.trials, seed=0,
                          storage=f"sqlite:///{self.runs / 'search.db'}",
                          study_name=f"{pattern}-{transform}-{act}"
                                     + ("" if fisher_on == "pretraining" else f"-{fisher_on}")
                                     + ("-" + A_OBJECTIVE if objective else ""))  # fmt: skip
            row = {"kind": "search", "pattern": pattern, "transform": transform, **objective,
                   "activation": act, "seconds": time.perf_counter() - t0,
                   "best": {"lr": result.best.lr, "lambda_kl": result.best.lambda_kl,
                            "lambda_f": result.best.lambda_f},
                   "best_score": result.best_score, "max_fisher": max_fisher(fisher),
                   "trials": result.trials}  # fmt: skip
            self.results.append(self.stamp(row))
            log.info("%s", _describe(row))
        return dataclasses.replace(base, **row["best"])

    def plan(self, act: str):
        """The run rows' keys; each (pattern, transform, settings)'s settings are found (searched
        when RUNS has no search row) before its first key."""
        plan = [(p, t) for p in ("B", "C") for t in ("line", "tile")] + [("A", "none")]
        plan = [(p, t) for p, t in plan if p in self.options.patterns
                and (p == "A" or t in self.options.transforms)]  # fmt: skip
        for pattern, transform in plan:
            kinds = ("table-s1", "searched") if pattern != "A" else ("fixed", "searched")
            for which in kinds:
                found = self.settings_for(pattern, transform, which, act)
                self.settings[pattern, transform, which] = found
                objective = ({"objective": A_OBJECTIVE} if pattern == "A" and which == "searched"
                             else {})  # fmt: skip
                for seed in self.options.seeds:
                    yield {"kind": "run", "pattern": pattern, "transform": transform, **objective,
                           "settings": which, "seed": seed, "activation": act,
                           "fisher": self.options.fisher}  # fmt: skip

    def forget(self, key: dict) -> dict:
        pattern, transform, which, seed = (key["pattern"], key["transform"], key["settings"],
                                           key["seed"])  # fmt: skip
        settings = self.settings[pattern, transform, which]
        data, net, fisher, _ = self.poisoned(transform, seed, key["activation"])
        variants = {"RLD": settings} if pattern == "A" else {
            "CE": dataclasses.replace(settings, lambda_kl=0.0, lambda_f=0.0),
            "CE+Fisher": dataclasses.replace(settings, lambda_f=0.0),
            "CE+Fisher+RLD": settings,
        }  # fmt: skip
        acc = {"pretrained": accuracies(net, data)}
        for label, variant in variants.items():
            variant = dataclasses.replace(variant, seed=seed)
            try:
                acc[label] = accuracies(selective_forget(net, data, variant, fisher=fisher), data)
            except obliviate.ObliviateError:
                acc[label] = {k: float("nan") for k in SETS}
        row = {k: v for k, v in key.items() if k != "fisher"}  # the stamp adds it, last
        return self.stamp({**row, "hyper": {"lr": settings.lr, "lambda_kl": settings.lambda_kl,
                                            "lambda_f": settings.lambda_f},
                           "accuracy": {k: {s: 100 * v for s, v in a.items()}
                                        for k, a in acc.items()}})  # fmt: skip


def run(options: FinerOptions, runs: Path, out: Path) -> None:
    """Steps 1 to 3 (module doc): the rows RUNS/results.jsonl lacks."""
    runs.mkdir(parents=True, exist_ok=True)
    runner = Runner(options, runs)
    act = runner.activation()
    log.info("activation: %s", act)
    run_queue(runner.results, runner.plan(act), runner.forget, describe=_describe)


def choose_activation(rows: list[dict]) -> str:
    """The rule of step 1 (module doc): fewer diverged seeds, then fewer epoch-to-epoch loss
    rises, then the higher mean clean accuracy D_r."""
    def rank(act: str) -> tuple[float, float, float]:
        mine = [r for r in rows if r["activation"] == act]
        ok = [r for r in mine if not r["diverged"]]
        if not ok:
            return (len(mine), float("inf"), float("inf"))
        rises = sum(sum(b > a for a, b in zip(r["losses"], r["losses"][1:])) for r in ok)
        return (len(mine) - len(ok), rises, -statistics.mean(r["accuracy"]["D_r"] for r in ok))

    return min(("as-written", "continuous"), key=rank)


# -- the page -----------------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return mean_std(values, empty="diverged")


def goals(pattern: str, pre: dict, after: dict) -> dict[str, bool]:
    """Issue 16's goals for the searched full loss (accuracies in %)."""
    out = {"D_r within 5": after["D_r"] >= pre["D_r"] - 5.0, "D_r,extra ≥ 50": after["D_r,extra"] >= 50.0}
    if pattern == "B":
        out["D_f,clean ≥ 90"] = after["D_f,clean"] >= 90.0
    if pattern == "C":
        out["D_f ≥ 90"] = after["D_f"] >= 90.0
    return out


def plot(rows: list[dict], pattern: str, transform: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, which in zip(axes, ("table-s1", "searched")):
        mine = [r for r in rows if r["settings"] == which]
        labels = ["pretrained", *LOSSES]
        width = 0.2
        for i, s in enumerate(SETS):
            means, errs = [], []
            for label in labels:
                vals = [r["accuracy"][label][s] for r in mine if r["accuracy"][label][s] == r["accuracy"][label][s]]
                means.append(statistics.mean(vals) if vals else 0.0)
                errs.append(statistics.stdev(vals) if len(vals) > 1 else 0.0)
            xs = [j + (i - 1.5) * width for j in range(len(labels))]
            ax.bar(xs, means, width, yerr=errs, label=s, capsize=2)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_title(f"{which} settings", fontsize=9)
        ax.set_ylim(0, 105)
    axes[0].set_ylabel("test accuracy (%)")
    handles, labels_ = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels_, loc="lower center", ncol=len(SETS), fontsize=8)
    fig.suptitle(f"Fashion-MNIST, class 0, {transform}, Pattern {pattern} "
                 f"(mean ± std over {len({r['seed'] for r in rows})} seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _normalise(rows: list[dict]) -> list[dict]:
    """Fill the keys that older rows lack (see Runner.__init__)."""
    for row in rows:
        row.setdefault("fisher", "pretraining")
        if row.get("pattern") == "A" and row.get("settings", "searched") == "searched":
            row.setdefault("objective", "min")
    return rows


def _main_loss(pattern: str) -> str:
    return "RLD" if pattern == "A" else "CE+Fisher+RLD"


def table(options: FinerOptions, runs: Path, out: Path) -> None:
    """This part of the page (below MARKER, the rest of the page kept) and its plots."""
    fisher = options.fisher
    rows = _normalise(read_rows(runs / "results.jsonl"))
    acts = [r for r in rows if r["kind"] == "activation"]
    act = choose_activation(acts) if acts else "as-written"
    figs = out.parent / "finer"
    figs.mkdir(exist_ok=True)
    L = ["## Which activation", "",
         "The poisoned MLP (tile on class 0) pretrained with each reading of the normalised hard "
         "tanh; test accuracy %, and how often the epoch loss rose:", "",
         "| activation | seeds diverged | D_r | D_f | loss rises (all seeds) | final loss |",
         "|---|---|---|---|---|---|"]  # fmt: skip
    for a in ("as-written", "continuous"):
        mine = [r for r in acts if r["activation"] == a]
        ok = [r for r in mine if not r["diverged"]]
        rises = sum(sum(y > x for x, y in zip(r["losses"], r["losses"][1:])) for r in ok)
        L.append(f"| {a} | {len(mine) - len(ok)}/{len(mine)} | "
                 f"{_ms([r['accuracy']['D_r'] for r in ok])} | {_ms([r['accuracy']['D_f'] for r in ok])} | "
                 f"{rises} | {_ms([r['losses'][-1] for r in ok])} |")  # fmt: skip
    L += ["", f"Chosen by the script's rule (fewer diverged seeds, then fewer loss rises, then "
          f"higher D_r): **{act}**. Everything below uses it.", ""]
    runs_ = [r for r in rows if r["kind"] == "run" and r["activation"] == act]

    # -- which Fisher: the same runs with the Fisher of D_r and of D_f ∪ D_r
    L += ["## Which Fisher", "",
          "The remembering term's Fisher averaged over `D_r` (`retain`: the paper's experiments, "
          "\"the dataset except for the class 0\") or over `D_f ∪ D_r` (`pretraining`: its Eq. 7). "
          "Same pretrained models, same settings (each Fisher has its own search); full loss "
          "(RLD for Pattern A), test %, mean over seeds:", "",
          "| pattern | transform | settings | Fisher | seeds | D_r | D_f | D_f,clean | D_r,extra |",
          "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    keys = sorted({(r["pattern"], r["transform"], r["settings"], r.get("objective", ""))
                   for r in runs_})  # fmt: skip
    for p, t, which, obj in keys:
        mine = [r for r in runs_ if (r["pattern"], r["transform"], r["settings"],
                                     r.get("objective", "")) == (p, t, which, obj)]  # fmt: skip
        if {r["fisher"] for r in mine} != {"retain", "pretraining"}:
            continue
        for f in ("retain", "pretraining"):
            rs = [r for r in mine if r["fisher"] == f]
            cells = [_ms([r["accuracy"][_main_loss(p)][s] for r in rs]) for s in SETS]
            label = which + (f" ({obj})" if obj else "")
            L.append(f"| {p} | {t} | {label} | {f} | {len(rs)} | " + " | ".join(cells) + " |")
    L += ["", f"Everything below uses **{fisher}**, the default of `obliviate backdoor` "
          "(`--fisher-on`).", ""]

    searches = [r for r in rows if r["kind"] == "search" and r["activation"] == act]
    L += ["## The search", "",
          "Optuna TPE on seed 0's model, the paper's 20/80 split of D_f / D_f,clean, 1000 "
          "D_r^val samples; settings with lr·2·λ_KL·max F ≥ 3.8 pruned before training. Score "
          "(\"val score\", %): B and C, the minimum over the pattern's validation sets; A "
          "`min`, min(D_r, 100 − D_f); A `target`, 100 + D_r once D_f ≤ 2 %, else 100 − D_f. "
          "Budget: each completed trial is one 10-epoch forgetting run on 80 % of D_f (a pruned "
          "one costs nothing); the minutes column is what the whole search took on that device "
          "(cuda: the lent H200, with up to 7 searches sharing it; cpu: the 2-core machine).", "",
          "| pattern | transform | Fisher | device | trials (pruned) | minutes | best lr | best λ_KL | best λ_f | val score | Table S1 lr / λ_KL / λ_f |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in sorted(searches, key=lambda r: (r["pattern"], r["transform"], r["fisher"],
                                             r.get("objective", ""))):  # fmt: skip
        p, t = r["pattern"], r["transform"]
        pruned = sum(x["state"] == "PRUNED" for x in r["trials"])
        s1 = paper_settings("fashion-mnist", t, p)
        b = r["best"]
        name = f"{p} ({r['objective']})" if p == "A" else p
        L.append(f"| {name} | {t} | {r['fisher']} | {r.get('device', '?')} | "
                 f"{len(r['trials'])} ({pruned}) | {r['seconds'] / 60:.1f} | "
                 f"{b['lr']:.3g} | {b['lambda_kl']:.3g} | {b['lambda_f']:.3g} | "
                 f"{100 * r['best_score']:.1f} | {s1.lr:.3g} / {s1.lambda_kl:.3g} / {s1.lambda_f:.3g} |")  # fmt: skip
    chosen = [r for r in runs_ if r["fisher"] == fisher]
    for pattern in ("B", "C"):
        for transform in ("line", "tile"):
            mine = [r for r in chosen if r["pattern"] == pattern and r["transform"] == transform]
            if not mine:
                continue
            seeds = sorted({r["seed"] for r in mine})
            name = f"{pattern}-{transform}.png"
            plot(mine, pattern, transform, figs / name)
            L += ["", f"## Pattern {pattern}, {transform} (seeds {', '.join(map(str, seeds))})", "",
                  f"![Pattern {pattern}, {transform}](finer/{name})", "",
                  "| settings | model | " + " | ".join(SETS) + " |",
                  "|---|---|" + "---|" * len(SETS)]  # fmt: skip
            for which in ("table-s1", "searched"):
                rs = [r for r in mine if r["settings"] == which]
                for label in ("pretrained", *LOSSES):
                    if not rs:
                        continue
                    cells = [_ms([r["accuracy"][label][s] for r in rs]) for s in SETS]
                    L.append(f"| {which} | {label} | " + " | ".join(cells) + " |")
            searched = [r for r in mine if r["settings"] == "searched"]
            if searched:
                met = [goals(pattern, r["accuracy"]["pretrained"], r["accuracy"]["CE+Fisher+RLD"])
                       for r in searched]  # fmt: skip
                parts = [f"{k}: {sum(m[k] for m in met)}/{len(met)} seeds" for k in met[0]]
                L += ["", "Goals for the searched full loss: " + "; ".join(parts) + "."]
    a_rows = [r for r in runs_ if r["pattern"] == "A"]
    if a_rows:
        L += ["", "## Pattern A (class 0, no transform), RLD", "",
              "Goal: D_f ≤ 2 % on every seed with D_r within 3 points of the pretrained model.", "",
              "| settings | Fisher | seed | lr / λ_KL | D_r pretrained → RLD (drop) | D_f pretrained → RLD | goal |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
        order = {"fixed": 0, "searched": 1}
        for r in sorted(a_rows, key=lambda r: (order[r["settings"]], r.get("objective", ""),
                                               r["fisher"] != fisher, r["seed"])):  # fmt: skip
            pre, aft = r["accuracy"]["pretrained"], r["accuracy"]["RLD"]
            drop = pre["D_r"] - aft["D_r"]
            ok = aft["D_f"] <= 2.0 and drop <= 3.0
            label = r["settings"] + (f" ({r['objective']})" if r.get("objective") else "")
            L.append(f"| {label} | {r['fisher']} | {r['seed']} | {r['hyper']['lr']:.3g} / "
                     f"{r['hyper']['lambda_kl']:.3g} | {pre['D_r']:.1f} → {aft['D_r']:.1f} "
                     f"({drop:.1f}) | {pre['D_f']:.1f} → {aft['D_f']:.1f} | "
                     f"{'met' if ok else 'missed'} |")  # fmt: skip
    text = out.read_text() if out.exists() else ""
    write_page(out, splice(text, "# The full Fashion-MNIST reproduction (`python scripts/"
                                 "finer_full.py`)\n\n" + "\n".join(L) + "\n", MARKER))


PAGE = Page(doc=__doc__, options=FinerOptions, run=run, table=table,
            runs=Path("runs/finer-full"), out=Path("docs/results/finer-forgetting.md"))
