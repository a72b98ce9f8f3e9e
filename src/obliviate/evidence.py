"""Evidence that a forget is deep: what the weights still reveal, measured against retraining.

A forget that only lowers the forget classes' outputs leaves their features intact: whoever
holds the weights and a few labelled samples gets the class back. This module measures that,
on a dataset's test split, for any forgotten model and a *reference*: ideally a model retrained
without the classes (the gold standard), else the original model (then the gaps say how far the
forget moved from where it started, not how close it came to retraining).

Attacks and measures (the attacker's samples are training samples, drawn with a fixed seed):

prototype attack (``proto_k{k}``, and ``proto_early_k{k}`` one block earlier)
    ``k`` training samples per class (forget classes included), their normalised features
    averaged into one prototype per class; each forget-class test sample goes to the nearest
    prototype by cosine. Accuracy (%) on the forget classes' test samples. The classifier
    head is not used, so this reads what the features still hold.
relearn probe (``relearn_err``)
    the paper's RE: the head retrained on frozen features of the whole training set; error (%)
    on the forget classes' test samples (see :func:`obliviate.metrics.relearn_probe`).
relearn time (``relearn_steps``), after the Anamnesis Index of Chundawat et al. (2023)
    fine-tune the whole model on ``k`` labelled training samples per class until the forget
    classes' test accuracy reaches ``target`` times the original model's; the number of SGD
    steps (``None``: not reached within ``max_steps``). ``relearn_steps_ratio`` is the
    method's steps + 1 over the reference's + 1 (>= 1: no faster to relearn than from
    retraining).
agreement, JS divergence (``agree_forget``, ``agree_retain``, ``js_forget``, ``js_retain``)
    on the forget and retain classes' test samples: how often the argmax equals the
    reference's (%), and the mean Jensen-Shannon divergence of the softmax outputs (nats).
MIA (``mia_efficacy``)
    the membership attack of :func:`obliviate.metrics.mia_efficacy` on the forget training
    samples.

Depth per request is judged by the gaps to the reference: ``proto_gap`` (prototype accuracy at
``k = 10`` minus the reference's: lower is deeper) and ``relearn_gap`` (RE minus the
reference's: higher is deeper); :func:`depth_verdict` sums them up in one word and the
measures on which the model matches the retrained model, or the original.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError
from obliviate.metrics import (
    RelearnConfig,
    forget_error,
    mia_efficacy,
    predict,
    relearn_probe,
    true_class_confidence,
)
from obliviate.models import Classifier
from obliviate.training import batched_eval

FeatureFn = Callable[[torch.Tensor], torch.Tensor]

#: (key of :meth:`Evidence.flat`, label, definition and direction) of every measure.
MEASURES: tuple[tuple[str, str, str], ...] = (
    ("forget_err", "FE %", "forget-class test error; higher is more forgotten"),
    ("proto_k1", "prototype k=1 %", "nearest-prototype accuracy on forget-class test samples "
     "from 1 sample per class; lower is deeper"),
    ("proto_k10", "prototype k=10 %", "the same from 10 samples per class; lower is deeper"),
    ("proto_early_k1", "prototype k=1, block earlier %", "the same one block before the "
     "penultimate features"),
    ("proto_early_k10", "prototype k=10, block earlier %", "the same one block earlier"),
    ("relearn_err", "RE %", "forget-class test error after retraining the head on frozen "
     "features; higher is deeper"),
    ("relearn_steps", "relearn steps", "fine-tune steps on 10 samples per class to regain 90 % "
     "of the original's forget-class accuracy (- : not within the budget); higher is deeper"),
    ("mia_efficacy", "MIA-efficacy %", "forget training samples a membership attack calls "
     "non-members; higher looks more unseen"),
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
        mia: run the membership attack.
        seed: every draw of the attacks.
    """

    shots: tuple[int, ...] = (1, 10)
    relearn: RelearnConfig = field(default_factory=RelearnConfig)
    relearn_shots: int = 10
    relearn_lr: float = 0.01
    relearn_max_steps: int = 300
    relearn_target: float = 0.9
    mia: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.shots or any(int(k) < 1 for k in self.shots):
            raise ObliviateError(f"prototype shots must be >= 1, got {self.shots}")
        if self.relearn_shots < 1 or self.relearn_max_steps < 0:
            raise ObliviateError("relearn shots must be >= 1 and relearn steps >= 0")
        if not 0.0 < self.relearn_target <= 1.0:
            raise ObliviateError(f"relearn target must lie in (0, 1], got {self.relearn_target}")
        if not (self.relearn_lr > 0 and math.isfinite(self.relearn_lr)):
            raise ObliviateError(f"relearn lr must be a positive number, got {self.relearn_lr}")


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


