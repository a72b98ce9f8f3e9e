"""The calibrated forget step: a Fisher-weighted lowering of the forget classes' classifier rows
whose strength is solved per request, and the checks that verify it.

Everything here works on the penultimate features ``h`` and the classifier ``z = W h + b`` of a
:class:`~obliviate.models.Classifier`. The direction lowers each forget row ``c`` by
``eta_hat_c = eta_c / max(eta_c)`` (weights) and ``1`` (bias), so at strength ``s`` the forget
logit of an input drops by ``s * (1 + eta_hat_c . h)`` and nothing else changes. Because that
is linear in ``s``, the smallest strength that puts an input ``margin`` nats below the best kept
class is a closed form (:func:`required_strength`): no search, no candidate models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from obliviate.fisher import FISHER_FLOOR
from obliviate.stats import TrainingStatistics


@dataclass
class HeadDirection:
    """How a unit of strength changes the classifier rows of the forget classes.

    Attributes:
        classes: the forget classes, in row order of ``weight``.
        weight: ``[len(classes), d]``, each row ``eta_c / max(eta_c)`` (in ``[0, 1]``).
        eta_max: ``max(eta_c)`` per class, for the record.
    """

    classes: list[int]
    weight: torch.Tensor
    eta_max: list[float]

    def drop(self, features: torch.Tensor, row: int) -> torch.Tensor:
        """Logit decrease per unit strength of forget class ``classes[row]`` on ``features``."""
        return 1.0 + features @ self.weight[row]


def head_direction(
    features: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    forget: list[int],
    retain: list[int],
) -> HeadDirection:
    """The Fisher ratio ``eta`` of the forget rows' weights, from the codes' features.

    A classifier row's per-sample gradient is ``(p_c - [y = c]) h``, so its diagonal Fisher is
    the mean of ``(p_c - [y = c])^2 h^2`` over the samples: over the forget classes' codes for
    ``f_F``, over the kept classes' codes for ``f_R`` (each sum starting at the authors'
    floor of 1e-16, as in :func:`obliviate.fisher.diagonal_fisher`).
    """
    prob = torch.softmax(logits.float(), dim=1)
    h2 = features.float().pow(2)
    is_forget = torch.isin(labels, torch.tensor(forget, device=labels.device))
    is_retain = torch.isin(labels, torch.tensor(retain, device=labels.device))
    rows, maxima = [], []
    for c in forget:
        g2 = (prob[:, c] - (labels == c).float()).pow(2)
        f_f = (FISHER_FLOOR + (g2[is_forget, None] * h2[is_forget]).sum(0)) / int(is_forget.sum())
        f_r = (FISHER_FLOOR + (g2[is_retain, None] * h2[is_retain]).sum(0)) / int(is_retain.sum())
        eta = torch.nan_to_num(f_f / f_r, nan=0.0, posinf=torch.finfo(torch.float32).max)
        peak = float(eta.max()) if eta.numel() else 0.0
        rows.append(eta / peak if peak > 0 else torch.zeros_like(eta))
        maxima.append(peak)
    return HeadDirection(list(forget), torch.stack(rows), maxima)


def required_strength(
    direction: HeadDirection,
    row: int,
    features: torch.Tensor,
    logits: torch.Tensor,
    retain: list[int],
    margin: float,
) -> float:
    """Smallest strength that puts every given input ``margin`` nats below its best kept class.

    ``features``/``logits`` are inputs of class ``direction.classes[row]``. Returns ``inf`` when
    some input cannot be pushed down by this direction (its logit would not drop).
    """
    if features.shape[0] == 0:
        return 0.0
    c = direction.classes[row]
    gap = logits[:, c] - logits[:, retain].max(dim=1).values + margin
    drop = direction.drop(features, row)
    needed = gap > 0
    if not bool(needed.any()):
        return 0.0
    if bool((drop[needed] <= 0).any()):
        return math.inf
    return float((gap[needed] / drop[needed]).max())


def statistics_strength(
    direction: HeadDirection, row: int, stats: TrainingStatistics, retain: list[int], margin: float
) -> tuple[float, float, float]:
    """``(strength, margin bound, guaranteed drop per unit)`` from the training statistics.

    Every training sample of the class sits at most ``bound`` nats above its best kept class;
    at strength ``s`` its logit drops by at least ``s * guaranteed`` with ``guaranteed = 1 +
    eta_hat . feature_min[c]`` (the bias, plus the least the weights take off on that class's
    samples). ``strength`` is ``inf`` when nothing is guaranteed (``guaranteed <= 0``).
    """
    c = direction.classes[row]
    bound = stats.retained_margin(c, retain)
    floor = stats.feature_min[c].to(direction.weight.device, direction.weight.dtype)
    guaranteed = 1.0 + float(direction.weight[row] @ floor)
    if bound + margin <= 0:
        return 0.0, bound, guaranteed
    if guaranteed <= 0:
        return math.inf, bound, guaranteed
    return (bound + margin) / guaranteed, bound, guaranteed


@torch.no_grad()
def apply_head(classifier: torch.nn.Linear, direction: HeadDirection, strength: float) -> None:
    """Lower the forget rows of ``classifier`` in place by ``strength`` along ``direction``."""
    weight = direction.weight.to(classifier.weight.device, classifier.weight.dtype)
    for row, c in enumerate(direction.classes):
        classifier.weight[c].sub_(weight[row], alpha=strength)
        if classifier.bias is not None:
            classifier.bias[c] -= strength


def forget_margins(logits: torch.Tensor, labels: torch.Tensor, retain: list[int]) -> torch.Tensor:
    """``z_y - max_{k in retain} z_k`` per sample (negative: classified as a kept class)."""
    own = logits.gather(1, labels[:, None]).squeeze(1)
    return own - logits[:, retain].max(dim=1).values


#: A data check's truncation oracle is "at chance" when its accuracy on the kept classes' samples
#: is below this multiple of chance (100 % / number of kept classes): the data's labels do not
#: mean what the model's outputs mean (other data, renamed or shuffled classes), so nothing
#: measured on them can vouch for a forget.
ORACLE_CHANCE_FACTOR = 1.5


#: the confidence of the one-sided bound on the kept classes' accuracy drop that a check set
#: (held-out samples, ``check_data``) verifies with
CHECK_CONFIDENCE = 0.95


def drop_upper_bound(harmed: int, samples: int, confidence: float = CHECK_CONFIDENCE) -> float:
    """A one-sided upper confidence bound (percent) on the kept classes' accuracy drop, from
    ``harmed`` of ``samples`` held-out samples that the truncation oracle got right and the
    forgotten model gets wrong.

    The drop is the rate of such samples minus the rate of the reverse, so it is at most the
    first; the bound is the exact (Clopper-Pearson) upper bound on that rate: the ``confidence``
    quantile of Beta(harmed + 1, samples - harmed), and 100 % when every sample was harmed.
    With none harmed it is ``100 (1 - (1 - confidence)^(1/samples))``: 300 samples bound the
    drop by 0.99 points at 95 %.
    """
    if samples < 1:
        raise ValueError("a drop bound needs at least one sample")
    if not 0 <= harmed <= samples:
        raise ValueError(f"harmed must lie in 0..{samples}, got {harmed}")
    if harmed == samples:
        return 100.0
    from scipy.stats import beta

    return 100.0 * float(beta.ppf(confidence, harmed + 1, samples - harmed))


def data_check(
    logits_forget: torch.Tensor | None,
    y_forget: torch.Tensor | None,
    logits_retain: torch.Tensor | None,
    y_retain: torch.Tensor | None,
    oracle_retain: torch.Tensor | None,
    retain: list[int],
    *,
    min_forget_error: float,
    max_retain_drop: float,
    held_out: bool = False,
) -> dict[str, float | bool | int | None]:
    """The goal measured on the data the caller gave (percentages).

    Forget error counts a forget sample as forgotten when its prediction is not its class.
    Retain accuracy is compared with ``oracle_retain`` (the unchanged model's predictions
    restricted to the kept classes, i.e. the truncation oracle) and may fall at most
    ``max_retain_drop`` points below it. A failed check says why, with its numbers, in
    ``reason`` (a refusal quotes it).

    With two or more kept classes, an oracle below ``ORACLE_CHANCE_FACTOR`` times chance
    (``100 / len(retain)`` %) fails the check whatever the forget did (``oracle_at_chance``,
    with the ``reason``): "no worse than the oracle" says nothing when the oracle itself
    guesses, and an oracle at chance means the data does not fit the model.

    ``held_out``: the retain samples are a check set (held-out samples, possibly few), and the
    kept classes pass only when the one-sided upper bound on their drop
    (:func:`drop_upper_bound`, at :data:`CHECK_CONFIDENCE`) is at most ``max_retain_drop``:
    the measured drop alone says little on a hundred samples. The result then also gives the
    measured ``retain_drop``, the ``harmed`` count, ``retain_drop_bound`` and its ``confidence``.
    """
    out: dict[str, float | bool | int | None] = {"passed": True}
    if logits_forget is not None and y_forget is not None and len(y_forget):
        error = 100.0 * float((logits_forget.argmax(1) != y_forget).float().mean())
        out.update(forget_samples=len(y_forget), forget_error=error,
                   forget_error_goal=min_forget_error)  # fmt: skip
        out["passed"] = out["passed"] and error >= min_forget_error
        if error < min_forget_error:
            out["reason"] = (f"forget error {error:.2f}% on {len(y_forget)} samples, below the "
                             f"goal {min_forget_error:g}%")  # fmt: skip
    if logits_retain is not None and y_retain is not None and len(y_retain):
        acc = 100.0 * float((logits_retain.argmax(1) == y_retain).float().mean())
        oracle = (
            100.0 * float((oracle_retain == y_retain).float().mean())
            if oracle_retain is not None else math.nan
        )  # fmt: skip
        chance = 100.0 / len(retain) if retain else math.nan
        at_chance = len(retain) >= 2 and oracle < ORACLE_CHANCE_FACTOR * 100.0 / len(retain)
        out.update(retain_samples=len(y_retain), retain_accuracy=acc, oracle_retain_accuracy=oracle,
                   max_retain_drop=max_retain_drop, oracle_at_chance=at_chance)  # fmt: skip
        if held_out and oracle_retain is not None:
            pred = logits_retain.argmax(1)
            harmed = int(((oracle_retain == y_retain) & (pred != y_retain)).sum())
            bound = drop_upper_bound(harmed, len(y_retain))
            out.update(retain_drop=oracle - acc, harmed=harmed, retain_drop_bound=bound,
                       confidence=CHECK_CONFIDENCE)  # fmt: skip
            fine = bound <= max_retain_drop
            harm = (f"on {len(y_retain)} held-out samples the kept classes' drop is at most "
                    f"{bound:.2f} points at {CHECK_CONFIDENCE:.0%} confidence ({harmed} harmed; "
                    f"measured {oracle - acc:+.2f}), more than {max_retain_drop:g} allowed; a "
                    "larger check set tightens the bound")  # fmt: skip
        else:
            fine = acc >= oracle - max_retain_drop
            harm = (f"retain accuracy {acc:.2f}% vs oracle {oracle:.2f}%, more than "
                    f"{max_retain_drop:g} point(s) below")  # fmt: skip
        out["passed"] = out["passed"] and fine and not at_chance
        if not fine:
            out["reason"] = f"{out['reason']}; {harm}" if out.get("reason") else harm
        if at_chance:
            out["reason"] = (f"the data does not fit this model: the model before the forget is at "
                             f"{oracle:.1f}% on the kept classes (chance {chance:.1f}%); its "
                             "labels mean other classes than the model's outputs, so it cannot "
                             "verify the forget; give the data the model was trained on")  # fmt: skip
    return out


def truncated_predictions(logits: torch.Tensor, retain: list[int]) -> torch.Tensor:
    """The truncation oracle's predictions: the best kept class of each row of ``logits``."""
    index = torch.tensor(retain, device=logits.device)
    return index[logits[:, retain].argmax(dim=1)]
