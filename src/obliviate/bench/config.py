"""The benchmark grid as one frozen dataclass, loadable from a TOML file with CLI overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI (declared in pyproject)
    import tomli as tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.errors import ObliviateError
from obliviate.training import TrainConfig, dataset_train_config

#: The methods of the paper's comparison (Tables 2-5) plus the gold standard.
PAPER_METHODS = ("mnemonic", "mnemonic-data", "ssd", "sfdn", "fastmu", "lwsf", "erm-ktp", "retrain")


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark grid: every method x every seed on one dataset/model/forget request.

    Attributes:
        dataset, model: registered names.
        methods: registered method names, run in this order.
        forget_classes: the classes every method forgets.
        seeds: one trained model per seed (training, codes and method seeds alike).
        train: :class:`~obliviate.training.TrainConfig` fields (the seed comes from ``seeds``).
        codes: train with mnemonic codes.
        hyperparameters: per-method keyword arguments, e.g. ``{"ssd": {"alpha": 10}}``.
        relearn_steps: steps of the relearn probe (0 skips RE and S).
        mia: compute MIA-efficacy.
        reference: compare every method with a model retrained without the forget classes
            (the ``retrain`` method with its hyperparameters here, trained once per seed and
            cached).
        evidence: with ``reference``, add the depth evidence of every row
            (:mod:`obliviate.evidence`: prototype attacks, relearn time, agreement with the
            retrained model) as ``ev_*`` columns.
        data_dir: where the dataset files are.
    """

    dataset: str = "digits"
    model: str = "fc"
    methods: tuple[str, ...] = PAPER_METHODS
    forget_classes: tuple[int, ...] = (0,)
    seeds: tuple[int, ...] = (0,)
    train: dict[str, Any] = field(default_factory=dict)
    codes: bool = True
    hyperparameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    relearn_steps: int = 1000
    mia: bool = True
    reference: bool = True
    evidence: bool = True
    data_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.methods:
            raise ObliviateError("the benchmark needs at least one method")
        if not self.seeds:
            raise ObliviateError("the benchmark needs at least one seed")
        unknown = set(self.hyperparameters) - set(self.methods)
        if unknown:
            raise ObliviateError(
                f"hyperparameters given for {sorted(unknown)}, which are not in methods"
            )
        self.train_config(0)  # validates the training fields early

    def train_config(self, seed: int) -> TrainConfig:
        """The training recipe of the model of ``seed``: the grid's [train] settings over the
        dataset's defaults (``obliviate.training.DATASET_TRAIN_DEFAULTS``)."""
        try:
            return dataset_train_config(self.dataset, **{**self.train, "seed": seed})
        except TypeError as exc:
            known = ", ".join(f.name for f in dataclasses.fields(TrainConfig) if f.name != "seed")
            raise ObliviateError(f"bad [train] settings: {exc}; known: {known}") from None

    def model_key(self, seed: int) -> str:
        """Identifies the trained model of ``seed``: same key, same model file is reused."""
        payload = {
            "dataset": self.dataset, "model": self.model, "codes": self.codes,
            "train": dataclasses.asdict(self.train_config(seed)),
        }  # fmt: skip
        return _digest(payload)

    def row_key(self, method: str, seed: int) -> str:
        """Identifies one result row: model, forget request, method and its settings."""
        payload = {
            "model": self.model_key(seed), "method": method,
            "forget_classes": list(self.forget_classes),
            "hyperparameters": self.hyperparameters.get(method, {}),
            "relearn_steps": self.relearn_steps, "mia": self.mia, "reference": self.reference,
            "evidence": self.evidence,
        }  # fmt: skip
        return _digest(payload)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


def _digest(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path | None = None, **overrides: Any) -> BenchConfig:
    """A :class:`BenchConfig` from a TOML file (optional) with ``overrides`` (non-None) on top.

    The file's keys are the dataclass fields; ``[train]`` and ``[hyperparameters.METHOD]`` are
    tables. Example::

        dataset = "fashion-mnist"
        methods = ["mnemonic", "ssd"]
        seeds = [0, 1, 2]
        [train]
        epochs = 10
        [hyperparameters.ssd]
        alpha = 10.0
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ObliviateError(f"config file {path} does not exist")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ObliviateError(f"{path} is not valid TOML: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(BenchConfig)}
    unknown = set(values) - known
    if unknown:
        raise ObliviateError(
            f"unknown benchmark setting(s) {sorted(unknown)}; known: {', '.join(sorted(known))}"
        )
    for key in ("methods", "forget_classes", "seeds"):
        if key in values:
            values[key] = tuple(values[key])
    return BenchConfig(**values)
