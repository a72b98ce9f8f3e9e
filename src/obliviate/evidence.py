"""Evidence that a forget is deep: what the weights still reveal, measured against retraining.

A forget that only lowers the forget classes' outputs leaves their features intact: whoever
holds the weights and a few labelled samples gets the class back. This module measures that,
on a dataset's test split, for any forgotten model and a *reference*: ideally a model retrained
without the classes (the gold standard), else the original model (then the gaps say how far the
forget moved from where it started, not how close it came to retraining).

The attacker's samples are training samples, drawn with a fixed seed; every score is on the
forget classes' test samples. The attacks start where an attacker would (:mod:`obliviate.attacks`):

KR (``kr_k10``, ``kr_k100``, ``kr_all``; ``kr_<block>_k10`` ... at earlier blocks)
    knowledge retention, as in ESC: a fresh linear head fitted to convergence (L-BFGS) on the
    frozen features of k training samples per class (all of them for ``all``); its accuracy
    (%). Depth is judged on the few-shot ones: with the whole split a probe finds the class in
    a retrained model too.
Spotter (``spotter``)
    the prototypical relearning attack of Ha et al.: 5 samples' prototype blended into the
    forget class's row of the final layer (alpha 0.5); the attacked model's accuracy (%).
prototype attack (``proto_k{k}``, ``proto_early_k{k}`` one block earlier)
    nearest class mean by cosine from k samples per class; accuracy (%). No head is used.
forget-class MIA (``mia_forget_auc``)
    members are the forget classes' training samples, non-members their test samples: can an
    attack still tell seen from unseen samples of the class (ROC AUC, 0.5 is chance)?
relearn time (``relearn_steps_fresh``; ``relearn_steps`` from the forgotten model as it is)
    fine-tune steps on 10 labelled samples per class until the forget classes' accuracy reaches
    90 % of the original's, from the attacker's best start: the forget classes' rows of the
    final layer re-initialised (after the Anamnesis Index of Chundawat et al.).
U-LiRA (report ``ulira``, with ``shadows``)
    class-level U-LiRA against shadow forgets and shadow retrains (:mod:`obliviate.ulira`).
agreement, JS divergence (``agree_forget``, ``agree_retain``, ``js_forget``, ``js_retain``)
    how often the argmax equals the reference's (%), and the mean Jensen-Shannon divergence of
    the softmax outputs (nats), beside the output-only forget's when the original is known.
the paper's RE (``relearn_err``) and MIA-efficacy (``mia_efficacy``)
    kept as the paper and SalUn define them, out of the verdict: RE retrains the head from the
    forgotten one, so it moves with how far the forget row was pushed; MIA-efficacy calls any
    model that misclassifies the class a non-member.

Depth is judged by signed gaps to the retrained reference inside two-sided bands
(:mod:`obliviate.bands`): a forget shallower than retraining and one beyond it both fail.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.attacks import (
    accuracy_on,
    block_features,
    features_of,
    forget_class_mia,
    knowledge_retention,
    relearn_steps_fresh,
    spotter_attack,
)
from obliviate.bands import steps_ratio, depth_verdict, signed_gaps
from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.metrics import (
    RelearnConfig,
    confidence_of,
    forget_error,
    mia_efficacy,
    relearn_probe,
)
from obliviate.models import Classifier
from obliviate.training import batched_eval, extract_features

FeatureFn = Callable[[torch.Tensor], torch.Tensor]
log = logging.getLogger(__name__)
#: the KR probe's L-BFGS budget: it stops earlier on its convergence rule, as it should
KR_MAX_ITER = 2000
#: its L2 penalty on standardised features: enough to make a separable fit converge
KR_L2 = 1e-3

#: (key of :meth:`Evidence.flat`, label, definition and direction) of every measure.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("forget_err", "FE %", "forget-class test error; higher is more forgotten"),
    ("kr_k10", "KR k=10 %", "a fresh linear head fitted on the frozen penultimate features of 10 "
     "training samples per class: its accuracy on the forget classes; in the verdict"),
    ("kr_k100", "KR k=100 %", "the same from 100 samples per class; in the verdict"),
    ("kr_all", "KR all %", "the same from the whole training split (a retrained model's "
     "features hold the class too; not in the verdict)"),
    ("kr_early_k10", "KR k=10, block earlier %", "KR k=10 on the pooled output of the block "
     "before the penultimate features"),
    ("spotter", "Spotter %", "the prototypical relearning attack (5 samples' prototype blended "
     "into the forget row, alpha 0.5); in the verdict"),
    ("proto_k1", "prototype k=1 %", "nearest-prototype accuracy from 1 sample per class"),
    ("proto_k10", "prototype k=10 %", "the same from 10 samples per class; in the verdict"),
    ("proto_early_k1", "prototype k=1, block earlier %", "the same one block before the "
     "penultimate features"),
    ("proto_early_k10", "prototype k=10, block earlier %", "the same one block earlier"),
    ("mia_forget_auc", "forget MIA AUC", "an attack telling the forget classes' training "
     "samples from their test samples (0.5: chance); in the verdict"),
    ("relearn_steps_fresh", "relearn steps, fresh", "fine-tune steps on 10 samples per "
     "class, the forget rows re-initialised, to regain 90 % of the original's forget-class "
     "accuracy (- : not within the budget); in the verdict"),
    ("relearn_steps", "relearn steps, as is", "the same from the forgotten model as it is"),
    ("relearn_err", "paper's RE %", "the paper's metric: forget-class error after retraining the "
     "head, from the forgotten one, on frozen features; not in the verdict"),
    ("mia_efficacy", "MIA-efficacy %", "SalUn's: forget training samples an attack trained on "
     "retain vs test calls non-members (any model that misclassifies the class scores high); not "
     "in the verdict"),
)  # fmt: skip


@dataclass(frozen=True)
class EvidenceConfig:
    """Settings of the evidence measures (all defaults as documented in the module).

    Attributes:
        shots: samples per class of the prototype attack (one column per value).
        relearn: the relearn probe (``steps=0`` skips RE).
        relearn_shots: labelled samples per class of the relearn-time fine-tune.
        relearn_lr: its SGD learning rate (momentum 0.9, full batch of ``relearn_shots * C``).
        relearn_max_steps: its step budget (0 skips relearn time).
        relearn_target: the share of the original's forget-class accuracy to reach.
        mia: run the membership attacks (MIA-efficacy and the forget-class MIA).
        seed: every draw of the attacks.
        kr_shots: samples per class of the KR probes (``None``: the whole training split, which
            costs minutes on Fashion-MNIST and finds the class in a retrained model too).
        kr_blocks: also probe the output of every earlier block (KR k=10).
        spotter_shots, spotter_alpha: the Spotter attack's samples per class and blend.
        shadows: shadow models per side for class-level U-LiRA (0 skips it).
    """

    shots: tuple[int, ...] = (1, 10)
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    relearn_shots: int = 10
    relearn_lr: float = 0.01
    relearn_max_steps: int = 300
    relearn_target: float = 0.9
    mia: bool = True
    seed: int = 0
    kr_shots: tuple[int | None, ...] = (10, 100)
    kr_blocks: bool = True
    spotter_shots: int = 5
    spotter_alpha: float = 0.5
    shadows: int = 0

    def __post_init__(self) -> None:
        if not self.shots or any(int(k) < 1 for k in self.shots):
            raise ObliviateError(f"prototype shots must be >= 1, got {self.shots}")
        if self.relearn_shots < 1 or self.relearn_max_steps < 0:
            raise ObliviateError("relearn shots must be >= 1 and relearn steps >= 0")
        if not 0.0 < self.relearn_target <= 1.0:
            raise ObliviateError(f"relearn target must lie in (0, 1], got {self.relearn_target}")
        if not (self.relearn_lr > 0 and math.isfinite(self.relearn_lr)):
            raise ObliviateError(f"relearn lr must be a positive number, got {self.relearn_lr}")
        if any(k is not None and int(k) < 1 for k in self.kr_shots) or self.spotter_shots < 1:
            raise ObliviateError("KR and Spotter samples per class must be >= 1")
        if not 0.0 <= self.spotter_alpha <= 1.0:
            raise ObliviateError(f"the Spotter blend must lie in [0, 1], got {self.spotter_alpha}")
        if self.shadows < 0 or 0 < self.shadows < 3:
            raise ObliviateError(f"U-LiRA needs at least 3 shadows per side (0 skips it), got "
                                 f"{self.shadows}")  # fmt: skip


def earlier_features(model: Classifier) -> FeatureFn | None:
    """The output of every block but the last (one block before the penultimate features), or
    ``None`` when the model lists fewer than two blocks (its input would be the raw data)."""
    try:
        blocks = model.blocks()
    except ObliviateError:
        return None
    if len(blocks) < 2:
        return None
    body = nn.Sequential(*blocks[:-1])
    return lambda x: body(x).flatten(1)


def prototype_accuracy(
    model: Classifier,
    train: Split,
    test: Split,
    classes: Sequence[int],
    *,
    shots: int = 10,
    seed: int = 0,
    features: FeatureFn | None = None,
) -> float:
    """Prototype attack (%): nearest class mean by cosine, from ``shots`` training samples of
    every class, on the test samples of ``classes`` (see the module doc)."""
    fn = features or model.features
    subset = train.per_class_subset(shots, seed=seed)
    train_feats = nn.functional.normalize(features_of(fn, model, subset.x), dim=1)
    labels = sorted(torch.unique(subset.y).tolist())
    protos = torch.stack([train_feats[subset.y == c].mean(0) for c in labels])
    protos = nn.functional.normalize(protos, dim=1)
    target = test.of_classes(list(classes))
    if len(target) == 0:
        raise ObliviateError(f"the test split has no samples of classes {list(classes)}")
    feats = nn.functional.normalize(features_of(fn, model, target.x), dim=1)
    pred = torch.tensor(labels)[(feats @ protos.T).argmax(1)]
    return 100.0 * float((pred == target.y).float().mean())


def relearn_steps(
    model: Classifier,
    train: Split,
    test: Split,
    classes: Sequence[int],
    goal: float,
    *,
    shots: int = 10,
    lr: float = 0.01,
    max_steps: int = 300,
    seed: int = 0,
) -> int | None:
    """Full-batch SGD steps (momentum 0.9) fine-tuning a copy of the whole ``model`` on
    ``shots`` training samples per class until its accuracy (%) on the test samples of
    ``classes`` reaches ``goal``; 0 if it starts there, ``None`` if not within ``max_steps``
    (:func:`obliviate.attacks.relearn_steps_fresh` from the model as it is)."""
    return relearn_steps_fresh(model, train, test, classes, goal, start="as-is", shots=shots,
                               lr=lr, max_steps=max_steps, seed=seed)  # fmt: skip


@torch.no_grad()
def output_agreement(reference: nn.Module, model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """``(agreement %, mean Jensen-Shannon divergence in nats)`` of two models' outputs on ``x``."""
    if len(x) == 0:
        return math.nan, math.nan
    p = torch.cat(batched_eval(lambda b: reference(b).log_softmax(1).cpu(), reference, x, 1024))
    q = torch.cat(batched_eval(lambda b: model(b).log_softmax(1).cpu(), model, x, 1024))
    agree = 100.0 * float((p.argmax(1) == q.argmax(1)).float().mean())
    m = torch.logsumexp(torch.stack([p, q]), 0) - math.log(2.0)
    js = 0.5 * (p.exp() * (p - m)).sum(1) + 0.5 * (q.exp() * (q - m)).sum(1)
    return agree, float(js.clamp_min(0).mean())


