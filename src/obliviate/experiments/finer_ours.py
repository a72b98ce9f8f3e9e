"""Ours beside Hayase et al.'s method on Fashion-MNIST (issue 25): Patterns B and C, line and
tile on class 0, 3 seeds, each method searched on seed 0 only (seeds 1 and 2 are held out).

    python scripts/finer_ours.py --runs runs/finer-ours --device cuda --trials 30
    python scripts/finer_ours.py --runs runs/finer-ours --table-only      # page section + plots

or, one process per job on one GPU (about 10 minutes on the H200, see the page section):

    FINER_SCRIPT=scripts/finer_ours.py scripts/finer_parallel.sh runs/finer-ours cuda \\
        B:line:retain:30:paper B:line:retain:30:ours-rld ... -- --data-dir DIR

On the 2-core CPU (no GPU lent), the page's rows came from a cheaper run: the paper's loss at the
settings scripts/finer_full.py's search found (``--paper-settings page``), 8 trials for ours,
each transform in its own runs folder (``T`` = line or tile), merged for the page::

    F="--data-dir DIR --paper-settings page --transforms T --runs runs/finer-ours-T"
    python scripts/finer_ours.py $F --trials 8 --patterns B --jobs paper,ours-rld --no-reference
    python scripts/finer_ours.py $F --trials 8 --patterns C --jobs paper,ours-clean-self --no-reference
    python scripts/finer_ours.py $F --patterns B --jobs paper            # the clean retrains
    # then, line only: --trials 20 --patterns C --jobs paper,ours-clean-self@narrow --no-reference
    # and --trials 16 (line) / 12 (tile) --patterns B --jobs paper,ours-rld@narrow --no-reference
    # then the maximin variants on the rows above (and C tile @narrow, 12 trials), per T:
    R="$F --no-reference --recalibrate"
    python scripts/finer_ours.py $R --trials 16 --patterns B --jobs paper,ours-rld,ours-rld@narrow
    python scripts/finer_ours.py $R --trials 20 --patterns C --jobs paper,ours-clean-self,ours-clean-self@narrow
    # (--trials 12 for C on tile)
    cat runs/finer-ours-line/results.jsonl runs/finer-ours-tile/results.jsonl \
        > docs/results/finer/ours/results.jsonl
    python scripts/finer_ours.py --runs docs/results/finer/ours --table-only

Jobs (``--jobs``), per pattern and transform:

- ``paper``: the paper's loss with its searched settings (Optuna on seed 0, as
  ``scripts/finer_full.py``). Variants per seed: ``paper`` (trained on all of D_f: the
  reproduction) and, trained on four fifths of D_f, ``paper + offset`` and ``paper +
  offset+scale``: the calibration alone (:mod:`obliviate.finer.calibration`).
- ``ours-TERM`` (TERM: ``rld``, ``clean-self``, ``clean-old``): our loss
  (:mod:`obliviate.finer.ours`) with its own search (lr, lambda_KL, lambda_f, lambda_other;
  each trial scored after an ``offset`` calibration). Variants per seed, from one forgetting
  run on four fifths of D_f: ``ours-TERM, no calibration``, ``ours-TERM + offset``,
  ``ours-TERM + offset+scale``.

Every calibration is fitted on the search's validation sets of that seed (1000 D_r training
samples, their transformed copies, the held-out fifth of D_f / D_f,clean), aiming at the goals
(first how many are reached, then the lowest margin), and again aiming at the lowest margin
alone (the ``(maximin)`` variants); the test parts are only measured. The forgotten model behind
each run is kept in RUNS/forgotten, so a rerun with the run rows removed compares calibrations
without forgetting again. Rows go to RUNS/results.jsonl (a rerun skips what is there;
the searches resume from RUNS/search.db). The page section sits between
``<!-- finer_ours.py: begin -->`` and ``<!-- finer_ours.py: end -->`` in
docs/results/finer-forgetting.md, above ``scripts/finer_full.py``'s part, which it leaves alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import obliviate
from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.experiments.engine import Page, Results, ints, names, run_queue
from obliviate.experiments.finer_full import new_mlp, train_mlp
from obliviate.experiments.finer_ours_page import JOBS, NARROW, write_section
from obliviate.finer import build_finer_data
from obliviate.finer.calibration import (
    SCALE_GRID,
    calibration_targets,
    fit_logit_calibration,
    fold_calibration,
    search_validation,
)
from obliviate.finer.forgetting import (
    FISHER_DATA,
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
)
from obliviate.finer.ours import OURS_LAMBDA_OTHER_RANGE, calibrated_forget, ours_settings
from obliviate.finer.tuning import max_fisher, paper_settings, tune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OursOptions:
    """The runs' data, device, seeds, jobs and budget (the page needs only ``fisher``)."""

    dataset: str = "fashion-mnist"
    data_dir: Path | None = field(default=None, metadata={"type": Path})
    device: str = "cpu"
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={
        "type": ints, "help": "the first is the one searched on"})  # fmt: skip
    trials: int = 30
    pretrain_epochs: int = 10
    forget_epochs: int = 10
    patterns: tuple[str, ...] = field(default=("B", "C"), metadata={"type": names})
    transforms: tuple[str, ...] = field(default=("line", "tile"), metadata={"type": names})
    jobs: tuple[str, ...] = field(
        default=("paper", "ours-rld", "ours-clean-self", "ours-clean-old"),
        metadata={"type": names, "help": f"comma-separated, from {', '.join(JOBS)}"})  # fmt: skip
    fisher: str = field(default="retain", metadata={"choices": FISHER_DATA})
    max_train: int | None = field(default=None, metadata={
        "type": int, "help": "smoke runs only: keep this many training samples"})  # fmt: skip
    max_test: int | None = field(default=None, metadata={
        "type": int, "help": "smoke runs only: keep this many test samples"})  # fmt: skip
    reference: bool = field(default=True, metadata={
        "help": "also train the clean retrain (D_r ∪ D_f,clean) of each transform and seed: "
                "the goals' yardstick"})  # fmt: skip
    paper_settings: str = field(default="search", metadata={
        "choices": ("search", "page"),
        "help": "the paper's loss: search its settings here (Optuna on seed 0), or take the ones "
                "scripts/finer_full.py's search found from the page (its table, 3 significant "
                "digits; a CPU-budget shortcut)"})  # fmt: skip
    recalibrate: bool = field(default=False, metadata={
        "help": "rows without the (maximin) variants: forget again on 4/5 of D_f (or load "
                "RUNS/forgotten), fit every calibration, replace the row; the paper's "
                "reproduction on all of D_f is kept from the old row"})  # fmt: skip

    def __post_init__(self) -> None:
        # Pattern A and its transform "none" are finer_full's (finer_parallel.sh may name them)
        object.__setattr__(self, "patterns", tuple(p for p in self.patterns if p != "A"))
        object.__setattr__(self, "transforms", tuple(t for t in self.transforms if t != "none"))
        if self.seeds[0] != 0:
            raise ObliviateError("--seeds must start with 0, the seed the searches run on")
        unknown = [j for j in self.jobs if j not in JOBS]
        if unknown:
            raise ObliviateError(f"unknown jobs {unknown}; known: {', '.join(JOBS)}")


