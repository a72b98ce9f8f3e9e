"""One-shot forgetting with mnemonic codes (Yamashita, Yamada & Shibata, ACML 2024; Alg. 2),
calibrated and verified per request.

Per-class diagonal Fisher information is computed from the mnemonic codes only, and
``eta = f_F / f_R`` (forget-classes Fisher over retain-classes Fisher) says which parameters
matter to the forget classes and not to the others. Two modes use it.

**Calibrated (the default, no lambda given).** The perturbation is confined to where eta
concentrates: the classifier rows of the forget classes. Each forget row ``c`` is lowered by
``strength * (eta_c / max eta_c)`` (weights) and ``strength`` (bias), so on an input with
penultimate features ``h`` the forget logit drops by ``strength * (1 + eta_hat_c . h)`` and
no kept class's logit moves. The strength is found for each request, in closed form, as the
smallest value that pushes

* every forget class's code at least ``margin`` nats below the best kept class (codes),
* every *training* sample of the forget classes at least ``margin`` below, by the bound that
  the training statistics stored in the model file give (:mod:`obliviate.stats`; no sample is
  kept), and
* when the caller passes data, every given forget sample at least ``margin`` below.

The result is then measured (codes, and data when given) and recorded with ``verified``.
Because kept classes' rows are untouched, a kept-class sample's prediction can only stay or
move from a forget class to its best kept class: accuracy on kept classes lies between the
model's before and the truncation oracle's. Without statistics and without data the request
cannot be verified (the codes alone do not predict real data) and is refused.

**Paper mode (lambda1 and/or lambda2 given).** Alg. 2 exactly: every parameter tensor ``l``
moves by ``alpha_l * eta`` with ``alpha_l = min(lambda1, lambda2 / max(eta_l))`` (``eta``
computed as ``exp(log f_F - log f_R)``, NaN -> 0, +-inf -> the largest finite value, as the
official code does); both signs are tried and the candidate with the higher retain accuracy +
forget error is kept, measured on the codes or, if the caller passes data, on that data; ties
are broken by ``CE(forget) - CE(retain)`` (the official code takes the minus sign on ties).
It changes the feature extractor, so only data can verify it.

Paper defaults (official code): FC/MNIST lambda = (1e-3, 10); CIFAR-10/ResNet-18 (1e-5, 1e4);
the paper's text also lists CUB (1e-4, 1.0) and STN (1e-5, 100). A missing lambda in paper mode
is the architecture's ``default_lambdas`` value.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch

from obliviate.calibration import (
    apply_head,
    data_check,
    forget_margins,
    head_direction,
    required_strength,
    statistics_strength,
    truncated_predictions,
)
from obliviate.deep import apply_edit, logit_bounds, redirect, retain_drop_bound
from obliviate.digest import hash_in_background
from obliviate.errors import ObliviateError
from obliviate.fisher import diagonal_fisher, warm_up
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_non_negative,
    check_positive,
    class_scores,
)
from obliviate.models import Classifier
from obliviate.stats import transport
from obliviate.training import batched_eval, extract_features


#: The calibrated mode's depths (see :class:`MnemonicForgetting`).
DEPTHS = ("auto", "features", "output")


def _no_statistics(context: UnlearnContext) -> str:
    """Why the request has no training statistics to verify from."""
    return context.stats_problem or (
        "this model file has no training statistics (trained before they were recorded, or "
        "changed by another method since), and the codes alone do not predict real data; "
        "record them from the training data (obliviate stats MODEL --data DATASET --out "
        "NEW.safetensors) or pass the training data (--data DATASET) to verify on it")


def _has_retain_data(context: UnlearnContext) -> bool:
    """Whether the method was given samples of the kept classes (training or check data)."""
    return any(d is not None and len(d) > 0 for d in (context.retain_data, context.check_data))


def _deep_unavailable(model: Classifier, context: UnlearnContext) -> str | None:
    """Why the feature-level forget cannot run on ``model``, or ``None`` when it can."""
    stats = context.stats
    if model.feature_layer() is None:
        return f"architecture {type(model).__name__} names no feature layer to edit"
    if stats is None:
        return context.stats_problem or "the model file has no training statistics"
    if stats.layer is None:
        return ("the model file has no layer statistics (trained before they were recorded, "
                "or by a method that changes the features); retrain or retrofit it")
    return None


def noise_ratio(f_forget: torch.Tensor, f_retain: torch.Tensor) -> torch.Tensor:
    """``eta = f_forget / f_retain`` in float64, via logs; NaN -> 0, +-inf -> max finite."""
    log_eta = torch.log(f_forget.double()) - torch.log(f_retain.double())
    log_eta = torch.where(torch.isnan(log_eta), torch.zeros_like(log_eta), log_eta)
    finite = log_eta[torch.isfinite(log_eta)]
    max_finite = finite.max() if finite.numel() else torch.zeros((), dtype=log_eta.dtype)
    log_eta = torch.where(torch.isinf(log_eta), max_finite, log_eta)
    return torch.exp(log_eta)


def perturbation(
    eta: torch.Tensor, lambda1: float, lambda2: float
) -> tuple[torch.Tensor, float]:
    """``(alpha * eta, alpha)`` with ``alpha = min(lambda1, lambda2 / max(eta))`` (Eq. 6)."""
    peak = float(eta.max())
    alpha = min(lambda1, lambda2 / peak) if peak > 0 else lambda1
    return alpha * eta, alpha


def forgetting_noise(
    f_forget: dict[str, torch.Tensor],
    f_retain: dict[str, torch.Tensor],
    lambda1: float,
    lambda2: float,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """The perturbation of every parameter tensor and its ``alpha``, from the two Fishers."""
    deltas, alphas = {}, {}
    for name, ff in f_forget.items():
        delta, alpha = perturbation(noise_ratio(ff, f_retain[name]), lambda1, lambda2)
        deltas[name] = delta.to(ff.dtype)
        alphas[name] = alpha
    return deltas, alphas


def apply_noise(model: Classifier, deltas: dict[str, torch.Tensor], sign: int) -> Classifier:
    """A copy of ``model`` with ``sign * delta`` added to the named parameters."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, param in out.named_parameters():
            if name in deltas:
                param.add_(deltas[name].to(param.device), alpha=sign)
    return out


