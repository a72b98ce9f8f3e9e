"""How a mnemonic forget is verified: the samples a caller gave (training or check data), the
check on them, and the verdict over every check (:mod:`obliviate.methods.mnemonic`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.calibration import data_check, truncated_predictions
from obliviate.methods.base import UnlearnContext
from obliviate.models import Classifier
from obliviate.training import batched_eval, extract_features


def verdict(checks: dict[str, dict], reason: str | None, setting: str) -> tuple[bool, str | None]:
    """``(verified, reason)``: verified when nothing ruled it out (``reason``), the codes and
    every check passed, and at least one check on real samples (training statistics or data)
    vouches for it; otherwise the reason names what failed."""
    real = [k for k in ("training_statistics", "data", "check_data") if k in checks]
    verified = reason is None and bool(real) and all(ch["passed"] for ch in checks.values())
    if reason is None and not verified:
        failed = [k for k, ch in checks.items() if not ch["passed"]]
        why = [f"{k}: {ch['reason']}" for k, ch in checks.items()
               if not ch["passed"] and ch.get("reason")]  # fmt: skip
        reason = (f"the check(s) on {', '.join(failed)} failed {setting}"
                  + (f" ({'; '.join(why)})" if why else ""))  # fmt: skip
    return verified, reason


@dataclass
class GivenData:
    """The forget and retain samples a caller gave, with the unchanged model's outputs."""

    forget_x: torch.Tensor | None = None
    forget_y: torch.Tensor | None = None
    forget_features: torch.Tensor | None = None
    forget_logits: torch.Tensor | None = None
    retain_x: torch.Tensor | None = None
    retain_y: torch.Tensor | None = None
    retain_features: torch.Tensor | None = None
    oracle_retain: torch.Tensor | None = None
    #: the retain samples are the caller's check set (held out), not training samples
    held_out: bool = False

    @property
    def check_name(self) -> str:
        """The record's name of the check on these samples."""
        return "check_data" if self.held_out else "data"

    @property
    def any(self) -> bool:
        return self.forget_x is not None or self.retain_x is not None

    @property
    def retain_any(self) -> bool:
        return self.retain_x is not None

    @classmethod
    def of(cls, context: UnlearnContext, model: Classifier, retain: list[int],
           retain_per_class: int, device: torch.device, *, forget_features: bool,
           oracle: Classifier | None = None) -> GivenData:  # fmt: skip
        """The given samples; the forget samples' features and logits only when asked (the
        calibrated mode solves its strength on them, paper mode never reads them). Features
        are ``model``'s; the truncation oracle is ``oracle``'s (default ``model``)."""
        out = cls()
        if context.forget_data is not None and len(context.forget_data):
            out.forget_x = context.forget_data.x
            out.forget_y = context.forget_data.y.to(device)
            if forget_features:
                out.forget_features = extract_features(model, out.forget_x)
                with torch.no_grad():
                    out.forget_logits = model.classifier(out.forget_features)
        source = context.retain_data
        if context.check_data is not None and len(context.check_data):
            # held-out samples, when given, judge the kept classes (training samples the model
            # fitted flatter it); training data still calibrates the forget side
            source, out.held_out = context.check_data, True
        if source is not None and len(source):
            subset = source.per_class_subset(retain_per_class, seed=context.seed)
            out.retain_x = subset.x
            out.retain_y = subset.y.to(device)
            out.retain_features = extract_features(model, out.retain_x)
            with torch.no_grad():
                judge = oracle if oracle is not None else model
                base = out.retain_features if judge is model else extract_features(judge,
                                                                                    out.retain_x)
                out.oracle_retain = truncated_predictions(judge.classifier(base), retain)
        return out

    def logits_of(self, model: Classifier, which: str) -> torch.Tensor | None:
        x = self.forget_x if which == "forget" else self.retain_x
        if x is None:
            return None
        return torch.cat(batched_eval(model, model, x, 1024))

    def check(self, logits_forget, logits_retain, retain, min_forget_error, max_retain_drop):
        return data_check(
            logits_forget, self.forget_y, logits_retain, self.retain_y, self.oracle_retain,
            retain, min_forget_error=min_forget_error, max_retain_drop=max_retain_drop,
            held_out=self.held_out,
        )  # fmt: skip
