"""The mnemonic paper's "Ours w/o MNCODE": Alg. 2 with the Fisher from training images instead of
the codes, for models trained without them (see :mod:`obliviate.methods.mnemonic`)."""

from __future__ import annotations

import torch

from obliviate.methods.base import METHODS, UnlearnContext, check_positive
from obliviate.methods.mnemonic import MnemonicForgetting


@METHODS.register("mnemonic-data")
class MnemonicDataForgetting(MnemonicForgetting):
    """"Ours w/o MNCODE" of the mnemonic paper (Tables 2-5): Alg. 2 with the Fisher computed
    from ``per_class`` training images of every forget and retain class (paper: 200) instead of
    the codes, and the +/- candidate chosen on the training data. Works on models trained
    without codes.

    Args:
        lambda1, lambda2: as for ``mnemonic`` (default: the architecture's).
        per_class: training images per class for the Fisher (drawn with the request's seed).
        chunk_size: images per vectorised Fisher pass.
    """

    name = "mnemonic-data"
    needs = frozenset({"forget", "retain"})
    uses = frozenset()
    summary = "Alg. 2 with the Fisher from training images ('Ours w/o MNCODE')"

    def __init__(
        self,
        *,
        lambda1: float | None = None,
        lambda2: float | None = None,
        per_class: int = 200,
        chunk_size: int = 64,
    ) -> None:
        super().__init__(lambda1=lambda1, lambda2=lambda2, chunk_size=chunk_size)
        check_positive(per_class=per_class)
        self.per_class = per_class

    @property
    def paper_mode(self) -> bool:
        """Always: this is the paper's Alg. 2 (default lambdas: the architecture's)."""
        return True

    def fisher_samples(
        self, context: UnlearnContext, classes: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` training images of each of ``classes``."""
        data = context.given_data()
        assert data is not None  # guaranteed by ``needs``
        subset = data.of_classes(classes).per_class_subset(
            self.per_class, seed=context.seed
        )
        return subset.x, subset.y