@METHODS.register("mnemonic")
class MnemonicForgetting(UnlearningMethod):
    """One-shot, data-free forgetting with mnemonic codes (the core method).

    Args:
        lambda1, lambda2: give either to run the paper's Alg. 2 with fixed lambdas (paper
            mode; the other takes the architecture's ``default_lambdas``). Leave both unset
            for the calibrated default.
        margin: nats below the best kept class that the codes, the training-statistics bound
            and any given forget samples must reach (calibrated mode; paper mode checks the
            codes and data against it).
        max_strength: the largest strength the calibrated mode may use; a request that needs
            more is refused.
        min_forget_error: forget error (%) that given forget samples must show to verify.
        max_retain_drop: points of retain accuracy below the truncation oracle that given
            retain samples may lose to verify.
        retain_per_class: given retain samples per class used to verify (drawn with the seed).
        chunk_size: codes per forward pass (calibrated mode) or per vectorised Fisher pass
            (paper mode): memory grows with it, time does not.
        depth: calibrated mode: ``features`` edits the last feature layer and the head
            (:mod:`obliviate.deep`), ``output`` only the head, ``auto`` (default) the deepest
            that verifies.
        redirect: how far the forget classes' mean pre-activation moves towards the kept
            classes they resemble (1: all the way; depth ``features``). When the full move
            does not verify, half of it is tried before giving up (``auto``: output only).
    """

    name = "mnemonic"
    needs = frozenset({"codes"})
    uses = frozenset({"forget", "retain", "check"})
    summary = "one-shot Fisher-guided forgetting from mnemonic codes, calibrated and verified"

    def __init__(
        self,
        *,
        lambda1: float | None = None,
        lambda2: float | None = None,
        margin: float = 2.0,
        max_strength: float = 1000.0,
        min_forget_error: float = 99.5,
        max_retain_drop: float = 1.0,
        retain_per_class: int = 500,
        chunk_size: int = 64,
        depth: str = "auto",
        redirect: float = 1.0,
    ) -> None:
        check_positive(lambda1=lambda1, lambda2=lambda2, chunk_size=chunk_size,
                       max_strength=max_strength, retain_per_class=retain_per_class,
                       redirect=redirect)  # fmt: skip
        if depth not in DEPTHS:
            raise ObliviateError(f"depth must be one of {', '.join(DEPTHS)}, got {depth!r}")
        check_non_negative(margin=margin, max_retain_drop=max_retain_drop)
        if not 0.0 <= min_forget_error <= 100.0:
            raise ObliviateError(f"min_forget_error must lie in [0, 100], got {min_forget_error}")
        self.lambda1 = lambda1
        self.lambda2 = lambda2
        self.margin = margin
        self.max_strength = max_strength
        self.min_forget_error = min_forget_error
        self.max_retain_drop = max_retain_drop
        self.retain_per_class = retain_per_class
        self.chunk_size = chunk_size
        self.depth = depth
        self.redirect = redirect

    @property
    def paper_mode(self) -> bool:
        """True when a lambda was given: the paper's fixed-lambda Alg. 2."""
        return self.lambda1 is not None or self.lambda2 is not None

    def prepare(self) -> None:
        if self.paper_mode:
            warm_up()

    def fisher_samples(
        self, context: UnlearnContext, classes: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples whose squared gradients make the Fisher: the codes of ``classes``."""
        if context.codes is None:
            raise ObliviateError(
                "this model file has no mnemonic codes (it was trained without them), so the "
                "data-free method cannot run; use the data-based variant 'mnemonic-data' "
                "(--method mnemonic-data --data DATASET: Fisher from training images) or "
                "retrain with codes"
            )
        labels = torch.tensor(classes)
        return context.codes.tensor[labels], labels

    def unlearn(
        self, model: Classifier, request: ForgetRequest, context: UnlearnContext
    ) -> MethodOutput:
        forget = sorted(request.classes)
        retain = context.retain_classes(request)
        device = next(model.parameters()).device
        inputs, labels = self.fisher_samples(context, forget + retain)
        inputs, labels = inputs.to(device), labels.to(device)
        given = _GivenData.of(context, model, retain, self.retain_per_class, device,
                              forget_features=not self.paper_mode)  # fmt: skip
        if self.paper_mode:
            return self._paper(model, inputs, labels, forget, retain, given, context)
        return self._calibrated(model, inputs, labels, forget, retain, given, context)

    # -- calibrated mode --------------------------------------------------------------------

    def _calibrated(self, model, inputs, labels, forget, retain, given, context) -> MethodOutput:
        # non-finite weights: the head step's forward pass of the codes refuses them
        deep_note = None
        head = None
        if self.depth in ("auto", "features"):
            missing = _deep_unavailable(model, context)
            if missing is None and self.depth == "auto" and not _has_retain_data(context):
                # without data the deep edit's data-free bound seldom verifies: the output-only
                # step first, its digest taken in the background while the edit is tried
                head = self._output_only(model, inputs, labels, forget, retain, given, context)
                hash_in_background(head.model)
            if missing is None:
                # the full redirect first, then half of it: the deepest edit that verifies
                first = None
                for gamma in (self.redirect, self.redirect / 2):
                    deep, deep_note = self._deep(model, inputs, labels, forget, retain, context,
                                                 gamma)  # fmt: skip
                    if deep is None or deep.details["verified"]:
                        break
                    first = first or deep
                if deep is not None and deep.details["verified"]:
                    if first is not None:
                        deep.details["redirect"]["tried"] = [self.redirect, self.redirect / 2]
                    return deep
                deep = first or deep
                if deep is not None and self.depth == "features":
                    return deep
                if deep is not None:
                    deep_note = ("features: not verified (" + str(deep.details["verification"]
                                 ["reason"]) + "); fell back to output only")  # fmt: skip
            elif self.depth == "features":
                raise ObliviateError(f"depth 'features' is not available for this model: "
                                     f"{missing}; use depth 'output'")  # fmt: skip
            else:
                deep_note = f"features: unavailable ({missing}); output only"
        out = head if head is not None else self._output_only(model, inputs, labels, forget,
                                                              retain, given, context)
        out.details.update(depth_note=deep_note or "output only requested")
        return out

    def _output_only(self, model, inputs, labels, forget, retain, given, context) -> MethodOutput:
        """The closed-form head step on the input, the features untouched."""
        out = self._head_step(model, model, inputs, labels, forget, retain, given,
                              context.stats, no_stats=_no_statistics(context))  # fmt: skip
        out.details.update(depth="output", depth_note="output only requested",
                           scope="forget-class rows of the classifier; the features are the "
                           "input's, unchanged, and still hold the forgotten classes")  # fmt: skip
        return out

    def _deep(self, model, inputs, labels, forget, retain, context, gamma: float,
              ) -> tuple[MethodOutput | None, str | None]:  # fmt: skip
        """Redirect the forget classes at the last feature layer (:mod:`obliviate.deep`), then
        the closed-form head step on the edited model, verified by bounds carried through the
        edit (or on data when given). ``(None, why)`` when ``auto`` can tell from the bound
        alone, before any model is built, that the kept classes cannot be verified."""
        layer = model.feature_layer()
        stats = context.stats
        edit = redirect(model, layer, stats.layer, forget, retain, gamma=gamma,
                        weights_sha256=stats.weights_sha256)  # fmt: skip
        feature_bound = layer.feature_bound(edit.channel_bound)
        bounds = logit_bounds(model.classifier, feature_bound)
        drop = retain_drop_bound(stats.layer, bounds, forget, retain)
        no_retain_data = not _has_retain_data(context)
        if self.depth == "auto" and no_retain_data and (drop is None or
                                                        drop > self.max_retain_drop):  # fmt: skip
            return None, ("features: not verified without data (the kept-class bound allows "
                          + ("an unknown loss" if drop is None else f"{drop:.1f} points") +
                          f" of training accuracy, more than {self.max_retain_drop:g}); pass "
                          "--data DATASET (or a held-out --check-data DATASET) to verify the "
                          "deep forget on it")  # fmt: skip
        edited = copy.deepcopy(model)
        apply_edit(edited, layer, edit)
        carried = transport(stats, feature_bound, bounds, layer.nonnegative)
        given = _GivenData.of(context, edited, retain, self.retain_per_class,
                              inputs.device, forget_features=True, oracle=model)  # fmt: skip
        extra = {}
        if not given.retain_any:  # with kept-class data, the data check judges them
            extra["retain_bound"] = {
                "training_accuracy_drop_bound": drop,
                "max_retain_drop": self.max_retain_drop,
                "passed": drop is not None and drop <= self.max_retain_drop,
            }
            if not extra["retain_bound"]["passed"]:
                extra["retain_bound"]["reason"] = (
                    "without data the kept classes' bound allows "
                    + ("an unknown loss" if drop is None else f"{drop:.1f} points") +
                    f" of training accuracy, more than {self.max_retain_drop:g}; give the data "
                    "the model was trained on (--data DATASET), or held-out samples (--check-data "
                    "DATASET), to verify the deep forget on them")  # fmt: skip
        out = self._head_step(edited, model, inputs, labels, forget, retain, given, carried,
                              no_stats=_no_statistics(context), extra_checks=extra,
                              setting="after the feature edit and strength")  # fmt: skip
        out.details.update(
            depth="features",
            scope=f"layer {layer.name} (the forget classes redirected onto the kept classes "
                  "they resemble) and the forget-class rows of the classifier",
            redirect={"layer": layer.name, "gamma": gamma,
                      "mixture": {str(f): {str(k): p for k, p in m.items()}
                                  for f, m in edit.mixture.items()},
                      "largest_logit_change_bound": float(bounds.max())},
        )  # fmt: skip
        return out, None

    def _head_step(self, model, original, inputs, labels, forget, retain, given, stats, *,
                   no_stats: str, extra_checks: dict[str, dict] | None = None,
                   setting: str = "after strength") -> MethodOutput:  # fmt: skip
        """The closed-form lowering of the forget rows of ``model`` (the input, or the input
        after a feature edit) and its checks; ``stats`` must hold for ``model``. ``no_stats``
        says why there are none when ``stats`` is ``None``; ``extra_checks`` (the feature
        edit's) join the verdict; ``setting`` introduces the strength in a failure's reason."""
        with torch.no_grad():  # in chunks: memory is bounded by chunk_size, time linear in codes
            feats = torch.cat([model.features(inputs[i : i + self.chunk_size])
                               for i in range(0, len(inputs), self.chunk_size)])  # fmt: skip
            logits = model.classifier(feats)
        if not bool(torch.isfinite(logits).all()):
            raise ObliviateError(
                "the model's outputs on its codes are NaN/inf: the weights contain NaN/inf; "
                "check the model file (was training diverging?)"
            )
        direction = head_direction(feats, logits, labels, forget, retain)
        needed: dict[str, float] = {}
        rows = range(len(forget))
        is_code = [labels == c for c in forget]
        needed["codes"] = max(
            required_strength(direction, r, feats[is_code[r]], logits[is_code[r]], retain,
                              self.margin) for r in rows
        )  # fmt: skip
        bounds = []
        if stats is not None:
            per_class = [statistics_strength(direction, r, stats, retain, self.margin)
                         for r in rows]  # fmt: skip
            needed["training_statistics"] = max(p[0] for p in per_class)
            bounds = [{"class": c, "margin_bound": p[1], "guaranteed_drop_per_unit": p[2]}
                      for c, p in zip(forget, per_class)]  # fmt: skip
        if given.forget_features is not None:
            needed["data"] = max(
                required_strength(direction, r, given.forget_features[given.forget_y == c],
                                  given.forget_logits[given.forget_y == c], retain, self.margin)
                for r, c in enumerate(forget)
            )  # fmt: skip
        usable = {k: v for k, v in needed.items() if k != "training_statistics" or
                  math.isfinite(v) or "data" not in needed}  # fmt: skip
        want = max(usable.values())  # codes always count, so never empty
        strength = min(want, self.max_strength)
        out = copy.deepcopy(model)
        apply_head(out.classifier, direction, strength)

        with torch.no_grad():  # the features are ``model``'s: reuse them
            new_logits = out.classifier(feats)
        code_margins = forget_margins(new_logits, labels, retain)
        is_f = torch.isin(labels, torch.tensor(forget, device=labels.device))
        kept_same = None  # after a feature edit the codes' old outputs are not recomputed
        if model is original:  # the kept classes' ranking of every retain code is as before
            kept_same = bool(torch.equal(truncated_predictions(new_logits[~is_f], retain),
                                         truncated_predictions(logits[~is_f], retain)))  # fmt: skip
        checks: dict[str, dict] = {
            "codes": {
                "forget_margin_max": float(code_margins[is_f].max()),
                "target": -self.margin,
                "retain_codes_unchanged": kept_same,
                "passed": float(code_margins[is_f].max()) <= -self.margin + 1e-4
                and kept_same is not False,
            }
        }
        if "training_statistics" in usable:  # with data, a bound that guarantees nothing is moot
            checks["training_statistics"] = {
                "classes": bounds,
                "strength_needed": needed["training_statistics"],  # finite here
                "passed": strength >= needed["training_statistics"],
            }
        if given.any:  # ``model``'s features are exact for ``out``: only the head changed since
            checks[given.check_name] = given.check(
                out.classifier(given.forget_features) if given.forget_features is not None else None,
                out.classifier(given.retain_features) if given.retain_features is not None else None,
                retain, self.min_forget_error, self.max_retain_drop,
            )  # fmt: skip
        reason = None
        if not math.isfinite(want):
            reason = (
                "no strength can guarantee it: this model's penultimate features go below zero "
                "on the forget classes' samples, so lowering the forget rows' weights may raise "
                "the forget logit on some of them"
                + ("" if given.any else "; pass the training data (--data DATASET) to calibrate "
                   "and verify on it")
            )  # fmt: skip
        elif want > self.max_strength:
            reason = (f"the request needs strength {want:.3g}, above max_strength "
                      f"{self.max_strength:g}")  # fmt: skip
        elif "training_statistics" not in checks and "data" not in checks:
            reason = no_stats
        checks.update(extra_checks or {})
        verified, reason = _verdict(checks, reason, f"{setting} {strength:.3g}")
        return MethodOutput(
            model=out,
            details={
                "mode": "calibrated",
                "strength": strength,
                # None: no finite strength guarantees it (JSON has no infinity)
                "strength_needed": {k: v if math.isfinite(v) else None for k, v in needed.items()},
                "sign": "-",
                "eta_max": direction.eta_max,
                "verified": verified,
                "verification": {"on": list(checks), "checks": checks, "reason": reason},
            },
            statistics=stats,
        )

    # -- paper mode -------------------------------------------------------------------------

    def _paper(self, model, inputs, labels, forget, retain, given, context) -> MethodOutput:
        lambda1 = self.lambda1 if self.lambda1 is not None else model.default_lambdas[0]
        lambda2 = self.lambda2 if self.lambda2 is not None else model.default_lambdas[1]
        f_forget, f_retain = diagonal_fisher(
            model, inputs, labels, [forget, retain], chunk_size=self.chunk_size
        )
        deltas, alphas = forgetting_noise(f_forget, f_retain, lambda1, lambda2)
        candidates = {"+": apply_noise(model, deltas, +1), "-": apply_noise(model, deltas, -1)}
        every = context.given_data()
        if every is not None:
            judge_x, judge_y, judged_on = every.x, every.y, "data"
        else:
            judge_x, judge_y, judged_on = inputs, labels, "codes"
        scores = {}
        for sign, candidate in candidates.items():
            criterion, forget_ce, retain_ce = class_scores(
                candidate, judge_x, judge_y, forget, retain, batch_size=self.chunk_size
            )
            scores[sign] = (round(criterion, 9), forget_ce - retain_ce)
        chosen = max(("-", "+"), key=lambda s: scores[s])  # ties on both keys: minus, as authors
        out = candidates[chosen]
        with torch.no_grad():
            out_logits = torch.cat(batched_eval(out, out, inputs, self.chunk_size))
            code_margins = forget_margins(out_logits, labels, retain)
        is_f = torch.isin(labels, torch.tensor(forget, device=labels.device))
        samples = "codes" if context.codes is not None else "fisher_samples"  # mnemonic-data
        checks: dict[str, dict] = {
            samples: {
                "forget_margin_max": float(code_margins[is_f].max()),
                "target": -self.margin,
                "passed": float(code_margins[is_f].max()) <= -self.margin,
            }
        }
        reason = None
        if given.any:
            checks[given.check_name] = given.check(
                given.logits_of(out, "forget"), given.logits_of(out, "retain"), retain,
                self.min_forget_error, self.max_retain_drop,
            )  # fmt: skip
        else:
            reason = ("paper mode changes the feature extractor, which the codes alone cannot "
                      "vouch for; pass the training data (--data DATASET) to verify on it")  # fmt: skip
        verified, reason = _verdict(checks, reason, f"at lambda1={lambda1:g}, lambda2={lambda2:g}")
        return MethodOutput(
            model=out,
            details={
                "mode": "paper",
                "lambda1": lambda1,
                "lambda2": lambda2,
                "sign": chosen,
                "selected_on": judged_on,
                "selection_scores": {s: {"acc_criterion": v[0], "ce_margin": v[1]}
                                     for s, v in scores.items()},
                "alphas": alphas,
                "verified": verified,
                "verification": {"on": list(checks), "checks": checks, "reason": reason},
            },
        )


def _verdict(checks: dict[str, dict], reason: str | None, setting: str) -> tuple[bool, str | None]:
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
class _GivenData:
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
           oracle: Classifier | None = None) -> _GivenData:  # fmt: skip
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
