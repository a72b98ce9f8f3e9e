"""The front door: ``train``, ``forget``, ``evaluate`` (plus ``load``/``save`` from checkpoint)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from obliviate.checkpoint import ModelBundle
from obliviate.classes import check_class_names, dataset_class_names, resolve_classes
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.data import FOLDER_PREFIX, Dataset, Split, load_dataset
from obliviate.digest import check_weights, checked_weights_sha256, finite
from obliviate.distributed import DistributedContext, check_batch
from obliviate.errors import NotVerifiedError, ObliviateError, warn_goal_missed
from obliviate.methods import METHODS, ForgetRequest, UnlearnContext, UnlearningMethod
from obliviate.methods.base import hyperparameter_defaults
from obliviate.metrics import EvalReport, RelearnConfig, evaluate_model
from obliviate.modelcopy import copy_model
from obliviate.models import MODELS, create_model, trainable_models
from obliviate.stats import record_statistics as summarise_training, stale_reason
from obliviate.training import (
    TrainConfig,
    dataset_train_config,
    fit,
    resolve_device,
    warn_slow_on_cpu,
)

log = logging.getLogger(__name__)


def non_finite_tensors(model: torch.nn.Module) -> list[str]:
    """Names of the floating-point weights and buffers of ``model`` that hold NaN or inf."""
    return [name for name, t in model.state_dict().items() if not finite(t)]


def resolve_dataset(
    dataset: str | Dataset,
    data_dir: str | Path | None = None,
    download: bool = False,
    *,
    options: dict | None = None,
) -> Dataset:
    """A :class:`Dataset` given either itself, its registered name or ``folder:PATH`` (read
    with the image-folder ``options``)."""
    if isinstance(dataset, Dataset):
        return dataset
    return load_dataset(dataset, data_dir=data_dir, download=download, options=options)


def bundle_dataset(bundle: ModelBundle, dataset: str | Dataset | None,
                   data_dir: str | Path | None = None, download: bool = False, *,
                   options: dict | None = None) -> Dataset:  # fmt: skip
    """``dataset``, default the model's own, read the way the model file says: an image
    folder's resize, crop and normalisation as recorded (for the model's own folder), its crop
    the model's input size, then ``options`` over both."""
    name = dataset if dataset is not None else bundle.dataset
    if not name:
        what = "this model names no dataset (a module made with obliviate.wrap?); give it"
        raise ObliviateError(
            f"{what} as the dataset argument, e.g. obliviate.evaluate(bundle, \"digits\")",
            cli=f"{what} with --dataset (e.g. --dataset digits)",
        )
    if isinstance(name, str) and name.startswith(FOLDER_PREFIX):
        merged = dict(bundle.dataset_options) if name == bundle.dataset else {}
        if "image_size" not in merged and len(bundle.input_shape) == 3:
            merged["image_size"] = bundle.input_shape[-1]
        options = {**merged, **(options or {})}
    return resolve_dataset(name, data_dir, download, options=options)


def check_dataset_fits(bundle: ModelBundle, data: Dataset) -> None:
    """Raise if ``data``'s input shape, class count or class names (:func:`check_class_names`)
    differ from the model's (in that order: another dataset altogether is named as such)."""
    if tuple(data.input_shape) != tuple(bundle.input_shape) or data.num_classes != bundle.num_classes:
        raise ObliviateError(
            f"model expects inputs {tuple(bundle.input_shape)} and {bundle.num_classes} classes, "
            f"but {data.name} has {tuple(data.input_shape)} and {data.num_classes}; "
            "use the dataset the model was trained on"
        )
    check_class_names(bundle, data)


