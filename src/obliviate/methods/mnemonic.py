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

import math

import torch

from obliviate.calibration import (
    apply_head,
    forget_margins,
    head_direction,
    required_strength,
    statistics_strength,
    truncated_predictions,
)
from obliviate.deep import apply_edit, logit_bounds, redirect, retain_drop_bound
from obliviate.errors import ObliviateError
from obliviate.fisher import warm_up
from obliviate.methods.base import (
    METHODS,
    ForgetRequest,
    MethodOutput,
    UnlearnContext,
    UnlearningMethod,
    check_non_negative,
    check_positive,
)
from obliviate.methods.mnemonic_checks import GivenData, verdict
from obliviate.methods.mnemonic_paper import paper_forget
from obliviate.modelcopy import copy_model
from obliviate.models import Classifier
from obliviate.stats import transport


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
        given = GivenData.of(context, model, retain, self.retain_per_class, device,
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
                # step first, kept when the edit is refused
                head = self._output_only(model, inputs, labels, forget, retain, given, context)
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
        edit (or on data when given). ``(None, why)`` when the bound alone tells, before any
        model is built, that the kept classes cannot be verified and the model would not be
        used: under ``auto``, or on the half-strength retry."""
        layer = model.feature_layer()
        stats = context.stats
        edit = redirect(model, layer, stats.layer, forget, retain, gamma=gamma,
                        weights_sha256=stats.weights_sha256)  # fmt: skip
        feature_bound = layer.feature_bound(edit.channel_bound)
        bounds = logit_bounds(model.classifier, feature_bound)
        drop = retain_drop_bound(stats.layer, bounds, forget, retain)
        no_retain_data = not _has_retain_data(context)
        # without kept-class data the bound decides: auto keeps the output-only step, and the
        # half-strength retry is kept only when it verifies (else the first try is returned)
        retry = gamma != self.redirect
        if (self.depth == "auto" or retry) and no_retain_data and (
                drop is None or drop > self.max_retain_drop):  # fmt: skip
            return None, ("features: not verified without data (the kept-class bound allows "
                          + ("an unknown loss" if drop is None else f"{drop:.1f} points") +
                          f" of training accuracy, more than {self.max_retain_drop:g}); pass "
                          "--data DATASET (or a held-out --check-data DATASET) to verify the "
                          "deep forget on it")  # fmt: skip
        edited = copy_model(model)
        apply_edit(edited, layer, edit)
        carried = transport(stats, feature_bound, bounds, layer.nonnegative)
        given = GivenData.of(context, edited, retain, self.retain_per_class,
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
                  "they resemble" + (f", the shortcut of {layer.residual} included"
                                     if edit.residual else "")
                  + ") and the forget-class rows of the classifier",
            redirect={"layer": layer.name, "gamma": gamma,
                      "mixture": {str(f): {str(k): p for k, p in m.items()}
                                  for f, m in edit.mixture.items()},
                      "largest_logit_change_bound": float(bounds.max()),
                      # a residual layer: the targets are the sum's (the shortcut included)
                      "shortcut": (layer.residual if edit.residual else None)},
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
        out = copy_model(model)
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
        verified, reason = verdict(checks, reason, f"{setting} {strength:.3g}")
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
        return paper_forget(self, model, inputs, labels, forget, retain, given, context)
