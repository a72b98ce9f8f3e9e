"""``obliviate bench``: train (or reuse) one model per seed, run every method, evaluate, record.

Every row is evaluated the same way: the paper's A_R, FE, RE and S, the method's own time from
the audit record, train/test accuracy on the forget and retain classes, MIA-efficacy, and the
distance to a model retrained without the forget classes (accuracy gaps per split and the mean
KL divergence on forget-class test samples).

Data-based methods get the training split; methods that need only codes (``mnemonic``,
``lwsf``) run data-free, which is the setting the mnemonic paper claims for them.
"""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path
from typing import Any

import torch

from obliviate import api
from obliviate.bench.config import BenchConfig
from obliviate.bench.results import ResultsFile
from obliviate.checkpoint import ModelBundle, load, save
from obliviate.codes import CodeConfig
from obliviate.data import Dataset
from obliviate.errors import ObliviateError
from obliviate.methods import METHODS
from obliviate.metrics import (
    mean_kl_divergence,
    mia_efficacy,
    true_class_confidence,
)
from obliviate.progress import progress_bar, progress_note
from obliviate.training import predict, resolve_device

log = logging.getLogger(__name__)


def split_accuracies(model: torch.nn.Module, data: Dataset, forget: list[int]) -> dict[str, float]:
    """Accuracy (%) on the forget/retain samples of the train and test splits."""
    out = {}
    for split_name, split in (("train", data.train), ("test", data.test)):
        preds = predict(model, split.x)
        is_forget = torch.isin(split.y, torch.tensor(forget))
        for part, mask in (("forget", is_forget), ("retain", ~is_forget)):
            correct = (preds[mask] == split.y[mask]).float()
            out[f"{part}_{split_name}_acc"] = 100.0 * correct.mean().item() if mask.any() else None
    return out


def _check_methods(config: BenchConfig) -> None:
    """Unknown methods and hyperparameters a method does not take or accept raise here."""
    for name in config.methods:
        method = METHODS.get(name)  # unknown names raise with the list of known ones
        hyper = config.hyperparameters.get(name, {})
        try:
            method(**hyper)
        except TypeError as exc:
            raise ObliviateError(f"bad hyperparameters for {name!r} in the grid: {exc}") from None