def train(
    dataset: str | Dataset = "digits",
    model: str | ModelBundle = "fc",
    *,
    config: TrainConfig | None = None,
    codes: CodeConfig | None = CodeConfig(),
    model_kwargs: dict[str, Any] | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    distributed: DistributedContext | None = None,
) -> ModelBundle:
    """Train a registered model on a dataset, with mnemonic codes unless ``codes=None``.

    Args:
        dataset: a registered dataset name or a :class:`~obliviate.data.Dataset`.
        model: a registered model name (``fc``, ``cnn``, ``resnet18``), a
            ``torchvision:NAME``/``timm:NAME`` architecture (random weights), or a bundle from
            :func:`obliviate.wrap` (trained from the module's current weights).
        config: optimiser settings; default: the dataset's
            (:data:`~obliviate.training.DATASET_TRAIN_DEFAULTS`), else the paper's FC protocol
            (SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128, 10 epochs, seed 0).
        codes: how codes are made and mixed in (default ``replace`` with ``t_mix`` 0.1);
            ``None`` trains a plain model without codes.
        model_kwargs: extra constructor arguments of the model.
        data_dir, download: where the dataset lives, and whether it may be downloaded.
        device: ``"cpu"``, ``"cuda"``; default CUDA when available.
        progress: show a progress bar.
        distributed: train as one rank of a ``torchrun`` job (see :mod:`obliviate.distributed`;
            every rank calls ``train`` alike and gets the same bundle; ``device`` is then the
            rank's own). ``config.batch_size`` is the global batch.

    Returns:
        A :class:`ModelBundle` ready to be saved, forgotten and evaluated. Its ``train_config``
        also records ``world_size``.

    Example:
        >>> bundle = train("digits", "fc", config=TrainConfig(epochs=1), progress=False)
        >>> bundle.codes.tensor.shape
        torch.Size([10, 1, 8, 8])
    """
    data = resolve_dataset(dataset, data_dir, download)
    class_names = dataset_class_names(data)
    config = config or dataset_train_config(data.name)
    given = model if isinstance(model, ModelBundle) else None
    if given is None and model in MODELS and not getattr(MODELS.get(model), "trainable", True):
        raise ObliviateError(f"model {model!r} is assembled by a command, not trained; "
                             f"trainable: {', '.join(trainable_models())}")  # fmt: skip
    check_batch(config.batch_size, distributed)
    device = distributed.device() if distributed is not None else resolve_device(device)
    torch.manual_seed(config.seed)
    if given is not None:  # a wrapped module (obliviate.wrap): trained from its own weights
        check_dataset_fits(given, data)
        if model_kwargs:
            raise ObliviateError("model_kwargs are for registered models; a wrapped module "
                                 "is built already")  # fmt: skip
        net = copy.deepcopy(given.model).to(device)
        model, model_kwargs = given.arch, given.arch_kwargs
    else:
        try:
            net = create_model(model, input_shape=data.input_shape, num_classes=data.num_classes,
                               **(model_kwargs or {})).to(device)  # fmt: skip
        except (TypeError, ValueError) as exc:  # model_kwargs the architecture cannot take
            raise ObliviateError(f"cannot build {model}: {exc}") from None
    warn_slow_on_cpu(f"training {model}", net, data.input_shape, device,
                     enabled=progress and (distributed is None or distributed.is_main))  # fmt: skip
    mnemonic = (
        MnemonicCodes.generate(data.num_classes, data.input_shape, codes) if codes else None
    )
    augment = data.train_augment

    def batch_transform(x, y, generator):
        if augment is not None:
            x = augment(x.cpu(), generator).to(x.device)
        if mnemonic is not None:
            x, y = mnemonic.augment(x, y, generator)
        return x, y

    fit(
        net,
        data.train.x.to(device),
        data.train.y.to(device),
        config,
        batch_transform=batch_transform,
        description=f"training {model} on {data.name}",
        progress=progress,
        distributed=distributed,
    )
    broken = non_finite_tensors(net)
    if broken:
        what = (f"training diverged: non-finite weights in {', '.join(broken[:3])}; nothing "
                "was written. Lower the learning rate")  # fmt: skip
        raise ObliviateError(f"{what} (config=TrainConfig(lr=...)) and try again",
                             cli=f"{what} (--lr) and try again")  # fmt: skip
    stats = summarise_training(net, data.train)
    return ModelBundle(
        model=net.cpu().eval(),
        arch=model,
        num_classes=data.num_classes,
        input_shape=data.input_shape,
        dataset=data.name,
        codes=mnemonic,
        arch_kwargs=dict(model_kwargs or {}),
        train_config={**dataclasses.asdict(config),
                      "world_size": distributed.world_size if distributed else 1},
        stats=stats,
        dataset_options=dict(data.options),
        class_names=class_names,
    )