@dataclass(frozen=True)
class Evidence:
    """The measures of one model (see the module doc); ``None`` where a measure was skipped."""

    forget_classes: list[int]
    proto: dict[int, float]
    proto_early: dict[int, float] | None
    relearn_err: float | None
    relearn_steps: int | None
    relearn_goal: float | None
    mia_efficacy: float | None
    forget_err: float
    kr: dict[str, dict[str, float]] = field(default_factory=dict)
    spotter: float | None = None
    mia_forget: dict[str, float] | None = None
    relearn_steps_fresh: int | None = None
    relearn_fresh_measured: bool = False

    def flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"proto_k{k}": v for k, v in self.proto.items()}
        for k, v in (self.proto_early or {}).items():
            out[f"proto_early_k{k}"] = v
        early = next((b for b in self.kr if b != "penultimate"), None)
        for block, by_shots in self.kr.items():
            # the block just before the penultimate features also goes by "early"
            prefixes = ["kr"] if block == "penultimate" else [f"kr_{block}"]
            prefixes += ["kr_early"] if block == early else []
            for prefix in prefixes:
                out.update({f"{prefix}_{'all' if k == 'all' else f'k{k}'}": v
                            for k, v in by_shots.items()})  # fmt: skip
        out.update(relearn_err=self.relearn_err, relearn_steps=self.relearn_steps,
                   mia_efficacy=self.mia_efficacy, forget_err=self.forget_err,
                   spotter=self.spotter,
                   mia_forget_auc=self.mia_forget["auc"] if self.mia_forget else None)  # fmt: skip
        if self.relearn_fresh_measured:
            out["relearn_steps_fresh"] = self.relearn_steps_fresh
        return out


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _outputs(model: Classifier, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(penultimate features, logits)`` of ``x`` from one pass of the network (eval mode,
    batched); the logits from the features when the model's forward is its head on them."""
    feats = extract_features(model, x)
    with torch.no_grad():
        if type(model).forward is Classifier.forward:
            parts = [model.classifier(feats[i : i + 1024]) for i in range(0, len(feats), 1024)]
        else:  # a forward of its own (a LIRF recover net): its outputs as it gives them
            parts = batched_eval(model, model, x, 1024)
    return feats, (torch.cat(parts) if parts else torch.empty(0, 0))


def measure(
    model: Classifier,
    data: Dataset,
    classes: Sequence[int],
    config: EvidenceConfig,
    *,
    relearn_goal: float | None,
) -> Evidence:
    """Every measure of one model that needs no reference."""
    classes = sorted(int(c) for c in classes)
    model = model.eval()
    proto = {int(k): prototype_accuracy(model, data.train, data.test, classes, shots=int(k),
                                        seed=config.seed) for k in config.shots}  # fmt: skip
    early_fn = earlier_features(model)
    proto_early = None
    if early_fn is not None:
        proto_early = {int(k): prototype_accuracy(model, data.train, data.test, classes,
                                                  shots=int(k), seed=config.seed,
                                                  features=early_fn)
                       for k in config.shots}  # fmt: skip
    # each split through the network once: the paper's RE probe, the MIA and FE share it
    train_feats = train_logits = None
    if config.relearn.steps > 0 or config.mia:
        train_feats, train_logits = _outputs(model, data.train.x)
    test_feats, test_logits = _outputs(model, data.test.x)
    relearn_err = None
    if config.relearn.steps > 0:
        probed = relearn_probe(model, data.train, config.relearn, features=train_feats)
        with torch.no_grad():  # the probe's features are the model's: only its head was fitted
            probed_pred = probed.classifier(test_feats.to(_device(probed))).argmax(1).cpu()
        relearn_err = forget_error(probed_pred, data.test.y, classes)
    steps = None
    if config.relearn_max_steps > 0 and relearn_goal is not None:
        steps = relearn_steps(model, data.train, data.test, classes, relearn_goal,
                              shots=config.relearn_shots, lr=config.relearn_lr,
                              max_steps=config.relearn_max_steps, seed=config.seed)  # fmt: skip
    mia = mia_forget = None
    if config.mia:
        is_forget = torch.isin(data.train.y, torch.tensor(classes, dtype=data.train.y.dtype))
        members = confidence_of(train_logits[~is_forget], data.train.y[~is_forget])
        nonmembers = confidence_of(test_logits, data.test.y)
        targets = confidence_of(train_logits[is_forget], data.train.y[is_forget])
        mia = mia_efficacy(members, nonmembers, targets, seed=config.seed)
        mia_forget = forget_class_mia(model, data.train, data.test, classes, seed=config.seed)
    kr: dict[str, dict[str, float]] = {}
    probed = block_features(model)
    for i, (block, fn) in enumerate(probed):
        if i > 0 and not config.kr_blocks:
            break
        shots_here = config.kr_shots if i == 0 else tuple(k for k in config.kr_shots if k == 10)
        kr[block] = {}
        for k in shots_here:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", RuntimeWarning)
                kr[block]["all" if k is None else str(k)] = knowledge_retention(
                    model, data.train, data.test, classes, shots=k, features=fn,
                    seed=config.seed, max_iter=KR_MAX_ITER, l2=KR_L2)  # fmt: skip
            if any(issubclass(w.category, RuntimeWarning) for w in caught):
                log.warning("the KR probe (%s, k=%s) stopped after %d L-BFGS iterations before its "
                            "loss converged; its accuracy is a lower bound", block,
                            "all" if k is None else k, KR_MAX_ITER)  # fmt: skip
    spotter = spotter_attack(model, data.train, data.test, classes, shots=config.spotter_shots,
                             alpha=config.spotter_alpha, seed=config.seed)  # fmt: skip
    fresh, fresh_measured = None, False
    if config.relearn_max_steps > 0 and relearn_goal is not None:
        fresh_measured = True
        fresh = relearn_steps_fresh(model, data.train, data.test, classes, relearn_goal,
                                    shots=config.relearn_shots, lr=config.relearn_lr,
                                    max_steps=config.relearn_max_steps, seed=config.seed)  # fmt: skip
    fe = forget_error(test_logits.argmax(1).cpu(), data.test.y, classes)
    return Evidence(classes, proto, proto_early, relearn_err, steps, relearn_goal, mia, fe,
                    kr=kr, spotter=spotter, mia_forget=mia_forget, relearn_steps_fresh=fresh,
                    relearn_fresh_measured=fresh_measured)  # fmt: skip


@dataclass
class EvidenceReport:
    """A model's evidence beside its reference's, with the gaps that judge depth.

    Attributes:
        forget_classes: the classes judged.
        reference_kind: ``"retrained"`` (a model retrained without the classes) or
            ``"original"`` (no retrained model: gaps are to the model before forgetting).
        reference_source: where the reference came from, in words (``"retrained, cached"``,
            ``"retrained now, 3 epochs"``, ``"given"``, ``"the original"``), when known.
        model, reference: the measures of each.
        original: the original model's measures, when it was given.
        agreement: agreement and JS divergence to the reference on forget and retain samples.
        gaps: the signed gaps the verdict judges (:func:`obliviate.bands.signed_gaps`: model
            minus reference, ``relearn_steps_fresh`` a ratio), and today's ``proto_gap``,
            ``relearn_gap`` (the paper's RE) and ``relearn_steps_ratio``.
        second_reference: a model retrained with another seed, measured like the model: what
            "as retraining" looks like on each measure.
        output_only_agreement: the output-only forget's agreement and JS to the reference (the
            closeness a deep forget must keep).
        ulira: class-level U-LiRA against shadows (:func:`obliviate.ulira.ulira`).
    """

    forget_classes: list[int]
    reference_kind: str
    model: Evidence
    reference: Evidence
    original: Evidence | None
    agreement: dict[str, float]
    gaps: dict[str, float | None]
    settings: dict[str, Any]
    reference_source: str | None = None
    second_reference: Evidence | None = None
    second_gaps: dict[str, float] | None = None
    output_only_agreement: dict[str, float] | None = None
    ulira: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "forget_classes": self.forget_classes,
            "reference_kind": self.reference_kind,
            "reference_source": self.reference_source,
            "verdict": depth_verdict(self),
            "model": self.model.flat(),
            "reference": self.reference.flat(),
            "original": self.original.flat() if self.original is not None else None,
            "second_reference": (self.second_reference.flat()
                                 if self.second_reference is not None else None),  # fmt: skip
            "second_gaps": self.second_gaps,
            "agreement": self.agreement,
            "output_only_agreement": self.output_only_agreement,
            "ulira": self.ulira,
            "gaps": self.gaps,
            "settings": self.settings,
        }

    def columns(self) -> dict[str, Any]:
        """The flat columns a benchmark row takes (prefixed ``ev_``)."""
        out = {f"ev_{k}": v for k, v in self.model.flat().items() if k != "forget_err"}
        out.update({f"ev_{k}": v for k, v in self.agreement.items()})
        out.update({f"ev_{k}": v for k, v in self.gaps.items()})
        out["ev_reference"] = self.reference_kind
        if self.ulira is not None:
            out["ev_ulira_auc"] = self.ulira["auc"]
        out["ev_verdict"] = depth_verdict(self)["depth"]
        return out