class BenchRunner:
    """Runs one :class:`BenchConfig` into ``out_dir`` (resumable)."""

    def __init__(self, config: BenchConfig, out_dir: str | Path, *, device: str | None = None,
                 progress: bool = True) -> None:  # fmt: skip
        _check_methods(config)
        self.config = config
        self.out = Path(out_dir)
        self.device = resolve_device(device)
        self.progress = progress
        self._data: Dataset | None = None
        self._models: dict[tuple[str, int], ModelBundle] = {}  # (kind, seed) -> loaded once
        self._evidence: dict[tuple[str, int], Any] = {}  # the reference's measures per seed

    @property
    def data(self) -> Dataset:
        if self._data is None:
            self._data = api.resolve_dataset(self.config.dataset, self.config.data_dir)
        return self._data

    def model_path(self, seed: int) -> Path:
        return self.out / "models" / f"{self.config.model}-{self.config.model_key(seed)}.safetensors"

    def trained_model(self, seed: int) -> ModelBundle:
        """The model of ``seed``: loaded if a model with the same key exists, else trained."""
        path = self.model_path(seed)
        if path.exists():
            return load(path)
        progress_note(f"seed {seed}: training the model every method starts from",
                      enabled=self.progress)  # fmt: skip
        codes = CodeConfig(seed=seed) if self.config.codes else None
        bundle = api.train(
            self.data, self.config.model, config=self.config.train_config(seed), codes=codes,
            device=self.device, progress=self.progress,
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        save(bundle, path)
        return bundle

    def reference_model(self, seed: int, trained: ModelBundle) -> ModelBundle:
        """The model retrained without the forget classes (the ``retrain`` method with the grid's
        ``retrain`` hyperparameters, if any), cached next to the trained model."""
        path = self.model_path(seed).with_name(
            f"{self.model_path(seed).stem}-retrain-{self.config.row_key('retrain', seed)}"
            ".safetensors"
        )
        if path.exists():
            return load(path)
        progress_note(f"seed {seed}: retraining without classes {list(self.config.forget_classes)}"
                      ", the reference of the distance-to-retrained columns (the 'retrain' bar "
                      "below; --no-reference skips it)", enabled=self.progress)  # fmt: skip
        bundle = api.forget(
            trained, self.config.forget_classes, method="retrain", data=self.data, seed=seed,
            device=self.device, progress=self.progress,
            **self.config.hyperparameters.get("retrain", {}),
        )  # fmt: skip
        save(bundle, path)
        return bundle

    def evaluate_row(
        self, method: str, seed: int, bundle: ModelBundle, reference: ModelBundle | None,
        trained: ModelBundle,
    ) -> dict[str, Any]:  # fmt: skip
        """Every metric of one (method, seed) result."""
        config = self.config
        forget = list(config.forget_classes)
        report = api.evaluate(
            bundle, self.data, forget, relearn_steps=config.relearn_steps, seed=seed,
            device=self.device,
        )  # fmt: skip
        model = bundle.model.to(self.device).eval()
        row: dict[str, Any] = report.to_dict()
        row.update(split_accuracies(model, self.data, forget))
        if config.mia:
            row["mia_efficacy"] = self.mia(model, seed)
        if reference is not None:
            ref_model = reference.model.to(self.device).eval()
            ref_acc = split_accuracies(ref_model, self.data, forget)
            for key, value in ref_acc.items():
                mine = row[key]
                row[f"gap_{key}"] = (
                    abs(mine - value) if mine is not None and value is not None else None
                )
            forget_test = self.data.test.of_classes(forget)
            row["kl_to_retrained"] = mean_kl_divergence(ref_model, model, forget_test.x)
            if config.evidence:
                row.update(self.evidence(model, ref_model, trained, seed))
        record = bundle.history[-1] if bundle.history and method != "original" else {}
        row.update(
            method=method,
            seed=seed,
            seconds=record.get("seconds"),
            hyperparameters=record.get("hyperparameters", {}),
            data_seen=record.get("data"),
        )
        return row

    def _cached(self, kind: str, seed: int, make) -> ModelBundle:
        """Each seed's trained and reference models are loaded or built once per run."""
        if (kind, seed) not in self._models:
            self._models[(kind, seed)] = make()
        return self._models[(kind, seed)]

    def evidence(self, model: torch.nn.Module, reference: torch.nn.Module,
                 trained: ModelBundle, seed: int) -> dict[str, Any]:  # fmt: skip
        """The depth evidence of one row against the retrained model (``ev_*`` columns); the
        reference's own measures are taken once per seed."""
        from obliviate.evidence import EvidenceConfig, gather_evidence
        from obliviate.metrics import RelearnConfig

        # a grid measures every row: KR at k = 10 on the penultimate features only (k = 100 and
        # the earlier blocks are obliviate evidence's), no membership attacks
        config = EvidenceConfig(relearn=RelearnConfig(steps=self.config.relearn_steps,
                                                      seed=seed),
                                mia=False, seed=seed, kr_shots=(10,), kr_blocks=False)  # fmt: skip
        original = trained.model.to(self.device).eval()
        key = ("reference-evidence", seed)
        report = gather_evidence(
            model, reference, self.data, list(self.config.forget_classes), original=original,
            config=config, reference_measures=self._evidence.get(key),
        )  # fmt: skip
        self._evidence[key] = report.reference
        return report.columns()

    def mia(self, model: torch.nn.Module, seed: int) -> float:
        """MIA-efficacy of ``model``: members = retain train, non-members = test, on forget train."""
        forget = list(self.config.forget_classes)
        train = self.data.train
        members = true_class_confidence(model, train.without_classes(forget))
        nonmembers = true_class_confidence(model, self.data.test)
        targets = true_class_confidence(model, train.of_classes(forget))
        return mia_efficacy(members, nonmembers, targets, seed=seed)

    def run(self) -> ResultsFile:
        """Run every unfinished row; return the results file."""
        config = self.config
        # every setting that can be checked is checked before anything is written
        for seed in config.seeds:
            config.train_config(seed)
        self.data.check_classes(config.forget_classes)
        if len(set(config.forget_classes)) >= self.data.num_classes:
            raise ObliviateError("the grid forgets every class: keep at least one")
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
        results = ResultsFile.read(self.out / "results.jsonl")
        done = results.finished()
        grid = [(m, s) for s in config.seeds for m in ("original", *config.methods)]
        todo = [(m, s) for m, s in grid if config.row_key(m, s) not in done]
        skipped = len(grid) - len(todo)
        if not todo:
            progress_note(f"benchmark: all {len(grid)} rows are in {results.path} already; "
                          "nothing to run", enabled=self.progress)  # fmt: skip
            return results
        if skipped:
            progress_note(f"benchmark: {skipped} of {len(grid)} rows are in {results.path} "
                          f"already; running the other {len(todo)}", enabled=self.progress)  # fmt: skip
        with progress_bar("benchmark", total=len(todo), unit="rows (method x seed)",
                          enabled=self.progress) as advance:  # fmt: skip
            for method, seed in todo:
                trained = self._cached("trained", seed, lambda: self.trained_model(seed))
                reference = None
                if config.reference:
                    reference = self._cached(
                        "reference", seed, lambda: self.reference_model(seed, trained)
                    )
                if method == "original":
                    bundle = trained
                elif method == "retrain" and reference is not None:
                    bundle = reference  # the same call with the same seed: reuse it
                else:
                    needs = METHODS.get(method).needs
                    data = self.data if needs & {"forget", "retain"} else None
                    bundle = api.forget(
                        trained, config.forget_classes, method=method, data=data, seed=seed,
                        device=self.device, progress=False, force=True,
                        **config.hyperparameters.get(method, {}),
                    )  # fmt: skip
                row = self.evaluate_row(method, seed, bundle, reference, trained)
                if method != "original":
                    row["verified"] = bundle.history[-1].get("verified")
                    row["depth"] = bundle.history[-1].get("depth")
                row.update(
                    row_key=config.row_key(method, seed),
                    model_key=config.model_key(seed),
                    dataset=config.dataset,
                    model=config.model,
                    forget_classes=list(config.forget_classes),
                    machine=machine_description(self.device),
                )
                results.append(row)
                advance(1)
        return results


#: A class below this test accuracy (%) makes a trained model weak (``train`` and ``bench`` warn).
WEAK_CLASS_ACCURACY = 50.0


def weak_originals(config: BenchConfig, results: ResultsFile) -> list[str]:
    """One sentence per seed of ``config`` whose original (its ``original`` row, before any
    forgetting) has a class below :data:`WEAK_CLASS_ACCURACY` on the test split: the rows of
    that seed measure forgetting on a model that had not learned."""
    seed_of = {config.row_key("original", seed): seed for seed in config.seeds}
    out = []
    for row in results.rows:
        seed = seed_of.get(row.get("row_key"))
        per_class = {int(c): a for c, a in (row.get("per_class_acc") or {}).items() if a is not None}
        if seed is None or not per_class:
            continue
        worst = min(per_class, key=per_class.__getitem__)
        if per_class[worst] < WEAK_CLASS_ACCURACY:
            scores = ", ".join(f"{name} {row[key]:.1f}" for name, key in
                               (("A_R", "retain_acc"), ("FE", "forget_err")) if row.get(key) is not None)  # fmt: skip
            out.append(f"the original of seed {seed} is weak before any forgetting ({scores}; "
                       f"class {worst} at {per_class[worst]:.1f} % on the test split): its rows "
                       "measure a model that had not learned (more --epochs or another --lr "
                       "may help)")  # fmt: skip
    return out


def machine_description(device: torch.device) -> str:
    """A one-line description of where the numbers were measured."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return (f"CPU {platform.machine()} ({torch.get_num_threads()} threads), "
            f"torch {torch.__version__}")  # fmt: skip


def run_bench(config: BenchConfig, out_dir: str | Path, *, device: str | None = None,
              progress: bool = True) -> ResultsFile:  # fmt: skip
    """Run the grid of ``config`` into ``out_dir`` and write its table, plots and report.

    Returns the results file (all rows, including those of earlier runs of the same grid).
    """
    from obliviate.bench.report import write_outputs

    results = BenchRunner(config, out_dir, device=device, progress=progress).run()
    write_outputs(config, results, Path(out_dir))
    return results