def record_statistics(
    bundle: ModelBundle,
    data: str | Dataset | None = None,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
) -> ModelBundle:
    """A copy of ``bundle`` with its training statistics recorded afresh from ``data``'s
    training split, bound to its current weights (:mod:`obliviate.stats`).

    Run it once after changing the weights outside obliviate (fine-tuning in your own loop,
    loading other weights): the data-free forget trusts only statistics recorded on the
    weights it is given. The entries of classes the model has forgotten are cleared, as a
    forget clears them.

    Args:
        bundle: the model.
        data: the data it was trained on (default: the dataset the model names).
        data_dir, download: where the dataset lives, and whether it may be downloaded.
        device: where to run the pass; default CUDA when available.

    Example:
        >>> tuned = obliviate.record_statistics(bundle, "digits")        # doctest: +SKIP
        >>> forgotten = obliviate.forget(tuned, [3])                       # doctest: +SKIP
    """
    dataset = bundle_dataset(bundle, data, data_dir, download)
    check_dataset_fits(bundle, dataset)
    model = copy.deepcopy(bundle.model).to(resolve_device(device)).eval()
    stats = summarise_training(model, dataset.train)
    result = bundle.clone()
    result.stats = stats.without(bundle.forgotten_classes) if bundle.forgotten_classes else stats
    return result


def _check_forget_classes(bundle: ModelBundle, classes: Sequence[int | str]) -> tuple[int, ...]:
    if isinstance(classes, str):
        raise ObliviateError(f"give the classes to forget as a list, e.g. [{classes!r}]")
    if len(classes) == 0:
        raise ObliviateError("give at least one class to forget")
    out = resolve_classes(bundle, classes)
    again = sorted(set(out) & set(bundle.forgotten_classes))
    if again:
        raise ObliviateError(
            f"class(es) {again} were already forgotten ({_forgetting_record(bundle, again[0])}); "
            "forget only classes the model still knows"
        )
    gone = set(out) | set(bundle.forgotten_classes)
    if len(gone) >= bundle.num_classes:
        raise ObliviateError(
            "cannot forget every class: at least one class must be retained "
            f"(requested {sorted(set(out))}, already forgotten {sorted(bundle.forgotten_classes)})"
        )
    return tuple(sorted(set(out)))


def _forgetting_record(bundle: ModelBundle, c: int) -> str:
    """Which record of ``bundle.history`` forgot class ``c``, in words."""
    for number, record in enumerate(bundle.history, start=1):
        classes = record.get("classes") or []
        flat = [x for item in classes for x in (item if isinstance(item, list) else [item])]
        if c in flat:
            return (f"record {number} of {len(bundle.history)} of the model's history: "
                    f"{record.get('method')} at {record.get('utc')}")  # fmt: skip
    return "the model file lists it as forgotten"


def _describe_needs(needs: frozenset[str]) -> str:
    sets = [f"the {n} set" for n in ("forget", "retain") if n in needs]
    return " and ".join(sets)


def _split_that_fits(bundle: ModelBundle, data: Split | Dataset, split: str, what: str) -> Split:
    """``data``'s ``split`` (a :class:`Dataset`'s, checked by :func:`check_dataset_fits`) or
    the :class:`Split` given, refused when its input shape or labels do not fit the model."""
    if isinstance(data, Dataset):
        check_dataset_fits(bundle, data)
        return getattr(data, split)
    if tuple(data.x.shape[1:]) != tuple(bundle.input_shape):
        raise ObliviateError(
            f"the {what}'s inputs have shape {tuple(data.x.shape[1:])} but the model expects "
            f"{tuple(bundle.input_shape)}; use the dataset the model was trained on"
        )
    if len(data) and not 0 <= int(data.y.min()) <= int(data.y.max()) < bundle.num_classes:
        raise ObliviateError(
            f"the {what}'s labels span {int(data.y.min())}..{int(data.y.max())} but the model has "
            f"classes 0..{bundle.num_classes - 1}; use the dataset the model was trained on"
        )
    return data


def _check_data(
    method: type[UnlearningMethod],
    bundle: ModelBundle,
    request: ForgetRequest,
    check_data: str | Split | Dataset | None,
) -> Split | None:
    """The held-out samples of the kept classes a method may verify with (``check_data``):
    a dataset's test split, refused when the method reads none or the data does not fit."""
    if check_data is None:
        return None
    if "check" not in method.needs | method.uses:
        readers = [m for m in METHODS.names() if "check" in METHODS.get(m).uses]
        what = (f"method {method.name!r} does not verify on a check set; drop the check data or "
                f"use {', '.join(readers)}")  # fmt: skip
        raise ObliviateError(what, cli=what.replace("the check data", "--check-data"))
    if isinstance(check_data, str):
        check_data = bundle_dataset(bundle, check_data)
    check_data = _split_that_fits(bundle, check_data, "test", "check data")
    kept = check_data.without_classes(list(request.classes) + list(bundle.forgotten_classes))
    if len(kept) == 0:
        raise ObliviateError("the check data has no samples of the classes to keep")
    return kept


