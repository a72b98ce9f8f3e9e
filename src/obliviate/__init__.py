"""obliviate: data-free, one-shot machine unlearning for PyTorch classifiers.

The front door::

    import obliviate
    bundle = obliviate.train("digits", "fc")          # trains with mnemonic codes
    forgotten = obliviate.forget(bundle, [0])         # one-shot, data-free
    report = obliviate.evaluate(forgotten)            # A_R, FE, RE, S, time, per class
    obliviate.save(forgotten, "digits-forgot-0.safetensors")
"""

import importlib
from typing import Any

#: Where each public name lives. They are imported on first use (PEP 562), so that
#: ``import obliviate.cli`` and ``obliviate --help`` do not import torch.
_PUBLIC = {
    "evaluate": "obliviate.api", "forget": "obliviate.api", "train": "obliviate.api",
    "ModelBundle": "obliviate.checkpoint", "load": "obliviate.checkpoint",
    "save": "obliviate.checkpoint", "CodeConfig": "obliviate.codes",
    "MnemonicCodes": "obliviate.codes", "CodeCollate": "obliviate.codes", "DATASETS": "obliviate.data", "Dataset": "obliviate.data",
    "Split": "obliviate.data", "load_dataset": "obliviate.data",
    "ObliviateError": "obliviate.errors", "NotVerifiedError": "obliviate.errors",
    "GoalMissedWarning": "obliviate.errors", "METHODS": "obliviate.methods",
    "EvalReport": "obliviate.metrics", "MODELS": "obliviate.models",
    "create_model": "obliviate.models", "TrainConfig": "obliviate.training",
    "wrap": "obliviate.pretrained", "retrofit": "obliviate.pretrained",
    "source_model": "obliviate.pretrained", "FolderOptions": "obliviate.data",
    "depth_evidence": "obliviate.references", "retrained_reference": "obliviate.references",
    "record_statistics": "obliviate.api",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        importlib.import_module("obliviate.recoverable")  # registers the "lirf-recover" model
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'obliviate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "METHODS",
    "MODELS",
    "CodeCollate",
    "CodeConfig",
    "Dataset",
    "EvalReport",
    "MnemonicCodes",
    "ModelBundle",
    "ObliviateError",
    "NotVerifiedError",
    "GoalMissedWarning",
    "Split",
    "TrainConfig",
    "create_model",
    "evaluate",
    "forget",
    "load",
    "load_dataset",
    "save",
    "source_model",
    "train",
    "wrap",
    "retrofit",
    "FolderOptions",
    "depth_evidence",
    "retrained_reference",
    "record_statistics",
    "__version__",
]