def gather_evidence(
    model: Classifier,
    reference: Classifier,
    data: Dataset,
    classes: Sequence[int],
    *,
    reference_kind: str = "retrained",
    original: Classifier | None = None,
    config: EvidenceConfig | None = None,
    reference_measures: Evidence | None = None,
    second_reference: Classifier | None = None,
    output_only: Classifier | None = None,
    shadows: tuple[list[Classifier], list[Classifier]] | None = None,
) -> EvidenceReport:
    """Measure ``model`` and ``reference`` on ``data`` for the forgotten ``classes``.

    The relearn-time goal is ``config.relearn_target`` times the forget-class test accuracy
    of the original model: ``original``, or ``reference`` when it is the original
    (``reference_kind="original"``). Without an original, relearn time is skipped (a
    retrained model's accuracy on the classes it never saw is no goal).
    ``reference_measures``: the reference's :class:`Evidence` from an earlier call with the
    same data, classes, config and original (a benchmark measures it once per seed).
    ``second_reference``: a model retrained with another seed, measured and given its own gaps.
    ``output_only``: the output-only forget of the original, whose agreement with the
    reference bounds the model's. ``shadows``: ``(forgotten shadows, retrained shadows)`` for
    class-level U-LiRA.
    """
    config = config or EvidenceConfig()
    classes = sorted(int(c) for c in classes)
    if reference_kind not in ("retrained", "original"):
        raise ObliviateError(f"reference kind must be 'retrained' or 'original', got "
                             f"{reference_kind!r}")  # fmt: skip
    data.check_classes(classes)
    source = original if original is not None else (
        reference if reference_kind == "original" else None)  # fmt: skip
    goal = None
    if source is not None:
        goal = config.relearn_target * accuracy_on(source.eval(), data.test.of_classes(classes))
    mine = measure(model, data, classes, config, relearn_goal=goal)
    ref = reference_measures or measure(reference, data, classes, config, relearn_goal=goal)
    orig = None
    if original is not None and original is not reference and reference_measures is None:
        orig = measure(original, data, classes, config, relearn_goal=goal)
    forget_x = data.test.of_classes(classes).x
    retain_x = data.test.without_classes(classes).x
    agree_f, js_f = output_agreement(reference, model, forget_x)
    agree_r, js_r = output_agreement(reference, model, retain_x)
    k = 10 if 10 in mine.proto else max(mine.proto)
    gaps: dict[str, float | None] = {"proto_gap": mine.proto[k] - ref.proto[k]}
    gaps["relearn_gap"] = (mine.relearn_err - ref.relearn_err
                           if mine.relearn_err is not None and ref.relearn_err is not None
                           else None)  # fmt: skip
    gaps["relearn_steps_ratio"] = (steps_ratio(mine.relearn_steps, ref.relearn_steps,
                                          config.relearn_max_steps)
                                   if goal is not None and config.relearn_max_steps > 0
                                   else None)  # fmt: skip
    gaps.update(signed_gaps(mine.flat(), ref.flat(), config.relearn_max_steps))
    second = second_gaps = None
    if second_reference is not None:
        second = measure(second_reference, data, classes, config, relearn_goal=goal)
        second_gaps = signed_gaps(second.flat(), ref.flat(), config.relearn_max_steps)
    baseline = None
    if output_only is not None:
        agree, js = output_agreement(reference, output_only, forget_x)
        baseline = {"agree_forget": agree, "js_forget": js}
    ulira_result = None
    if shadows is not None:
        from obliviate.ulira import ulira

        ulira_result = ulira(model, shadows[0], shadows[1], data, classes)
        # the second variant also sees the penultimate features; the verdict reads both
        ulira_result["features_variant"] = ulira(model, shadows[0], shadows[1], data, classes,
                                                 features=True)  # fmt: skip
    settings = asdict(config)
    settings["proto_gap_shots"] = k
    return EvidenceReport(
        forget_classes=classes, reference_kind=reference_kind, model=mine, reference=ref,
        original=orig,
        agreement={"agree_forget": agree_f, "agree_retain": agree_r, "js_forget": js_f,
                   "js_retain": js_r},
        gaps=gaps, settings=settings, second_reference=second, second_gaps=second_gaps,
        output_only_agreement=baseline, ulira=ulira_result,
    )  # fmt: skip


