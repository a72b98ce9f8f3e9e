"""Codes for models obliviate did not train: :func:`wrap` any classifier module, open a
pretrained torchvision/timm model or a weights file (:func:`source_model`), and
:func:`retrofit` it: fine-tune a few thousand steps with mnemonic codes (the v2 paper's
ImageNet protocol, Table 4; v1 supplement B.2), so that it forgets in one shot afterwards.

A retrofit checks its own goal on held-out data and records it in the model file: the codes
are learned (every code is classified as its class) and the test accuracy lost is at most
``max_accuracy_drop`` points.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.checkpoint import ModelBundle, class_names_problem, weights_sha256
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.data import Dataset, Split
from obliviate.distributed import DistributedContext, check_batch
from obliviate.errors import ObliviateError, warn_goal_missed
from obliviate.models import MODELS, Classifier, create_model
from obliviate.models.external import (
    WrappedClassifier,
    build_architecture,
    find_head,
    head_classes,
    load_module_weights,
    read_weights_file,
    split_name,
)
from obliviate.stats import record_statistics
from obliviate.training import TrainConfig, fit, predict, resolve_device, warn_slow_on_cpu

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def wrap(
    module: nn.Module,
    *,
    num_classes: int,
    input_shape: tuple[int, ...],
    head: str | None = None,
    arch: str | None = None,
    dataset: str = "",
    codes: MnemonicCodes | None = None,
    statistics: Split | None = None,
    class_names: Sequence[str] | None = None,
) -> ModelBundle:
    """Any classifier ``nn.Module`` as a bundle that train, retrofit, forget, evaluate and save
    accept.

    Args:
        module: the classifier; a deep copy is wrapped, ``module`` itself is not changed.
        num_classes: classes it predicts (a head of another size is replaced by a new one).
        input_shape: shape of one input, e.g. ``(3, 224, 224)``.
        head: dotted name of its final ``nn.Linear`` (default: the last one it registers).
        arch: ``torchvision:NAME`` or ``timm:NAME`` when the module is one of theirs, so that
            :func:`obliviate.load` can rebuild it alone; default ``module:CLASSNAME``, which
            ``load`` takes back with ``module=`` (the file is never unpickled).
        dataset: the dataset name to record.
        codes: the mnemonic codes the module was trained with in your own loop
            (:class:`obliviate.CodeCollate`); with them, :func:`obliviate.forget` works on the
            bundle, data-free.
        statistics: the clean training split, to record the training statistics that let the
            default forget bound every training sample (optional; without them the forget
            relies on the codes alone).
        class_names: the name of each class, in index order (recorded in the model file;
            data named otherwise is then refused, and ``forget`` takes the names).

    Example:
        >>> net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        >>> bundle = wrap(net, num_classes=10, input_shape=(1, 8, 8))
        >>> bundle.arch, bundle.arch_kwargs
        ('module:Sequential', {'head': '3'})
    """
    if not isinstance(module, nn.Module):
        raise ObliviateError(f"wrap needs a torch.nn.Module, got {type(module).__name__}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ObliviateError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ObliviateError(f"input_shape must be positive sizes, e.g. (3, 224, 224), got "
                             f"{input_shape!r}")  # fmt: skip
    if arch is not None and not arch.startswith(("torchvision:", "timm:", "module:")):
        raise ObliviateError(f"arch must be torchvision:NAME, timm:NAME or module:NAME, got {arch!r}")
    net = WrappedClassifier(copy.deepcopy(module).cpu().eval(), head=head, input_shape=shape,
                            num_classes=num_classes)  # fmt: skip
    if codes is not None and (codes.num_classes, codes.input_shape) != (num_classes, shape):
        raise ObliviateError(f"the codes are for {codes.num_classes} classes of shape "
                             f"{codes.input_shape}, the module for {num_classes} of {shape}")  # fmt: skip
    if class_names is not None:
        problem = class_names_problem(list(class_names), num_classes)
        if problem is not None:
            raise ObliviateError(f"wrap: {problem}; give one distinct name per class")
    stats = record_statistics(net, statistics) if statistics is not None else None
    return ModelBundle(
        model=net,
        arch=arch or f"module:{type(module).__name__}",
        num_classes=num_classes,
        input_shape=shape,
        dataset=dataset,
        arch_kwargs={"head": net.head},
        codes=codes,
        stats=stats,
        class_names=list(class_names) if class_names is not None else None,
    )


def _is_obliviate_file(path: Path) -> bool:
    """True when ``path`` carries obliviate metadata (read from the header, no tensor)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return "obliviate" in (fh.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError):
        return False