def _method_data(
    method: type[UnlearningMethod],
    bundle: ModelBundle,
    request: ForgetRequest,
    data: Split | Dataset | None,
) -> tuple[Split | None, Split | None]:
    """The forget and retain sets the method is allowed to see, checked against its needs."""
    name = method.name
    if "codes" in method.needs and bundle.codes is None:
        free = [m for m in METHODS.names() if "codes" not in METHODS.get(m).needs]
        raise ObliviateError(
            f"this model file has no mnemonic codes (it was trained without them), so method "
            f"{name!r} cannot run; add codes to it by fine-tuning (obliviate retrofit MODEL "
            f"--out CODED.safetensors; in Python obliviate.retrofit), or use a method that needs "
            f"no codes ({', '.join(free)}), e.g. --method mnemonic-data --data DATASET"
        )
    wanted = (method.needs | method.uses) & {"forget", "retain"}
    data_needs = method.needs & {"forget", "retain"}
    if data is None:
        if data_needs:
            what = f"method {name!r} needs {_describe_needs(data_needs)} (training samples); pass"
            raise ObliviateError(f"{what} data=DATASET", cli=f"{what} --data DATASET")
        return None, None
    split = _split_that_fits(bundle, data, "train", "data")
    if not wanted:
        log.warning("method %r uses no training data; the data given is ignored", name)
        return None, None
    forget_set = split.of_classes(request.classes)
    retain_set = split.without_classes([*request.classes, *bundle.forgotten_classes])
    if "forget" in data_needs:
        present = set(torch.unique(forget_set.y).tolist())
        missing = [c for c in request.classes if c not in present]
        if missing:
            raise ObliviateError(
                f"forget class(es) {missing} have no samples in the data given, and method "
                f"{name!r} needs the forget set; pass the training data that contains them"
            )
    if "retain" in data_needs and len(retain_set) == 0:
        raise ObliviateError(
            f"the data given has no samples of the classes to keep, and method {name!r} needs "
            "the retain set; pass the training data"
        )
    return (
        forget_set if "forget" in wanted else None,
        retain_set if "retain" in wanted else None,
    )


def _train_config(bundle: ModelBundle) -> TrainConfig | None:
    try:
        if not bundle.train_config:
            return None
        names = {f.name for f in dataclasses.fields(TrainConfig)}  # world_size is a record only
        return TrainConfig(**{k: v for k, v in bundle.train_config.items() if k in names})
    except (TypeError, ObliviateError):
        return None


