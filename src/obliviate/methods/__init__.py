"""Unlearning methods, one file each, behind one interface (:mod:`obliviate.methods.base`)."""

from obliviate.methods import (  # noqa: F401  (importing a module registers its method)
    erm_ktp,
    fastmu,
    finetune,
    gradient_ascent,
    lwsf,
    mnemonic,
    mnemonic_data,
    random_label,
    retrain,
    sfdn,
    ssd,
)
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
)

__all__ = ["METHODS", "ForgetRequest", "MethodOutput", "UnlearnContext", "UnlearningMethod"]
