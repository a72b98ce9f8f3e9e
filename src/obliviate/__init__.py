"""obliviate: data-free, one-shot machine unlearning for PyTorch classifiers.

The front door::

    import obliviate
    bundle = obliviate.train("digits", "fc")          # trains with mnemonic codes
    forgotten = obliviate.forget(bundle, [0])         # one-shot, data-free
    report = obliviate.evaluate(forgotten)            # A_R, FE, RE, S, time, per class
    obliviate.save(forgotten, "digits-forgot-0.safetensors")
"""

from obliviate.api import evaluate, forget, train
from obliviate.checkpoint import ModelBundle, load, save
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.data import DATASETS, Dataset, Split, load_dataset
from obliviate.errors import ObliviateError
from obliviate.methods import METHODS
from obliviate.metrics import EvalReport
from obliviate.models import MODELS, create_model
import obliviate.recoverable  # noqa: F401  (registers the "lirf-recover" model)
from obliviate.training import TrainConfig

__version__ = "0.1.0"

__all__ = [
    "DATASETS",
    "METHODS",
    "MODELS",
    "CodeConfig",
    "Dataset",
    "EvalReport",
    "MnemonicCodes",
    "ModelBundle",
    "ObliviateError",
    "Split",
    "TrainConfig",
    "create_model",
    "evaluate",
    "forget",
    "load",
    "load_dataset",
    "save",
    "train",
    "__version__",
]
