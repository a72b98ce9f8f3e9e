"""Unlearning methods, one file each, behind one interface (:mod:`obliviate.methods.base`)."""

from obliviate.methods import mnemonic  # noqa: F401  (registers the method)
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
)

__all__ = ["METHODS", "ForgetRequest", "MethodOutput", "UnlearnContext", "UnlearningMethod"]