def forget(
    bundle: ModelBundle,
    classes: Sequence[int | str],
    *,
    method: str = "mnemonic",
    data: str | Split | Dataset | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    force: bool = False,
    check_data: str | Split | Dataset | None = None,
    **hyperparameters: Any,
) -> ModelBundle:
    """Make ``bundle``'s model forget ``classes``; return a new bundle (the input is untouched).

    Every registered method is called the same way. The method sees only the data it declared
    (``METHODS.get(name).needs``/``uses``): the training samples of the forget classes, of the
    classes to keep, or neither. Only the method's own work is timed.

    The returned bundle's ``history[-1]`` is the audit record of this request: classes,
    method, hyperparameters, what data the method saw (sample counts), UTC time, seconds of
    the method's own work, and the SHA-256 of the input and output weights.

    Args:
        bundle: the trained model (see :func:`train`, :func:`obliviate.load`).
        classes: class indices to forget, or class names of a model file that records them
            (``["Trouser"]``; :func:`resolve_classes`). Sequential requests on a forgotten
            model work.
        method: a registered unlearning method (default ``mnemonic``: data-free); see
            ``obliviate list`` or ``docs/methods.md``.
        data: the training data (a :class:`Dataset` or its ``train`` :class:`Split`), for methods
            that need it; it is split into forget and retain sets here. A dataset whose class
            names differ from the model's is refused (:func:`check_class_names`). ``mnemonic``
            uses it, when given, to pick the +/- candidate.
        seed: seed for any randomness of the method.
        device: where to run; default CUDA when available.
        progress: let methods that train show a progress bar.
        force: return the result even when the method could not verify it (the record then
            says ``verified: false``). Without it such a request raises
            :class:`~obliviate.errors.NotVerifiedError`.
        check_data: held-out samples to verify the kept classes with, without the training
            data (a :class:`Dataset`: its test split; a dataset name; or a :class:`Split`):
            ``mnemonic`` verifies the deep forget (``depth`` features or ``auto``) on it by a
            one-sided 95 % bound on the kept classes' accuracy drop
            (:func:`obliviate.calibration.drop_upper_bound`): about 300 samples in all, when
            the forget harms none of them. Never trained or calibrated on; the forget side
            stays verified by the codes. Class names are bound as for ``data``. Only methods that declare ``"check"`` read it; others refuse it.
        **hyperparameters: the method's keyword-only hyperparameters (e.g. ``lambda1``).

    Raises:
        ObliviateError: unknown method or hyperparameter, data the method needs was not given,
            forget classes absent from the data, or a model without the codes a method needs.
        NotVerifiedError: the method checked its result and it failed its goal (the classes
            are not provably forgotten, or kept classes were harmed), unless ``force``.

    Example:
        >>> forgotten = forget(bundle, [0])                                # doctest: +SKIP
        >>> forgotten = forget(bundle, [0], method="ssd", data="digits")   # doctest: +SKIP
    """
    request = ForgetRequest(_check_forget_classes(bundle, classes))
    method_cls = METHODS.get(method)
    try:
        unlearner = method_cls(**hyperparameters)
    except TypeError as exc:
        known = ", ".join(hyperparameter_defaults(method_cls)) or "(none)"
        raise ObliviateError(
            f"bad hyperparameters for {method!r}: {exc}; known: {known}"
        ) from None
    if isinstance(data, str):
        data = bundle_dataset(bundle, data)
    forget_set, retain_set = _method_data(method_cls, bundle, request, data)
    check_set = _check_data(method_cls, bundle, request, check_data)
    device = resolve_device(device)
    # Methods never modify the model they are given (the contract tests check it), so the
    # caller's model is lent as it is when it already sits on ``device`` in eval mode.
    lent = bundle.model
    if lent.training or any(p.device != device for p in lent.parameters()):
        lent = copy_model(lent).to(device).eval()
    # hashed afresh: the statistics vouch only for the weights they were recorded on, and a
    # caller's own training loop may have changed them since (even through ``.data``); a
    # model forgotten from before is checked byte for byte against the copy it was hashed from
    input_sha = checked_weights_sha256(bundle.model)
    stale = stale_reason(bundle.stats, input_sha)
    context = UnlearnContext(
        num_classes=bundle.num_classes,
        previously_forgotten=tuple(bundle.forgotten_classes),
        codes=bundle.codes if "codes" in method_cls.needs | method_cls.uses else None,
        forget_data=forget_set,
        retain_data=retain_set,
        check_data=check_set,
        train_config=_train_config(bundle),
        fresh_model=lambda: create_model(
            bundle.arch, input_shape=bundle.input_shape, num_classes=bundle.num_classes,
            **bundle.arch_kwargs,
        ).to(device),
        augment=data.train_augment if isinstance(data, Dataset) else None,
        seed=seed,
        progress=progress,
        stats=bundle.stats if stale is None else None,
        stats_problem=stale,
    )
    unlearner.prepare()
    if device.type == "cpu":  # the CPU generator alone: seeding every backend costs milliseconds
        torch.random.default_generator.manual_seed(seed)
    else:
        torch.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    output = unlearner.unlearn(lent, request, context)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    model = output.model if output.model is not bundle.model else copy_model(output.model)
    if any(t.device.type != "cpu" for t in (*model.parameters(), *model.buffers())):
        model = model.cpu()  # Module.cpu() visits every tensor even when all are there
    model.eval()
    # the output's tensors that equal the input's (byte for byte) keep their digests and their
    # finiteness: a forget that changed the head hashes and tests the head alone
    checked = check_weights(model, like=bundle.model)
    if checked.non_finite:
        what = (f"{method} produced non-finite weights ({', '.join(checked.non_finite[:3])}); "
                "nothing was written. Lower the method's step sizes")  # fmt: skip
        raise ObliviateError(f"{what} (its keyword arguments) and try again",
                             cli=f"{what} (--hp KEY=VALUE) and try again")  # fmt: skip
    verified = output.details.get("verified")
    if verified is False and not force:
        reason = output.details.get("verification", {}).get("reason") or "its checks failed"
        what = f"did not forget classes {list(request.classes)} with {method}: {reason}; nothing"
        raise NotVerifiedError(
            f"{what} was written (force=True keeps the unverified result)",
            record=output.details,
            cli=f"{what} was written (--force writes it anyway, recorded as verified: false)",
        )
    if verified is False:  # force=True: returned, but the caller hears it
        reason = output.details.get("verification", {}).get("reason") or "its checks failed"
        warn_goal_missed(f"classes {list(request.classes)} are not verified as forgotten with "
                         f"{method}: {reason}; returned because force=True (recorded as "
                         "verified: false)")  # fmt: skip
    result = dataclasses.replace(  # shares no tensor with the input (like ModelBundle.clone)
        bundle,
        model=model,
        codes=copy.deepcopy(bundle.codes),
        arch_kwargs=copy.deepcopy(bundle.arch_kwargs),
        train_config=copy.deepcopy(bundle.train_config),
        stats=None,
    )
    output_sha = checked.sha256
    if output.statistics is not None:  # they hold for the output: bound to its weights
        result.stats = output.statistics.without(request.classes).bound_to(result.model)
    record = {
        "classes": list(request.classes),
        **({"class_names": [bundle.class_names[c] for c in request.classes]}
           if bundle.class_names else {}),
        "method": method,
        "verified": verified,
        "hyperparameters": unlearner.hyperparameters(),
        **output.details,
        "data": {
            "codes": context.codes is not None,
            "forget_samples": len(forget_set) if forget_set is not None else 0,
            "retain_samples": len(retain_set) if retain_set is not None else 0,
            **({"check_samples": len(check_set)} if check_set is not None else {}),
        },
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": seconds,
        "input_sha256": input_sha,
        "statistics": "withheld: " + stale if stale else (
            "bound to the input weights" if bundle.stats is not None else "none"),
        "output_sha256": output_sha,
    }
    result.forgotten_classes = sorted(set(bundle.forgotten_classes) | set(request.classes))
    result.history = [*bundle.history, record]
    return result


def evaluate(
    bundle: ModelBundle,
    dataset: str | Dataset | None = None,
    forget_classes: Sequence[int | str] | None = None,
    *,
    relearn_steps: int = 1000,
    relearn_lr: float = 0.01,
    relearn_batch_size: int = 128,
    seed: int = 0,
    data_dir: str | Path | None = None,
    download: bool = False,
    device: str | torch.device | None = None,
) -> EvalReport:
    """The paper's evaluation of ``bundle`` on a dataset's test split.

    Args:
        bundle: the model to evaluate.
        dataset: dataset name or object; default: the dataset the model was trained on.
        forget_classes: default: the classes the model has forgotten; with none, the report
            is the test accuracy over every class (FE, RE and S are ``None``). Indices or the
            model's class names.

    Raises:
        ObliviateError: the data does not fit the model: other inputs, another number of
            classes, or other class names (:func:`check_class_names`).
        relearn_steps: steps of the relearn probe (0 skips RE and S).
        relearn_lr, relearn_batch_size: the probe's SGD settings.
        seed: seed of the probe's shuffling.

    Returns:
        :class:`EvalReport` with ``retain_acc``, ``forget_err``, ``relearn_err``, ``score``,
        ``forget_seconds`` (of the last forget request, if any) and ``per_class_acc``.
    """
    data = bundle_dataset(bundle, dataset, data_dir, download)
    check_dataset_fits(bundle, data)
    classes = (resolve_classes(bundle, forget_classes) if forget_classes is not None
               else bundle.forgotten_classes)  # fmt: skip
    device = resolve_device(device)
    model = bundle.clone().model.to(device)
    relearn = RelearnConfig(
        steps=relearn_steps, lr=relearn_lr, batch_size=relearn_batch_size, seed=seed
    )
    if relearn_steps < 0:
        raise ObliviateError("relearn steps must be >= 0")
    seconds = bundle.history[-1]["seconds"] if bundle.history else None
    return evaluate_model(model, data, classes, relearn=relearn, forget_seconds=seconds)