def source_model(
    source: str | Path,
    *,
    num_classes: int,
    input_shape: tuple[int, ...],
    arch: str | None = None,
    pretrained: bool = False,
    weights: str | Path | None = None,
    head: str | None = None,
    seed: int = 0,
) -> tuple[ModelBundle, dict[str, Any]]:
    """The model a retrofit starts from, and a record of where it came from.

    ``source`` is one of:

    * an obliviate model file (trained without codes);
    * a weights file (``.safetensors``, or ``.pt``/``.pth`` read with ``weights_only=True``),
      with ``arch`` naming its architecture (``torchvision:NAME``, ``timm:NAME``, or a
      registered obliviate model);
    * an architecture name (``torchvision:resnet18``, ``timm:resnet18``; a bare name is looked
      up in torchvision, then timm), random, ``pretrained``, or with ``weights`` from a file.

    A head whose size differs from ``num_classes`` (ImageNet's 1000 on a 10-class folder) is
    replaced by a new one, and the record says so. Random weights (a new head included) are
    drawn from ``seed``.
    """
    torch.manual_seed(seed)
    text = str(source)
    path = Path(text).expanduser()
    record: dict[str, Any] = {"source": text}
    if path.is_file():
        if path.suffix == ".safetensors" and _is_obliviate_file(path):
            if arch or weights or pretrained:
                raise ObliviateError(f"{path} is an obliviate model file, which knows its "
                                     "architecture and weights; drop --arch/--weights/--pretrained")  # fmt: skip
            from obliviate.checkpoint import load

            bundle = load(path)
            record.update(kind="model file", sha256=weights_sha256(bundle.model))
            return bundle, record
        if arch is None:
            raise ObliviateError(f"{path} is a weights file; say which architecture it holds "
                                 "with --arch (e.g. --arch torchvision:resnet18)")  # fmt: skip
        weights, name = path, arch
    elif path.suffix in WEIGHT_SUFFIXES or "/" in text:
        raise ObliviateError(f"{path} does not exist; SOURCE is a model file, a weights file, "
                             "or an architecture name (see 'obliviate list architectures')")  # fmt: skip
    else:
        if arch is not None:
            raise ObliviateError("--arch names the architecture of a weights file; SOURCE is "
                                 "already an architecture name")  # fmt: skip
        name = text
    if weights is not None and pretrained:
        raise ObliviateError("give either --pretrained or --weights FILE, not both")
    if name in MODELS.names():
        if pretrained:
            raise ObliviateError(f"{name} is an obliviate architecture without pretrained "
                                 "weights; train it with 'obliviate train'")  # fmt: skip
        if weights is None:
            raise ObliviateError(f"{name} is an obliviate architecture: train it with "
                                 "'obliviate train', or give its weights file as SOURCE "
                                 "with --arch")  # fmt: skip
        model = create_model(name, input_shape=input_shape, num_classes=num_classes)
        state = read_weights_file(weights)
        load_module_weights(model, state, str(weights))
        record.update(kind="weights file", arch=name, weights=str(weights),
                      sha256=weights_sha256(model))  # fmt: skip
        bundle = ModelBundle(model=model.eval(), arch=name, num_classes=num_classes,
                             input_shape=tuple(input_shape), dataset="")  # fmt: skip
        return bundle, record
    lib, arch_name = split_name(name)
    canonical = f"{lib}:{arch_name}"
    if weights is not None:
        state = read_weights_file(weights)
        with torch.device("meta"):
            probe = build_architecture(canonical, num_classes=num_classes)
        head_name = head or find_head(probe)
        classes = head_classes(state, head_name) or num_classes
        module = build_architecture(canonical, num_classes=classes)
        load_module_weights(module, state, str(weights))
        record.update(kind="weights file", weights=str(weights))
    else:
        module = build_architecture(canonical, num_classes=num_classes, pretrained=pretrained)
        record.update(kind="pretrained" if pretrained else "random init")
    bundle = wrap(module, num_classes=num_classes, input_shape=input_shape, head=head,
                  arch=canonical)  # fmt: skip
    record.update(arch=canonical, head=bundle.arch_kwargs["head"],
                  head_replaced=bool(bundle.model.head_replaced),
                  sha256=weights_sha256(bundle.model))  # fmt: skip
    return bundle, record


