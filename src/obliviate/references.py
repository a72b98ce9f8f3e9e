"""References for the depth evidence: a model retrained without the forget classes (cached by
what it was made from) and :func:`depth_evidence`, the evidence that a forget is deep."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from obliviate.api import _check_forget_classes, bundle_dataset, check_dataset_fits, forget
from obliviate.checkpoint import ModelBundle, weights_sha256
from obliviate.classes import check_class_names, resolve_classes
from obliviate.data import Dataset
from obliviate.errors import ObliviateError
from obliviate.training import resolve_device


def _reference_cache_dir(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    import os

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "obliviate" / "references"


def original_sha256(bundle: ModelBundle) -> str:
    """SHA-256 of the weights the model started from: the input of its first forget request,
    or its own weights when it has forgotten nothing."""
    if bundle.history and bundle.history[0].get("input_sha256"):
        return str(bundle.history[0]["input_sha256"])
    return weights_sha256(bundle.model)


def retrained_reference_path(bundle: ModelBundle, classes: Sequence[int], data: Dataset, *,
                             seed: int = 0, epochs: int | None = None,
                             cache_dir: str | Path | None = None) -> Path:  # fmt: skip
    """Where :func:`retrained_reference` caches the reference of these inputs (the file may not
    exist yet)."""
    import hashlib
    import json

    check_dataset_fits(bundle, data)
    recipe = {
        "original": original_sha256(bundle), "classes": sorted(set(int(c) for c in classes)),
        "seed": seed, "arch": bundle.arch, "arch_kwargs": bundle.arch_kwargs, "dataset": data.name,
        "train_config": bundle.train_config, "codes": bundle.codes is not None,
    }  # fmt: skip
    if epochs is not None:  # absent otherwise, so references cached before keep their key
        recipe["epochs"] = epochs
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:20]
    return _reference_cache_dir(cache_dir) / f"retrained-{key}.safetensors"


def retrained_reference(
    bundle: ModelBundle,
    classes: Sequence[int],
    data: str | Dataset | None = None,
    *,
    seed: int = 0,
    epochs: int | None = None,
    cache_dir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ModelBundle:
    """A model retrained from scratch without ``classes`` with ``bundle``'s recipe (the
    ``retrain`` method: architecture, training settings, codes of the kept classes), for
    ``epochs`` instead of the recipe's when given (a cheaper, rougher reference).

    It is cached in ``cache_dir`` (default ``$XDG_CACHE_HOME/obliviate/references``) under the
    SHA-256 of the original weights (:func:`original_sha256`), the classes, the seed, the
    epochs and the recipe, so a second call with the same inputs loads it instead of training.
    """
    from obliviate.checkpoint import load, save

    data = bundle_dataset(bundle, data) if not isinstance(data, Dataset) else data
    path = retrained_reference_path(bundle, classes, data, seed=seed, epochs=epochs,
                                    cache_dir=cache_dir)  # fmt: skip
    if path.exists():
        return load(path)
    start = dataclasses.replace(bundle, forgotten_classes=[], history=[], stats=None)
    reference = forget(start, sorted(set(int(c) for c in classes)), method="retrain", data=data,
                       seed=seed, device=device, progress=progress,
                       **({"epochs": epochs} if epochs is not None else {}))  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    save(reference, path)
    return reference


def depth_evidence(
    bundle: ModelBundle,
    reference: ModelBundle | None = None,
    dataset: str | Dataset | None = None,
    forget_classes: Sequence[int | str] | None = None,
    *,
    original: ModelBundle | None = None,
    retrain: bool = False,
    retrain_epochs: int | None = None,
    config: Any = None,
    cache_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    retrain_twice: bool = False,
) -> Any:
    """Evidence that ``bundle``'s forget is deep (:mod:`obliviate.evidence`), against a
    reference: ``reference`` (a model retrained without the classes), or one retrained now
    (``retrain=True``, cached, see :func:`retrained_reference`), or else ``original`` (the model
    before forgetting; the report then says the gaps are to the original).

    Args:
        bundle: the forgotten model.
        reference: a model retrained without exactly the forget classes.
        dataset: default the model's; its test split is measured, its training split gives
            the attacker's samples.
        forget_classes: default the classes ``bundle`` has forgotten.
        original: the model before forgetting: sets the relearn-time goal (90 % of its
            forget-class accuracy) and is measured too.
        retrain: build the retrained reference when none is given.
        retrain_epochs: train it for this many epochs instead of the model's recipe's (a
            cheaper look; cached apart).
        config: :class:`~obliviate.evidence.EvidenceConfig`; its ``shadows`` trains (or loads
            from the cache) that many shadow forgets and shadow retrains from ``original``'s
            recipe for class-level U-LiRA, the shadows forgotten with the model's last
            method and hyperparameters.
        retrain_twice: also retrain with seed 1 (cached): the second reference's row and gaps
            show what "as retraining" looks like on each measure.

    With ``original``, its output-only forget (the default data-free forget) is measured too:
    its agreement with the reference is the closeness a deep forget must keep.

    Raises:
        ObliviateError: no forget classes, no reference of any kind, or a reference that
            forgot other classes.
    """
    from obliviate.evidence import EvidenceConfig, gather_evidence

    data = bundle_dataset(bundle, dataset, data_dir, download)
    check_dataset_fits(bundle, data)
    classes = sorted(set(resolve_classes(bundle, forget_classes) if forget_classes is not None
                         else bundle.forgotten_classes))  # fmt: skip
    if not classes:
        raise ObliviateError("this model has forgotten no class; give the classes to judge "
                             "(--forget-classes; in Python the forget_classes argument)")  # fmt: skip
    _check_forget_classes(dataclasses.replace(bundle, forgotten_classes=[]), classes)
    for other, what in ((reference, "reference"), (original, "original")):
        if other is not None:
            check_class_names(bundle, other)
            check_dataset_fits(other, data)
    if reference is not None and sorted(reference.forgotten_classes) != classes:
        raise ObliviateError(
            f"the reference forgot classes {sorted(reference.forgotten_classes)} but the model "
            f"is judged on {classes}; give a model retrained without exactly {classes} "
            "(obliviate forget ORIGINAL --method retrain --data DATASET), or retrain=True / --retrain"
        )
    if original is not None and original.forgotten_classes:
        raise ObliviateError(f"the original model has already forgotten "
                             f"{original.forgotten_classes}; give the model before any forget")  # fmt: skip
    kind, source = "retrained", "retrained, given"
    if reference is None and retrain:
        cached = retrained_reference_path(bundle, classes, data, seed=0, epochs=retrain_epochs,
                                          cache_dir=cache_dir).exists()  # fmt: skip
        source = "retrained, " + ("cached" if cached else "trained now") + (
            f", {retrain_epochs} epochs" if retrain_epochs is not None else "")
        reference = retrained_reference(bundle, classes, data, seed=0, epochs=retrain_epochs,
                                        cache_dir=cache_dir, device=device, progress=progress)  # fmt: skip
    if reference is None:
        if original is None:
            raise ObliviateError(
                "give a reference: a model retrained without the classes (--reference FILE), "
                "--retrain to build one, or the original model (--original FILE: the gaps are "
                "then to the model before forgetting)"
            )
        reference, kind, source = original, "original", "the original"
    config = config or EvidenceConfig()
    second = None
    if retrain_twice:
        if not retrain:
            raise ObliviateError("retrain_twice / --retrain-twice retrains with the model's "
                                 "recipe: use it with retrain=True / --retrain")  # fmt: skip
        second = retrained_reference(bundle, classes, data, seed=1, epochs=retrain_epochs,
                                     cache_dir=cache_dir, device=device, progress=progress)  # fmt: skip
    output_only = shadows = None
    if original is not None:
        try:  # the default data-free forget of the same classes: milliseconds
            output_only = forget(original, classes, depth="output", progress=False)
        except ObliviateError:
            output_only = None  # no codes or statistics: the agreement goal is not set
    if config.shadows:
        if original is None:
            raise ObliviateError("shadows are trained with the original's recipe: give original")
        from obliviate.ulira import shadow_models

        record = bundle.history[-1] if bundle.history else {}
        if not record.get("method"):
            raise ObliviateError("shadows replay the model's forget: this model has no forget "
                                 "record to take its method from")  # fmt: skip
        seen = record.get("data") or {}
        shadows = shadow_models(original, classes, n=config.shadows, data=data,
                                method=record["method"],
                                hyperparameters=record.get("hyperparameters"),
                                with_data=bool(seen.get("forget_samples")
                                               or seen.get("retain_samples")),
                                cache_dir=cache_dir, device=device, progress=progress)  # fmt: skip
    dev = resolve_device(device)
    models = [b.model if b is not None else None
              for b in (bundle, reference, original, second, output_only)]  # fmt: skip
    mine, ref, orig, sec, out_only = (copy.deepcopy(m).to(dev).eval() if m is not None else None
                                      for m in models)  # fmt: skip
    if shadows is not None:
        shadows = tuple([m.to(dev).eval() for m in side] for side in shadows)
    report = gather_evidence(mine, ref, data, classes, reference_kind=kind, original=orig,
                             config=config, second_reference=sec, output_only=out_only,
                             shadows=shadows)  # fmt: skip
    report.reference_source = source
    return report
