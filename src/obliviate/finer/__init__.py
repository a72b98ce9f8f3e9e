"""Finer-than-sample forgetting (Hayase et al.): backdoor/leakage transforms, the four data sets
of the formulation, the forgetting terms (RND, RLD, truncation), the EWC remembering term and the
pattern A/B/C losses, the Optuna search (``tuning``) and the experiment behind
``obliviate backdoor`` (``experiment``).
"""

from obliviate.finer.forgetting import (
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
    truncated_predict,
)
from obliviate.finer.splits import FinerData, TrainTest, build_finer_data
from obliviate.finer.transforms import TRANSFORMS, PixelRange, resolve_transform

__all__ = [
    "TRANSFORMS", "FinerData", "ForgetSettings", "PixelRange", "TrainTest", "accuracies",
    "build_finer_data", "pretraining_fisher", "resolve_transform", "selective_forget",
    "truncated_predict",
]