def _percent(acc: dict[str, float]) -> dict[str, float]:
    return {k: 100.0 * v for k, v in acc.items()}


def _shrink(split: Split, n: int | None, seed: int) -> Split:
    """At most ``n`` samples of ``split`` (a smoke run's data; ``None`` keeps all)."""
    if n is None or len(split) <= n:
        return split
    pick = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return Split(split.x[pick], split.y[pick])



def _describe(row: dict) -> str:
    return json.dumps({k: v for k, v in row.items() if k != "trials"})


class Runner:
    def __init__(self, options: OursOptions, runs: Path, out: Path) -> None:
        self.options, self.runs, self.out = options, runs, out
        self.results = Results(runs / "results.jsonl")
        raw = obliviate.load_dataset(options.dataset, data_dir=options.data_dir)
        self.data = Dataset(raw.name, _shrink(raw.train, options.max_train, 0),
                            _shrink(raw.test, options.max_test, 1), raw.num_classes,
                            raw.input_shape)  # fmt: skip
        self.models: dict[tuple, tuple] = {}
        self.settings: dict[tuple, ForgetSettings] = {}
        self.start = time.perf_counter()

    def stamp(self, row: dict) -> dict:
        row.update(elapsed=time.perf_counter() - self.start, device=self.options.device,
                   fisher=self.options.fisher)  # fmt: skip
        return row

    def log(self, row: dict) -> None:
        self.results.append(self.stamp(row))
        log.info("%s", _describe(row))

    def has(self, **key) -> dict | None:
        key.setdefault("fisher", self.options.fisher)
        return self.results.find(**key)

    def _train_mlp(self, split: Split, seed: int) -> torch.nn.Module:
        """The paper's MLP of ``seed`` trained on ``split`` as the full reproduction trains it."""
        return train_mlp(self.data, split, seed, epochs=self.options.pretrain_epochs,
                         device=self.options.device)[0]  # fmt: skip

    def reference(self, key: dict) -> dict:
        """The clean retrain of ``seed``: the same MLP and recipe trained on ``D_r ∪
        D_f,clean``, i.e. as if the transform had never been in the data. It is what retraining
        would give a user of either pattern: the yardstick for the goals."""
        transform, seed = key["transform"], key["seed"]
        data = build_finer_data(self.data, [0], transform)
        clean = Split(torch.cat([data.retain.train.x, data.forget_clean.train.x]),
                      torch.cat([data.retain.train.y, data.forget_clean.train.y]))  # fmt: skip
        t0 = time.perf_counter()
        net = self._train_mlp(clean, seed)
        return self.stamp({"kind": "reference", "dataset": self.data.name, "transform": transform,
                           "seed": seed, "accuracy": _percent(accuracies(net, data)),
                           "seconds": time.perf_counter() - t0})  # fmt: skip

    def poisoned(self, transform: str, seed: int) -> tuple:
        """The poisoned MLP of ``seed`` (trained as the full reproduction trains it) and its
        Fisher."""
        key = (transform, seed)
        if key not in self.models:
            data = build_finer_data(self.data, [0], transform)
            # kept on disk, so that parallel or resumed processes train each model once
            path = (self.runs / "models" /
                    f"{self.data.name}-{transform}-s{seed}-{self.options.fisher}.pt")
            if path.exists():
                state = torch.load(path, map_location=self.options.device, weights_only=True)
                net = new_mlp(self.data, self.options.device)
                net.load_state_dict(state["model"])
                net.eval()
                fisher = state["fisher"]
            else:
                net = self._train_mlp(data.pretraining(), seed)
                fisher = pretraining_fisher(net, data, on=self.options.fisher)
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                torch.save({"model": net.state_dict(), "fisher": fisher}, tmp)
                tmp.replace(path)
            self.models[key] = (data, net, fisher)
        return self.models[key]

    def page_settings(self, pattern: str, transform: str) -> dict[str, float] | None:
        """The paper's loss's searched settings as finer_full.py's table on the page prints
        them (3 significant digits), for ``--paper-settings page``."""
        if not self.out.exists():
            return None
        for line in self.out.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 10 and cells[:3] == [pattern, transform, self.options.fisher]:
                lr, lambda_kl, lambda_f = (float(c) for c in cells[6:9])
                return {"lr": lr, "lambda_kl": lambda_kl, "lambda_f": lambda_f,
                        "lambda_other": 0.0}  # fmt: skip
        return None

    def settings_for(self, pattern: str, transform: str, job: str) -> ForgetSettings:
        """The job's settings searched on seed 0 (run now unless RUNS holds them)."""
        base = paper_settings(self.data.name, transform, pattern,
                              epochs=self.options.forget_epochs)  # fmt: skip
        ours = job != "paper"
        narrow = job.endswith("@narrow")
        if ours:
            base = ours_settings(base, term=job.removeprefix("ours-").removesuffix("@narrow"))
        row = self.has(kind="search", pattern=pattern, transform=transform, job=job)
        if row is None and not ours and self.options.paper_settings == "page":
            found = self.page_settings(pattern, transform)
            if found is None:
                raise ObliviateError(f"no {pattern}/{transform}/{self.options.fisher} row in "
                                     f"{self.out}'s finer_full.py search table")  # fmt: skip
            row = {"kind": "search", "pattern": pattern, "transform": transform, "job": job,
                   "source": "page", "seconds": 0.0, "best": found, "best_score": float("nan"),
                   "trials": []}  # fmt: skip
            self.log(row)
        if row is None:
            data, net, fisher = self.poisoned(transform, 0)
            start, ranges = None, None
            if ours:  # first try the paper's searched settings with a few lambda_other
                paper = self.has(kind="search", pattern=pattern, transform=transform, job="paper")
                if paper is not None:
                    start = [{**paper["best"], "lambda_other": other} for other in (1.0, 0.1)]
                if narrow:
                    if paper is None:
                        raise ObliviateError(f"{job} searches around the paper's settings: run "
                                             "job 'paper' first")  # fmt: skip
                    ranges = {k: (paper["best"][k] / NARROW, paper["best"][k] * NARROW)
                              for k in ("lr", "lambda_kl", "lambda_f")}  # fmt: skip
                    ranges["lambda_other"] = (0.03, 3.0)
            t0 = time.perf_counter()
            result = tune(net, data, base, fisher, trials=self.options.trials, seed=0,
                          storage=f"sqlite:///{self.runs / 'search.db'}",
                          study_name=f"{pattern}-{transform}-{job}-{self.options.fisher}",
                          lambda_other_range=OURS_LAMBDA_OTHER_RANGE if ours else None,
                          calibration="offset" if ours else "none", calibration_aim="goals",
                          start=start,
                          ranges=ranges, score="goals" if narrow else "min")  # fmt: skip
            best = result.best
            row = {"kind": "search", "pattern": pattern, "transform": transform, "job": job,
                   "seconds": time.perf_counter() - t0, "ranges": ranges,
                   "score": "goals" if narrow else "min",
                   "best": {"lr": best.lr, "lambda_kl": best.lambda_kl,
                            "lambda_f": best.lambda_f, "lambda_other": best.lambda_other},
                   "best_score": result.best_score, "max_fisher": max_fisher(fisher),
                   "trials": result.trials}  # fmt: skip
            self.log(row)
        return dataclasses.replace(base, **row["best"])

    def plan(self):
        """The run rows' keys; each job's settings are found (searched when RUNS has no search
        row) before its first key."""
        for pattern in self.options.patterns:
            for transform in self.options.transforms:
                for job in self.options.jobs:
                    self.settings[pattern, transform, job] = self.settings_for(pattern, transform,
                                                                               job)  # fmt: skip
                    for seed in self.options.seeds:
                        yield {"kind": "run", "pattern": pattern, "transform": transform,
                               "job": job, "seed": seed, "fisher": self.options.fisher}  # fmt: skip

    def run_row(self, key: dict) -> dict:
        return self.stamp(self.one(key["pattern"], key["transform"], key["job"], key["seed"]))

    def recalibrated(self, done: dict) -> dict | None:
        """``--recalibrate``: ``done`` measured again with every calibration, if it lacks the
        (maximin) variants."""
        if not self.options.recalibrate or f"{done['job']} + offset (maximin)" in done["accuracy"]:
            return None
        return self.stamp(self.one(done["pattern"], done["transform"], done["job"],
                                   done["seed"], previous=done))  # fmt: skip

    def forgotten(self, pattern: str, transform: str, job: str, seed: int,
                  settings: ForgetSettings, seconds: dict) -> torch.nn.Module:  # fmt: skip
        """The job's model forgotten on four fifths of D_f, before any calibration. Kept in
        RUNS/forgotten, so that calibrations can be compared later without forgetting again."""
        data, net, fisher = self.poisoned(transform, seed)
        path = (self.runs / "forgotten" /
                f"{self.data.name}-{pattern}-{transform}-{job}-s{seed}-{self.options.fisher}.pt")
        if path.exists():
            out = new_mlp(self.data, self.options.device)
            state = torch.load(path, map_location=self.options.device, weights_only=True)
            out.load_state_dict(state)
            return out.eval()
        t0 = time.perf_counter()
        run = calibrated_forget(net, data, settings, fisher=fisher, calibration="offset",
                                seed=seed)  # fmt: skip
        seconds[job + " (4/5 of D_f)"] = time.perf_counter() - t0
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(run.uncalibrated.state_dict(), tmp)
        tmp.replace(path)
        return run.uncalibrated.eval()

    def one(self, pattern: str, transform: str, job: str, seed: int,
            previous: dict | None = None) -> dict:  # fmt: skip
        """One seed's row. With ``previous`` (the same run's older row, ``--recalibrate``), the
        paper's reproduction (trained on all of D_f) is taken from it, not trained again."""
        settings = dataclasses.replace(self.settings[pattern, transform, job], seed=seed)
        data, net, fisher = self.poisoned(transform, seed)
        acc = {"pretrained": _percent(accuracies(net, data))}
        calibrations, seconds = {}, {}
        if previous is not None and "paper" in previous["accuracy"]:
            acc["paper"] = previous["accuracy"]["paper"]
            seconds["paper"] = previous["seconds"].get("paper")
        elif job == "paper":
            t0 = time.perf_counter()
            acc["paper"] = _percent(accuracies(selective_forget(net, data, settings,
                                                                fisher=fisher), data))  # fmt: skip
            seconds["paper"] = time.perf_counter() - t0
        uncalibrated = self.forgotten(pattern, transform, job, seed, settings, seconds)
        val = search_validation(data, seed=seed)
        targets = calibration_targets(net, val.retain, pattern, "goals")
        if job != "paper":
            acc[f"{job}, no calibration"] = _percent(accuracies(uncalibrated, data))
        for aim, suffix in (("goals", ""), ("maximin", " (maximin)")):
            for name, scales in (("offset", (1.0,)), ("offset+scale", SCALE_GRID)):
                cal = fit_logit_calibration(uncalibrated, val.sets(data), pattern, data.classes,
                                            scales=scales, targets=targets,
                                            reached_first=aim != "maximin")  # fmt: skip
                label = f"{job} + {name}{suffix}"
                acc[label] = _percent(accuracies(fold_calibration(uncalibrated, cal), data))
                calibrations[label] = dataclasses.asdict(cal)
        hyper = {k: getattr(settings, k) for k in ("lr", "lambda_kl", "lambda_f", "lambda_other",
                                                   "term")}  # fmt: skip
        return {"kind": "run", "dataset": self.data.name, "pattern": pattern,
                "transform": transform, "job": job, "seed": seed, "hyper": hyper,
                "accuracy": acc, "calibration": calibrations, "seconds": seconds}


def run(options: OursOptions, runs: Path, out: Path) -> None:
    """Every job's search, then its rows, then the clean retrains: what RUNS lacks."""
    runs.mkdir(parents=True, exist_ok=True)
    runner = Runner(options, runs, out)
    run_queue(runner.results, runner.plan(), runner.run_row, redo=runner.recalibrated,
              describe=_describe)  # fmt: skip
    if options.reference:
        plan = ({"kind": "reference", "transform": transform, "seed": seed,
                 "fisher": options.fisher}
                for transform in options.transforms for seed in options.seeds)  # fmt: skip
        run_queue(runner.results, plan, runner.reference, describe=_describe)


def table(options: OursOptions, runs: Path, out: Path) -> None:
    write_section(runs, out, options.fisher)


PAGE = Page(doc=__doc__, options=OursOptions, run=run, table=table,
            runs=Path("runs/finer-ours"), out=Path("docs/results/finer-forgetting.md"))
