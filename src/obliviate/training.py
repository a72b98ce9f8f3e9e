"""The one training loop. Methods express their objective; ``fit`` runs it."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from obliviate.distributed import DistributedContext, check_batch
from obliviate.errors import ObliviateError
from obliviate.progress import duration, in_words, progress_bar, progress_note

log = logging.getLogger(__name__)

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
BatchTransform = Callable[
    [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]
]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings. Defaults are the paper's FC protocol (official MNIST config).

    Attributes:
        epochs: passes over the data (ignored when ``steps`` is set).
        steps: stop after this many optimiser steps instead (cycling over the data).
        batch_size: samples per step.
        optimizer: ``"sgd"`` (momentum) or ``"adam"``.
        lr, momentum, weight_decay: optimiser settings.
        schedule: ``"none"`` or ``"cosine"`` (annealed per epoch, or per step with ``steps``).
        seed: seeds the shuffling and the augmentation draws.
    """

    epochs: int = 10
    steps: int | None = None
    batch_size: int = 128
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["none", "cosine"] = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.optimizer not in ("sgd", "adam"):
            raise ObliviateError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        if self.schedule not in ("none", "cosine"):
            raise ObliviateError(f"schedule must be 'none' or 'cosine', got {self.schedule!r}")
        if self.steps is None and self.epochs < 1:
            raise ObliviateError(f"epochs must be >= 1, got {self.epochs}")
        if self.steps is not None and self.steps < 1:
            raise ObliviateError(f"steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ObliviateError(f"batch_size must be >= 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ObliviateError(f"the learning rate must be a positive number, got {self.lr}")


def cross_entropy_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Plain cross-entropy of ``model(x)`` against ``y``."""
    return nn.functional.cross_entropy(model(x), y)


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config``."""
    params = list(params)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


#: Training settings per dataset where the generic :class:`TrainConfig` defaults (the paper's FC
#: protocol: 10 epochs, lr 0.01) do not fit. Digits' 1,257 small images need 40 epochs at lr 0.1
#: (the demo's recipe; 10 epochs at 0.01 leave classes at 0-2 %); CIFAR-10 takes the ResNet-18
#: recipe of ``configs/cifar10-resnet18.toml``.
DATASET_TRAIN_DEFAULTS: dict[str, dict[str, object]] = {
    "digits": {"epochs": 40, "lr": 0.1},
    "cifar10": {"epochs": 200, "lr": 0.1, "schedule": "cosine"},
}


def dataset_train_config(dataset: str, **given: object) -> TrainConfig:
    """A :class:`TrainConfig` for ``dataset``: its defaults, overridden by the non-None ``given``."""
    settings = {**DATASET_TRAIN_DEFAULTS.get(dataset, {}),
                **{k: v for k, v in given.items() if v is not None}}  # fmt: skip
    return TrainConfig(**settings)


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a :class:`torch.device` (``None``: :func:`default_device`).

    Raises:
        ObliviateError: a name torch does not know, or CUDA asked for where there is none.
    """
    if device is None:
        return default_device()
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ObliviateError(
            f"unknown device {device!r}; use cpu or cuda (cuda:N for one GPU)"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ObliviateError(f"device {device!r} asked for, but CUDA is not available here; "
                             "use --device cpu")  # fmt: skip
    if resolved.type not in ("cpu", "cuda"):
        raise ObliviateError(f"device {device!r} is not supported; use cpu or cuda")
    return resolved


#: Training on the CPU is warned about before the work when the inputs have at least this
#: many pixels (height x width) or the model at least :data:`SLOW_CPU_PARAMETERS` parameters.
SLOW_CPU_PIXELS = 128 * 128
SLOW_CPU_PARAMETERS = 5_000_000
#: After the first step on the CPU, :func:`fit` estimates the whole run and says so when it
#: exceeds this many seconds, or :data:`SLOW_CPU_NOTED_SECONDS` after that warning.
SLOW_CPU_SECONDS = 600.0
SLOW_CPU_NOTED_SECONDS = 60.0


def slow_on_cpu(model: nn.Module, input_shape: tuple[int, ...],
                device: torch.device | str | None) -> str | None:  # fmt: skip
    """What makes training ``model`` on ``device`` slow, in words (``3x224x224 inputs and 11.7
    M parameters``), or ``None`` when it is not the CPU or nothing does."""
    if device is None or torch.device(device).type != "cpu":
        return None
    why = []
    if len(input_shape) >= 2 and input_shape[-1] * input_shape[-2] >= SLOW_CPU_PIXELS:
        why.append(f"{'x'.join(map(str, input_shape))} inputs")
    parameters = sum(p.numel() for p in model.parameters())
    if parameters >= SLOW_CPU_PARAMETERS:
        why.append(f"{parameters / 1e6:.1f} M parameters")
    return " and ".join(why) or None


def warn_slow_on_cpu(doing: str, model: nn.Module, input_shape: tuple[int, ...],
                     device: torch.device | str | None, *,
                     enabled: bool = True) -> None:  # fmt: skip
    """One line on stderr, before the work, when ``doing`` (``training resnet18``) on the CPU
    will be slow (:func:`slow_on_cpu`); :func:`fit` adds its estimate after the first step."""
    why = slow_on_cpu(model, input_shape, device)
    if why is not None:
        progress_note(f"warning: {doing} on the CPU with {why} will be slow (seconds to minutes a "
                      f"step); a GPU is much faster, and so are smaller images ("
                      + in_words("FolderOptions(image_size=...)", "--image-size N") + ")",
                      enabled=enabled)  # fmt: skip


def fit(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    *,
    objective: Objective = cross_entropy_objective,
    batch_transform: BatchTransform | None = None,
    parameters: Iterable[nn.Parameter] | None = None,
    train_mode: bool = True,
    description: str = "training",
    progress: bool = True,
    distributed: DistributedContext | None = None,
) -> list[float]:
    """Train ``model`` in place on ``(x, y)`` and return the mean loss of every epoch.

    Args:
        model: the module to optimise (moved to nothing: keep it and the data on one device).
        x, y: all training inputs and labels as tensors.
        config: optimiser, schedule, batch size, length and seed.
        objective: ``(model, x_batch, y_batch) -> scalar loss``.
        batch_transform: applied to each batch before the objective (mnemonic-code
            augmentation, image augmentation); receives the loop's seeded generator.
        parameters: the parameters to optimise (default: all of ``model``'s).
        train_mode: put the model in train mode (False keeps batch-norm statistics frozen).
        description: label of the progress bar.
        progress: show a rich progress bar.
        distributed: train as one rank of a ``torchrun`` job (:mod:`obliviate.distributed`):
            the model is wrapped in DistributedDataParallel, this rank trains its slice of every
            global batch of ``config.batch_size`` and draws its augmentation from a generator
            seeded by (seed, rank, step). Every rank must call ``fit`` with the same data and
            config. The returned losses are this rank's.
    """
    if len(y) == 0:
        raise ObliviateError("no training samples were given")
    check_batch(config.batch_size, distributed)
    net: nn.Module = model
    if distributed is not None:
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [distributed.local_rank] if distributed.backend == "nccl" else None
        net = DistributedDataParallel(model, device_ids=device_ids)
    generator = torch.Generator().manual_seed(config.seed)
    params = list(parameters) if parameters is not None else list(model.parameters())
    optimizer = make_optimizer(params, config)
    n = len(y)
    batches_per_epoch = math.ceil(n / config.batch_size)
    total_steps = config.steps or config.epochs * batches_per_epoch
    scheduler = None
    if config.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    model.train(train_mode)
    epoch_losses: list[float] = []
    step = 0
    show = progress and (distributed is None or distributed.is_main)
    unit = "steps" if config.steps else f"batches ({config.epochs} epochs)"
    device = next(model.parameters()).device
    slow = slow_on_cpu(model, tuple(x.shape[1:]), device)
    started = time.perf_counter()
    with progress_bar(description, total=total_steps, unit=unit, enabled=show) as advance:
        while step < total_steps:
            order = torch.randperm(n, generator=generator).to(y.device)
            running, count = 0.0, 0
            for start in range(0, n, config.batch_size):
                if step >= total_steps:
                    break
                index = order[start : start + config.batch_size]
                draws = generator
                if distributed is not None:
                    # every rank trains an equal slice: a last batch smaller than a multiple
                    # of the world size loses its remainder (fewer than world_size samples)
                    index = index[: len(index) - len(index) % distributed.world_size]
                    if len(index) == 0:
                        step += 1
                        advance(1)
                        continue
                    index = distributed.shard(index)
                    draws = distributed.generator(config.seed, step)
                xb, yb = x[index].to(y.device), y[index]  # .to: a no-op but for ImageFiles
                if batch_transform is not None:
                    xb, yb = batch_transform(xb, yb, draws)
                loss = objective(net, xb, yb)
                if not torch.isfinite(loss):
                    raise ObliviateError(
                        f"{description}: the loss became {loss.item()} at step {step}; "
                        "lower the learning rate"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                running += loss.item() * len(yb)
                count += len(yb)
                step += 1
                if step == 1 and device.type == "cpu" and total_steps > 1:
                    _estimate(description, time.perf_counter() - started, total_steps,
                              slow is not None, show)  # fmt: skip
                advance(1)
            epoch_losses.append(running / max(count, 1))
            log.debug("%s: epoch %d loss %.4f", description, len(epoch_losses), epoch_losses[-1])
    model.eval()
    return epoch_losses


def _estimate(description: str, first: float, steps: int, slow: bool, show: bool) -> None:
    """After the first step on the CPU: how long the run will take at that pace, when that is
    long (:data:`SLOW_CPU_SECONDS`, or :data:`SLOW_CPU_NOTED_SECONDS` for large inputs or
    models, which were warned about before)."""
    total = first * steps
    if total > (SLOW_CPU_NOTED_SECONDS if slow else SLOW_CPU_SECONDS):
        progress_note(f"warning: {description}: the first step took {first:.1f} s on the CPU, "
                      f"so all {steps} will take about {duration(total)}; a GPU, or fewer "
                      "steps or smaller images, is faster", enabled=show)  # fmt: skip


@torch.no_grad()
def batched_eval(
    fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, x: torch.Tensor, batch_size: int
) -> list[torch.Tensor]:
    """``fn`` over ``x`` in batches, on the model's device, with the model in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return [fn(x[i : i + batch_size].to(device)) for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)


def predict(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024) -> torch.Tensor:
    """Predicted labels of ``model`` on ``x`` (eval mode, batched), on the CPU."""
    preds = batched_eval(lambda xb: model(xb).argmax(dim=1).cpu(), model, x, batch_size)
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def extract_features(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024
) -> torch.Tensor:
    """Penultimate features ``model.features(x)`` in eval mode, batched, on the model's device."""
    return torch.cat(batched_eval(model.features, model, x, batch_size))
