"""Mnemonic codes: one class-specific random pattern per class (Shibata et al. 2021).

A code has the shape of one model input. It is drawn uniformly from [0, 1) by default, as in
the authors' code (``torch.rand``), or from a standard normal, as the v2 paper's Algorithm 1
writes it (``CodeConfig(distribution="normal")``). Codes live in the *model input space*: for datasets that are normalised
the code replaces or is mixed into the normalised tensor, exactly as the official implementation
does.

Two training-time augmentations are supported:

``replace`` (paper v2, Algorithm 1; the default)
    with probability ``t_mix`` a training input is replaced by the code of its label.
``mix`` (paper v1, Eq. 7)
    every batch is trained twice: on ``x`` and on ``(1 - strength) * x + strength * xi_y``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from obliviate.errors import ObliviateError
from obliviate.names import CODE_DISTRIBUTIONS, CODE_MODES

CodeMode = Literal["replace", "mix"]
CodeDistribution = Literal["uniform", "normal"]


@dataclass(frozen=True)
class CodeConfig:
    """How mnemonic codes are generated and used while training.

    Attributes:
        mode: ``"replace"`` (v2, Alg. 1) or ``"mix"`` (v1, Eq. 7).
        t_mix: replacement probability for ``replace`` (paper: 0.1 for the FC protocol,
            0.3 for CIFAR-10/ResNet-18).
        strength: the mixing weight lambda of Eq. 7 for ``mix`` (paper: 0.99 MNIST, 0.9 others).
        seed: seed from which the codes are drawn.
        distribution: ``"uniform"`` (U[0, 1), the official code) or ``"normal"`` (N(0, 1), the
            v2 paper's Algorithm 1).
    """

    mode: CodeMode = "replace"
    t_mix: float = 0.1
    strength: float = 0.99
    seed: int = 0
    distribution: CodeDistribution = "uniform"

    def __post_init__(self) -> None:
        if self.mode not in CODE_MODES:
            raise ObliviateError(f"code mode must be one of {CODE_MODES}, got {self.mode!r}")
        if not 0.0 <= self.t_mix <= 1.0:
            raise ObliviateError(f"t_mix must lie in [0, 1], got {self.t_mix}")
        if not 0.0 <= self.strength <= 1.0:
            raise ObliviateError(f"code strength must lie in [0, 1], got {self.strength}")
        if self.distribution not in CODE_DISTRIBUTIONS:
            raise ObliviateError(
                f"code distribution must be one of {CODE_DISTRIBUTIONS}, got {self.distribution!r}"
            )


class MnemonicCodes:
    """The codes of a model: a tensor of shape ``(num_classes, *input_shape)`` plus its config.

    Example:
        >>> codes = MnemonicCodes.generate(10, (1, 28, 28), CodeConfig(seed=3))
        >>> codes.tensor.shape
        torch.Size([10, 1, 28, 28])
    """

    def __init__(self, tensor: torch.Tensor, config: CodeConfig) -> None:
        if tensor.dim() < 2:
            raise ObliviateError("codes tensor must have shape (num_classes, *input_shape)")
        self.tensor = tensor.detach().to(torch.float32).contiguous()
        self.config = config

    @classmethod
    def generate(
        cls, num_classes: int, input_shape: tuple[int, ...], config: CodeConfig | None = None
    ) -> MnemonicCodes:
        """Draw one pattern per class from ``config.seed`` (deterministic), uniform [0, 1) or
        standard normal as ``config.distribution`` says."""
        config = config or CodeConfig()
        generator = torch.Generator().manual_seed(config.seed)
        draw = torch.randn if config.distribution == "normal" else torch.rand
        tensor = draw((num_classes, *input_shape), generator=generator)
        return cls(tensor, config)

    @property
    def num_classes(self) -> int:
        return int(self.tensor.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.tensor.shape[1:])

    def labels(self) -> torch.Tensor:
        """Class labels of the codes, ``0 .. num_classes - 1``."""
        return torch.arange(self.num_classes)

    def augment(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the configured augmentation to one batch.

        ``replace`` returns a batch of the same size where each row is, with probability
        ``t_mix``, replaced by the code of its label. ``mix`` returns twice the batch: the
        originals followed by their mixtures with the codes.
        """
        codes = self.tensor.to(x.device, x.dtype)[y]
        if self.config.mode == "replace":
            draw = torch.rand(x.shape[0], generator=generator).to(x.device)
            mask = (draw < self.config.t_mix).view(-1, *([1] * (x.dim() - 1)))
            return torch.where(mask, codes, x), y
        mixed = (1.0 - self.config.strength) * x + self.config.strength * codes
        return torch.cat([x, mixed]), torch.cat([y, y])

    def __repr__(self) -> str:
        return (
            f"MnemonicCodes(num_classes={self.num_classes}, input_shape={self.input_shape}, "
            f"config={self.config})"
        )


class CodeCollate:
    """The codes as a piece of any training loop: a DataLoader ``collate_fn`` that applies
    :meth:`MnemonicCodes.augment` to every batch, and a batch transform for loops that already
    hold tensors (Lightning's ``training_step``, a Hugging Face ``Trainer``'s collator, your own).

    Args:
        codes: the codes (:meth:`MnemonicCodes.generate`); keep them, :func:`obliviate.wrap`
            puts them in the model file so that :func:`obliviate.forget` can use them.
        seed: seeds the replacement draws. Each DataLoader worker process draws from its own
            generator, seeded by ``(seed, worker id)``, so workers do not repeat each other.
        collate: how a list of samples becomes ``(x, y)`` tensors (default: PyTorch's).

    Example:
        >>> codes = MnemonicCodes.generate(10, (1, 8, 8), CodeConfig(t_mix=0.5))
        >>> collate = CodeCollate(codes)
        >>> x, y = collate([(torch.zeros(1, 8, 8), 3), (torch.zeros(1, 8, 8), 5)])
        >>> x.shape, y.tolist()
        (torch.Size([2, 1, 8, 8]), [3, 5])
        >>> x, y = collate.batch(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 3]))
    """

    def __init__(self, codes: MnemonicCodes, *, seed: int = 0, collate=None) -> None:
        if not isinstance(codes, MnemonicCodes):
            raise ObliviateError("CodeCollate needs MnemonicCodes (MnemonicCodes.generate(...))")
        self.codes = codes
        self.seed = int(seed)
        self._collate = collate
        self._generators: dict[int, torch.Generator] = {}

    def generator(self) -> torch.Generator:
        """The generator of the calling process (the main one, or a DataLoader worker)."""
        from torch.utils.data import get_worker_info

        info = get_worker_info()
        worker = -1 if info is None else info.id
        if worker not in self._generators:
            seed = self.seed if worker < 0 else hash((self.seed, worker)) & 0x7FFF_FFFF_FFFF_FFFF
            self._generators[worker] = torch.Generator().manual_seed(seed)
        return self._generators[worker]

    def batch(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the codes to one batch of inputs ``x`` and integer labels ``y``."""
        if tuple(x.shape[1:]) != self.codes.input_shape:
            raise ObliviateError(f"the batch's inputs have shape {tuple(x.shape[1:])}, the codes "
                                 f"{self.codes.input_shape}")  # fmt: skip
        y = torch.as_tensor(y)
        if y.numel() and not 0 <= int(y.min()) <= int(y.max()) < self.codes.num_classes:
            raise ObliviateError(f"labels must lie in 0..{self.codes.num_classes - 1}")
        return self.codes.augment(x, y, self.generator())

    def __call__(self, samples: list) -> tuple[torch.Tensor, torch.Tensor]:
        if self._collate is None:
            from torch.utils.data import default_collate

            x, y = default_collate(samples)
        else:
            x, y = self._collate(samples)
        return self.batch(x, y)