def _features(fn: FeatureFn, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return torch.cat(batched_eval(lambda b: fn(b).float().cpu(), model, x, 1024))


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
    train_feats = nn.functional.normalize(_features(fn, model, subset.x), dim=1)
    labels = sorted(torch.unique(subset.y).tolist())
    protos = torch.stack([train_feats[subset.y == c].mean(0) for c in labels])
    protos = nn.functional.normalize(protos, dim=1)
    target = test.of_classes(list(classes))
    if len(target) == 0:
        raise ObliviateError(f"the test split has no samples of classes {list(classes)}")
    feats = nn.functional.normalize(_features(fn, model, target.x), dim=1)
    pred = torch.tensor(labels)[(feats @ protos.T).argmax(1)]
    return 100.0 * float((pred == target.y).float().mean())


def _class_accuracy(model: nn.Module, split: Split) -> float:
    return 100.0 * float((predict(model, split.x) == split.y).float().mean())


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
    ``classes`` reaches ``goal``; 0 if it starts there, ``None`` if not within ``max_steps``."""
    target = test.of_classes(list(classes))
    subset = train.per_class_subset(shots, seed=seed)
    net = copy.deepcopy(model)
    device = next(net.parameters()).device
    x, y = subset.x.to(device), subset.y.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    for step in range(max_steps + 1):
        if _class_accuracy(net, target) >= goal:
            return step
        if step == max_steps:
            break
        net.train()
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return None


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

    def flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {f"proto_k{k}": v for k, v in self.proto.items()}
        for k, v in (self.proto_early or {}).items():
            out[f"proto_early_k{k}"] = v
        out.update(relearn_err=self.relearn_err, relearn_steps=self.relearn_steps,
                   mia_efficacy=self.mia_efficacy, forget_err=self.forget_err)  # fmt: skip
        return out


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
    relearn_err = None
    if config.relearn.steps > 0:
        probed = relearn_probe(model, data.train, config.relearn)
        relearn_err = forget_error(predict(probed, data.test.x), data.test.y, classes)
    steps = None
    if config.relearn_max_steps > 0 and relearn_goal is not None:
        steps = relearn_steps(model, data.train, data.test, classes, relearn_goal,
                              shots=config.relearn_shots, lr=config.relearn_lr,
                              max_steps=config.relearn_max_steps, seed=config.seed)  # fmt: skip
    mia = None
    if config.mia:
        members = true_class_confidence(model, data.train.without_classes(classes))
        nonmembers = true_class_confidence(model, data.test)
        targets = true_class_confidence(model, data.train.of_classes(classes))
        mia = mia_efficacy(members, nonmembers, targets, seed=config.seed)
    fe = forget_error(predict(model, data.test.x), data.test.y, classes)
    return Evidence(classes, proto, proto_early, relearn_err, steps, relearn_goal, mia, fe)


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
        gaps: ``proto_gap`` (lower is deeper), ``relearn_gap`` (higher is deeper),
            ``relearn_steps_ratio`` (>= 1: no faster to relearn than the reference).
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "forget_classes": self.forget_classes,
            "reference_kind": self.reference_kind,
            "reference_source": self.reference_source,
            "verdict": depth_verdict(self),
            "model": self.model.flat(),
            "reference": self.reference.flat(),
            "original": self.original.flat() if self.original is not None else None,
            "agreement": self.agreement,
            "gaps": self.gaps,
            "settings": self.settings,
        }

    def columns(self) -> dict[str, Any]:
        """The flat columns a benchmark row takes (prefixed ``ev_``)."""
        out = {f"ev_{k}": v for k, v in self.model.flat().items() if k != "forget_err"}
        out.update({f"ev_{k}": v for k, v in self.agreement.items()})
        out.update({f"ev_{k}": v for k, v in self.gaps.items()})
        out["ev_reference"] = self.reference_kind
        return out


def _ratio(mine: int | None, ref: int | None, cap: int) -> float:
    """``(steps + 1) / (reference steps + 1)``; a budget not reached counts as ``cap + 1``
    steps (the + 1 keeps a model that starts at the goal finite)."""
    a = cap + 1 if mine is None else mine
    b = cap + 1 if ref is None else ref
    return (a + 1) / (b + 1)


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
) -> EvidenceReport:
    """Measure ``model`` and ``reference`` on ``data`` for the forgotten ``classes``.

    The relearn-time goal is ``config.relearn_target`` times the forget-class test accuracy
    of the original model: ``original``, or ``reference`` when it is the original
    (``reference_kind="original"``). Without an original, relearn time is skipped (a
    retrained model's accuracy on the classes it never saw is no goal).
    ``reference_measures``: the reference's :class:`Evidence` from an earlier call with the
    same data, classes, config and original (a benchmark measures it once per seed).
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
        goal = config.relearn_target * _class_accuracy(source.eval(), data.test.of_classes(classes))
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
    gaps["relearn_steps_ratio"] = (_ratio(mine.relearn_steps, ref.relearn_steps,
                                          config.relearn_max_steps)
                                   if goal is not None and config.relearn_max_steps > 0
                                   else None)  # fmt: skip
    settings = asdict(config)
    settings["proto_gap_shots"] = k
    return EvidenceReport(
        forget_classes=classes, reference_kind=reference_kind, model=mine, reference=ref,
        original=orig,
        agreement={"agree_forget": agree_f, "agree_retain": agree_r, "js_forget": js_f,
                   "js_retain": js_r},
        gaps=gaps, settings=settings,
    )  # fmt: skip


#: How near the model must come to another model on one measure, per request, to count as
#: "as hard to recover" as the retrained reference or "as recoverable" as the original: the
#: per-request bounds of the depth goals (docs/results/depth.md: prototype gap at most +5
#: points, RE gap at least -3), and ours for relearn time, a factor 1.25 of the steps.
NEAR = {"proto": 5.0, "relearn_err": 3.0, "relearn_steps": 1.25}
#: The names of the verdict's measures.
VERDICT_MEASURES = {"proto": "prototype k={k}", "relearn_err": "RE", "relearn_steps": "relearn time"}


def depth_verdict(report: EvidenceReport) -> dict[str, Any]:
    """The report's verdict: on which measures the model is as hard to recover as a model
    retrained without the classes, and on which as recoverable as the original (within
    :data:`NEAR`).

    Returns:
        ``{"depth", "measures", "as_retrained", "as_original"}``: ``depth`` is ``"deep"`` when
        the reference is retrained and the model matches it on every measure, ``"output
        only"`` when the original is known and the model is as recoverable as it on every
        measure, else ``"partial"`` or ``"not deep"`` (matching the retrained model on some
        measures or none), ``"not told apart"`` when the model matches both the retrained
        model and the original (they are as recoverable as each other on these measures), or
        ``"not shown deep"`` without a retrained reference;
        ``measures`` lists the measures compared, the other two those that matched.
    """
    mine = report.model
    original = report.original or (report.reference if report.reference_kind == "original"
                                   else None)  # fmt: skip
    retrained = report.reference if report.reference_kind == "retrained" else None
    k = report.settings.get("proto_gap_shots", 10)
    cap = report.settings.get("relearn_max_steps", 0)
    measures = ["proto"]
    if mine.relearn_err is not None and all(o is None or o.relearn_err is not None
                                            for o in (retrained, original)):  # fmt: skip
        measures.append("relearn_err")
    if report.gaps.get("relearn_steps_ratio") is not None:
        measures.append("relearn_steps")

    def harder_or_as_hard(other: Evidence, measure: str) -> bool:  # than ``other``, within NEAR
        if measure == "proto":
            return mine.proto[k] <= other.proto[k] + NEAR["proto"]
        if measure == "relearn_err":
            return mine.relearn_err >= other.relearn_err - NEAR["relearn_err"]
        return _ratio(mine.relearn_steps, other.relearn_steps, cap) >= 1 / NEAR["relearn_steps"]

    def easier_or_as_easy(other: Evidence, measure: str) -> bool:  # to recover than ``other``
        if measure == "proto":
            return mine.proto[k] >= other.proto[k] - NEAR["proto"]
        if measure == "relearn_err":
            return mine.relearn_err <= other.relearn_err + NEAR["relearn_err"]
        return _ratio(mine.relearn_steps, other.relearn_steps, cap) <= NEAR["relearn_steps"]

    as_retrained = [m for m in measures if retrained is not None and harder_or_as_hard(retrained, m)]
    as_original = [m for m in measures if original is not None and easier_or_as_easy(original, m)]
    if (retrained is not None and len(as_retrained) == len(measures) and original is not None
            and len(as_original) == len(measures)):  # fmt: skip
        depth = "not told apart"  # the reference itself is as recoverable as the original
    elif retrained is not None and len(as_retrained) == len(measures):
        depth = "deep"
    elif original is not None and len(as_original) == len(measures):
        depth = "output only"
    elif retrained is not None:
        depth = "partial" if as_retrained else "not deep"
    else:
        depth = "not shown deep"
    names = {m: VERDICT_MEASURES[m].format(k=k) for m in measures}
    return {"depth": depth, "measures": [names[m] for m in measures],
            "as_retrained": [names[m] for m in as_retrained],
            "as_original": [names[m] for m in as_original]}  # fmt: skip


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

    keys = [k for k, _, _ in MEASURES if k not in ("relearn_steps",)]
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