def plot_evidence(report: EvidenceReport, path: str | Path, *, title: str = "") -> Path:
    """A bar chart of the percentage measures of the model, its reference and the original
    (:func:`evidence_figure`), written to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = evidence_figure(report, title=title)
    path = Path(path)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def evidence_figure(report: EvidenceReport, *, title: str = ""):
    """The figure of :func:`plot_evidence`; its legend stands right of the axes, beside the
    bars, never over them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, _, _ in MEASURES
            if k not in ("relearn_steps", "relearn_steps_fresh", "mia_forget_auc")]
    columns = {"model": report.model.flat(), report.reference_kind: report.reference.flat()}
    if report.original is not None:
        columns["original"] = report.original.flat()
    keys = [k for k in keys if any(c.get(k) is not None for c in columns.values())]
    labels = {k: label for k, label, _ in MEASURES}
    fig, ax = plt.subplots(figsize=(1.3 * len(keys) + 3.5, 3.6))  # + the legend's column
    width = 0.8 / len(columns)
    for i, (name, values) in enumerate(columns.items()):
        xs = [j + i * width for j in range(len(keys))]
        ax.bar(xs, [values.get(k) or 0.0 for k in keys], width, label=name)
    ax.set_xticks([j + width * (len(columns) - 1) / 2 for j in range(len(keys))])
    ax.set_xticklabels([labels[k] for k in keys], rotation=25, ha="right", fontsize=8)
    ax.set_ylabel("%")
    ax.set_title(f"{title} forget classes {report.forget_classes}".strip(), fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig
