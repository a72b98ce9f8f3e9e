"""Names the command line shows before it imports the library (no torch here): `obliviate
--help` and usage errors stay fast. `tests/unit/test_names.py` checks them against the
registries they mirror."""

from __future__ import annotations

#: The registered datasets (``obliviate.data.DATASETS``).
DATASET_NAMES: tuple[str, ...] = ("cifar10", "digits", "fashion-mnist", "mnist")
#: The models ``obliviate train`` can train (``obliviate.models.trainable_models()``).
TRAINABLE_MODEL_NAMES: tuple[str, ...] = ("cnn", "convnet", "fc", "hardtanh-mlp", "resnet18")
#: How codes are mixed into training (``obliviate.codes.CodeConfig.mode``).
CODE_MODES: tuple[str, ...] = ("replace", "mix")
#: How codes are drawn (``obliviate.codes.CodeConfig.distribution``).
CODE_DISTRIBUTIONS: tuple[str, ...] = ("uniform", "normal")