def _accuracy(model: nn.Module, x, y: torch.Tensor, batch_size: int) -> float:
    return 100.0 * float((predict(model, x, batch_size=batch_size) == y).float().mean())


def retrofit(
    bundle: ModelBundle,
    dataset: str | Dataset,
    *,
    steps: int = 1000,
    codes: CodeConfig = CodeConfig(),
    config: TrainConfig | None = None,
    max_accuracy_drop: float = 1.0,
    check_samples: int = 10_000,
    eval_batch_size: int = 256,
    source: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    distributed: DistributedContext | None = None,
) -> ModelBundle:
    """Fine-tune ``bundle``'s model with mnemonic codes for ``steps`` steps; return a new bundle
    with the codes, fresh training statistics, the data's class names and the audit record
    (``bundle.retrofit``).

    Args:
        bundle: a model without codes (:func:`obliviate.load`, :func:`wrap`, :func:`source_model`).
        dataset: its training data, a :class:`Dataset` or a name (``folder:PATH`` included);
            the train split is fine-tuned on, the test split checks.
        steps: optimiser steps (the v1 supplement used 5000 on ImageNet).
        codes: how codes are drawn and mixed in (default ``replace``, ``t_mix`` 0.1).
        config: optimiser settings (default SGD lr 0.01, momentum 0.9, weight decay 5e-4,
            batch 128); its ``steps`` is set to ``steps``.
        max_accuracy_drop: test-accuracy points the retrofit may cost before it warns.
        check_samples: test samples (balanced per class) on which accuracy is measured before
            and after.
        source: where the model came from, for the record (from :func:`source_model`).
        distributed: fine-tune as one rank of a ``torchrun`` job (:mod:`obliviate.distributed`);
            ``config.batch_size`` is the global batch, and the record notes the world size.

    The record's ``goal_met`` says whether every code is classified as its class and at most
    ``max_accuracy_drop`` points were lost; a retrofit that misses it is still returned (each
    later forget verifies itself: the calibrated forget does not need the codes to be learned,
    see docs/results/retrofit.md) with a :class:`~obliviate.errors.GoalMissedWarning`.

    Raises:
        ObliviateError: the model already has codes, has forgotten classes (fine-tuning on every
            class would bring them back), or does not fit the data (its inputs, class count
            or class names).
    """
    from obliviate.api import (
        bundle_dataset,
        check_dataset_fits,
        dataset_class_names,
        non_finite_tensors,
    )

    dataset = bundle_dataset(bundle, dataset)
    if bundle.codes is not None:
        raise ObliviateError("this model already has mnemonic codes; forget with it directly "
                             "('obliviate forget')")  # fmt: skip
    if bundle.forgotten_classes:
        raise ObliviateError(
            f"this model has forgotten classes {bundle.forgotten_classes}; a retrofit trains on "
            "every class of the data and would bring them back. Retrofit the original model"
        )
    if steps < 1:
        raise ObliviateError(f"steps must be >= 1, got {steps}")
    check_dataset_fits(bundle, dataset)
    dataset_class_names(dataset)  # refused here, before the work, when they do not fit
    config = dataclasses.replace(config or TrainConfig(), steps=steps)
    check_batch(config.batch_size, distributed)
    device = distributed.device() if distributed is not None else resolve_device(device)
    net: Classifier = copy.deepcopy(bundle.model).to(device).eval()
    warn_slow_on_cpu(f"retrofitting {bundle.arch}", net, dataset.input_shape, device,
                     enabled=progress and (distributed is None or distributed.is_main))  # fmt: skip
    per_class = max(1, math.ceil(check_samples / dataset.num_classes))
    check = dataset.test.per_class_subset(per_class, seed=0)
    try:
        before = _accuracy(net, check.x, check.y, eval_batch_size)
    except RuntimeError as exc:
        raise ObliviateError(f"the model cannot take this dataset's inputs "
                             f"{tuple(dataset.input_shape)}: {str(exc).splitlines()[0]}") from None  # fmt: skip
    mnemonic = MnemonicCodes.generate(dataset.num_classes, dataset.input_shape, codes)
    augment = dataset.train_augment

    def batch_transform(x, y, generator):
        if augment is not None:
            x = augment(x, generator)
        return mnemonic.augment(x, y, generator)

    torch.manual_seed(config.seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fit(net, dataset.train.x.to(device), dataset.train.y.to(device), config,
        batch_transform=batch_transform, description=f"retrofitting codes ({steps} steps)",
        progress=progress, distributed=distributed)  # fmt: skip
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    broken = non_finite_tensors(net)
    if broken:
        what = (f"the retrofit diverged: non-finite weights in {', '.join(broken[:3])}; "
                "nothing was written. Lower the learning rate")  # fmt: skip
        raise ObliviateError(f"{what} (config=TrainConfig(lr=...))", cli=f"{what} (--lr)")
    after = _accuracy(net, check.x, check.y, eval_batch_size)
    code_preds = predict(net, mnemonic.tensor, batch_size=eval_batch_size)
    missed = [int(c) for c in torch.nonzero(code_preds != mnemonic.labels()).flatten()]
    stats = record_statistics(net, dataset.train, batch_size=eval_batch_size)
    negative = int((stats.feature_min < 0).any(dim=1).sum())
    goal = {"codes_learned": "every code is classified as its own class",
            "max_accuracy_drop": max_accuracy_drop}
    drop = before - after
    record = {
        "source": source or {"kind": "bundle", "arch": bundle.arch,
                             "sha256": weights_sha256(bundle.model)},
        "dataset": dataset.name,
        "steps": steps,
        # the steps decide the length; the config's default epochs would mean nothing here
        "train_config": {k: v for k, v in dataclasses.asdict(config).items() if k != "epochs"},
        "world_size": distributed.world_size if distributed else 1,
        "codes": dataclasses.asdict(codes),
        "seconds": seconds,
        "check_samples": len(check),
        "accuracy_before": before,
        "accuracy_after": after,
        "accuracy_drop": drop,
        "code_accuracy": 100.0 * (1 - len(missed) / dataset.num_classes),
        "codes_missed": missed[:20],
        "classes_with_negative_features": negative,
        "goal": goal,
        "codes_learned": not missed,
        "accuracy_kept": drop <= max_accuracy_drop,
        "goal_met": not missed and drop <= max_accuracy_drop,
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "output_sha256": weights_sha256(net),
    }
    if not record["goal_met"]:
        warn_goal_missed(_retrofit_shortfall(record))
    return dataclasses.replace(
        bundle,
        model=net.cpu().eval(),
        dataset=dataset.name,
        codes=mnemonic,
        arch_kwargs=copy.deepcopy(bundle.arch_kwargs),
        train_config=copy.deepcopy(bundle.train_config),
        history=copy.deepcopy(bundle.history),
        stats=stats.without(bundle.forgotten_classes) if bundle.forgotten_classes else stats,
        dataset_options=dict(dataset.options),
        retrofit=record,
        class_names=dataset_class_names(dataset) or bundle.class_names,
    )


def _retrofit_shortfall(record: dict[str, Any]) -> str:
    """What a retrofit that missed its goal missed, and what to try."""
    missed = []
    if not record["codes_learned"]:
        missed.append(f"the codes of classes {record['codes_missed']} are not classified as "
                      "their class (more steps or a larger t_mix learn them)")  # fmt: skip
    if not record["accuracy_kept"]:
        missed.append(f"it cost {record['accuracy_drop']:.2f} points of test accuracy, more than "
                      f"max_accuracy_drop={record['goal']['max_accuracy_drop']:g} (a lower lr or "
                      "more steps may keep more)")  # fmt: skip
    return "the retrofit missed its goal: " + "; ".join(missed)
