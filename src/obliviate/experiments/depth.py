"""How deep does each method forget? Every method against a model retrained without the classes,
on outputs and on what the features still reveal (docs/results/depth.md).

    python scripts/depth.py run --suite fc --seeds 0,1,2 --methods mnemonic-variants
    python scripts/depth.py run --suite digits --seeds 0 --methods all
    python scripts/depth.py table          # rewrite docs/results/depth.md from the results

Suites: ``fc`` and ``convnet`` on Fashion-MNIST (10 epochs, the paper's recipe), ``digits``
(fc, 40 epochs at lr 0.1), ``resnet`` (the CIFAR ResNet-18 with batch norm at width 8, on
Fashion-MNIST, 4 epochs: about five minutes per model on one CPU core; issue 35 asks for
requests ``0,3,7,2+4+6``). Requests: every class alone, {1,8} and {2,4,6} (``--requests`` picks
a subset, e.g. ``3,7,1+8``). For each (suite, seed, request): the model is trained once, the
reference is retrained once (``obliviate.references.retrained_reference``, the ``retrain``
method with the model's recipe), and every method forgets; each result is measured with
``obliviate.evidence`` (prototype attacks at k = 1 and 10, one block earlier where the model has
one, RE, relearn time, agreement and JS divergence to the reference, MIA) plus A_R against the
truncation oracle (the original with the forget classes' logits masked). One JSON row per
(suite, seed, request, method) goes to RUNS/results.jsonl; a rerun skips the rows it has
(with ``--shadows N``, it measures again, with U-LiRA, a row it has without it, in its place),
and ``run`` starts from the rows committed beside the page when RUNS has none.

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
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

import obliviate
from obliviate import api, references
from obliviate.errors import NotVerifiedError, ObliviateError
from obliviate.bands import depth_verdict
from obliviate.evidence import EvidenceConfig, gather_evidence
# the page and what its rows mean: obliviate.experiments.depth_page (re-exported for
# scripts/depth.py and its tests)
from obliviate.experiments.depth_page import (
    GOALS,
    GROUPS,
    MODEL_OPTIONS,
    REQUESTS,
    ROWS,
    SUITES,
    goals_failed,
    meets,
    summarise,
    table,
    verdict,
)
from obliviate.experiments.engine import Page, Results, run_queue
from obliviate.metrics import RelearnConfig
from obliviate.training import predict

log = logging.getLogger(__name__)
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
    shadows: int = field(default=0, metadata={"help": "class-level U-LiRA: shadow forgets and "
                                              "shadow retrains per request and row (cached)"})


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
        self.shadows = options.shadows
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
                                   codes=codes, model_kwargs=MODEL_OPTIONS.get(self.suite),
                                   progress=False)  # fmt: skip
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
            try:  # the output-only forget: the closeness to retraining a deep one must keep
                output_only = api.forget(bundle, classes, depth="output", progress=False).model
            except ObliviateError:
                output_only = None
            self.requests[key] = {"reference": reference, "measures": None, "oracle": oracle,
                                  "output_only": output_only}  # fmt: skip
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
            elif label == "retrain-seed+1":
                result = references.retrained_reference(bundle, classes, data, seed=seed + 1,
                                                        cache_dir=self.runs / "references",
                                                        progress=False)  # fmt: skip
            else:
                result = api.forget(bundle, classes, method=method,
                                    data=data if with_data else None, seed=seed,
                                    progress=False, force=force, **hyper)  # fmt: skip
        except (NotVerifiedError, ObliviateError) as exc:
            return {"suite": self.suite, "seed": seed, "classes": classes, "label": label,
                    "refused": str(exc)[:300], "measures": 2}  # fmt: skip
        shadows = None
        if self.shadows:
            from obliviate.ulira import shadow_models

            shadows = shadow_models(bundle, classes, n=self.shadows, data=data, method=method,
                                    hyperparameters=hyper, with_data=with_data,
                                    cache_dir=self.runs / "shadows", progress=False)  # fmt: skip
        report = gather_evidence(result.model.eval(), reference.model.eval(), data,
                                 classes, original=bundle.model.eval(), config=self.config,
                                 reference_measures=request["measures"],
                                 output_only=request["output_only"], shadows=shadows)  # fmt: skip
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
            "output_only_agreement": report.output_only_agreement, "ulira": report.ulira,
            "bands": depth_verdict(report), "measures": 2,
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
    # "measures": 2, the attacker's measures (issue 34): rows made before them are not reused
    plan = ({"suite": options.suite, "seed": seed, "classes": classes, "label": label,
             "measures": 2}
            for seed in [int(s) for s in options.seeds.split(",")]
            for classes in parse_requests(options.requests) for label in labels)  # fmt: skip
    redo = None
    if options.shadows:  # a row measured before without U-LiRA is measured again with it
        def redo(done: dict) -> dict | None:
            if done.get("ulira") or "refused" in done:
                return None
            return suite.row({field: done[field] for field in PAGE.key})
    run_queue(Results(results), plan, suite.row, redo=redo, describe=_describe)



__all__ = ["GOALS", "GROUPS", "PAGE", "REQUESTS", "ROWS", "SUITES", "goals_failed", "meets",
           "run", "summarise", "table", "verdict"]

PAGE = Page(doc=__doc__, options=DepthOptions, run=run, table=table, runs=Path("runs/depth"),
            out=Path("docs/results/depth.md"),
            key=("suite", "seed", "classes", "label", "measures"),
            # the same row measured again with U-LiRA (run --shadows N) takes the old one's place
            replaces=lambda old, new: bool(new.get("ulira")) and not old.get("ulira"))  # fmt: skip
