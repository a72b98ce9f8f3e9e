"""Finer-than-sample forgetting (Hayase et al.): backdoor/leakage transforms, the four data sets
of the formulation, the forgetting terms (RND, RLD, truncation), the EWC remembering term and the
pattern A/B/C losses, the Optuna search (``tuning``) and the experiment behind
``obliviate backdoor`` (``experiment``); our method beside the paper's (``ours``: the logit
calibration of ``calibration``, the other-class and clean distillations) and the goals of
patterns B and C (``goals``).
"""

from obliviate.finer.calibration import LogitCalibration, fit_logit_calibration, fold_calibration
from obliviate.finer.forgetting import (
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
    truncated_predict,
)
from obliviate.finer.goals import pattern_goals
from obliviate.finer.ours import CalibratedForget, calibrated_forget, ours_settings
from obliviate.finer.splits import FinerData, TrainTest, build_finer_data
from obliviate.finer.transforms import TRANSFORMS, PixelRange, resolve_transform

__all__ = [
    "TRANSFORMS", "CalibratedForget", "FinerData", "ForgetSettings", "LogitCalibration",
    "PixelRange", "TrainTest", "accuracies", "build_finer_data", "calibrated_forget",
    "fit_logit_calibration", "fold_calibration", "ours_settings", "pattern_goals",
    "pretraining_fisher", "resolve_transform", "selective_forget", "truncated_predict",
]
