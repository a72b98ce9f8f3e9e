"""Class-level U-LiRA: can an attacker with shadow models tell a forgotten model from a retrain?

After Hayes et al. (arXiv 2403.01218), in the class form of Kodge et al. (arXiv 2312.00761).
N *shadow originals*, trained with the model's recipe and other seeds, are forgotten with the
method and hyperparameters of the model under test; N *shadow retrains* never see the classes.
:func:`shadow_models` caches both under ``$XDG_CACHE_HOME/obliviate/shadows``.

The statistic (:func:`ulira`)
    Per scored sample ``x`` of class ``y`` the logit-scaled confidence ``phi(x) = log p_y -
    log(1 - p_y) = z_y - logsumexp_{j != y} z_j`` (stable from the logits). The scored samples
    are the forget classes' *training* samples (the forget set, whose removal U-LiRA tests) less
    the ``PROTOTYPE_SHOTS`` per class the features variant takes its prototypes from (left out
    in both variants); ``samples="test"`` or ``"both"`` choose otherwise. Per sample, a Gaussian
    over the forgotten shadows, ``N(mu_U(x), s^2)``, and one over the retrained, ``N(mu_R(x),
    s^2)``. Below ``POOL_BELOW`` shadows a side in a fit, one variance is pooled over every
    sample and both hypotheses (``sum (phi - mu)^2 / (S (n_U + n_R - 2))``), as LiRA does for few
    shadows; from there each sample has its own per side, floored at 1e-3 of the pooled one. A
    model's score is ``sum_x log N(phi(x) | U) - log N(phi(x) | R)``: high when it looks
    forgotten, not retrained (the sum treats samples as independent; the ROC only ranks).

The features variant (``features=True``)
    A second statistic from the penultimate features ``h``, the margin of cosine prototypes:
    ``psi(x) = cos(h(x), P_y) - max_{c kept} cos(h(x), P_c)``, ``P_c`` the mean unit feature of
    ``PROTOTYPE_SHOTS`` training samples of ``c`` (seed 0; the attacker's few labels, as in
    Spotter). Basis-free, so it compares across shadows whose feature spaces differ, and it
    reads what an output-only forget leaves: the class still clusters. ``psi`` gets Gaussians of
    its own (pooled alike); the log-likelihood ratios add (a diagonal covariance).

Evaluation
    Held-out target pairs, leave-pair-out: each forgotten shadow ``i`` against each retrained
    ``j``, both scored under the Gaussians fitted on the other shadows (so ``n >= 3``); the AUC
    is the share of pairs the forgotten one wins (ties half). The pair is independent of its
    fit, so alike sides give 0.5 on average (Airola et al. 2011); ranking the held-out pairs'
    scores together, each under its own fit, gives 0.46 on synthetic alike sides of 3 (a left-out
    model's own side mean moves away from it). With N negatives the smallest non-zero FPR is
    ``1/N``: TPR at 1 % FPR needs N >= 100, below that it is reported at FPR ``1/N``
    (``low_fpr``). The AUC of alike sides spreads far wider than Mann-Whitney's (pairs share
    shadows and fits) and lopsided (the attack learns whichever way the sides differ): for
    retrains against retrains on digits ``fc``, 95 % of it lies in about [0.07, 0.86] at N = 8
    (Mann-Whitney: [0.22, 0.78]), [0.07, 0.73] at 16, [0.18, 0.67] at 28, [0, 1] at 4. So it is
    measured: ``auc_chance_95`` is the central 95 % of the AUC over random splits of the 2N
    shadows into two sides, ``auc_p_value`` the share of splits at or above the observed AUC.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from obliviate import api
from obliviate.checkpoint import ModelBundle, load, save
from obliviate.digest import weights_sha256
from obliviate.data import Dataset
from obliviate.errors import ObliviateError
from obliviate.methods import METHODS
from obliviate.models import Classifier
from obliviate.training import TrainConfig, batched_eval, dataset_train_config

log = logging.getLogger(__name__)

#: seeds of the shadow originals and of the shadow retrains: ``FIRST_SEED[role] + i``
FIRST_SEED = {"original": 1000, "retrained": 2000}
#: a fit with fewer shadows than this per side pools one variance over samples and hypotheses
POOL_BELOW = 16
#: training samples per class of the features variant's prototypes (left out of scoring)
PROTOTYPE_SHOTS = 10


def shadow_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """``cache_dir``, default ``$XDG_CACHE_HOME/obliviate/shadows`` (``~/.cache`` without it)."""
    if cache_dir is not None:
        return Path(cache_dir)
    import os

    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "obliviate" / "shadows"


def original_sha256(bundle: ModelBundle) -> str:
    """SHA-256 of the weights the model started from: the input of its first forget request,
    or its own weights (as :func:`obliviate.references.original_sha256`, which imports the
    evidence that imports this module)."""
    if bundle.history and bundle.history[0].get("input_sha256"):
        return str(bundle.history[0]["input_sha256"])
    return weights_sha256(bundle.model)


def _key(record: dict[str, Any]) -> str:
    """A stable short hash of a JSON-able record (sorted keys)."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _recipe(original: ModelBundle, data: Dataset, epochs: int | None) -> dict[str, Any]:
    """What a shadow original is made from: everything but its seed."""
    return {"original": original_sha256(original), "arch": original.arch,
            "arch_kwargs": original.arch_kwargs, "dataset": data.name,
            "train_config": original.train_config, "epochs": epochs,
            "codes": dataclasses.asdict(original.codes.config) if original.codes else None,
            }  # fmt: skip


def _train_config(original: ModelBundle, data: Dataset, seed: int,
                  epochs: int | None) -> TrainConfig:  # fmt: skip
    names = {f.name for f in dataclasses.fields(TrainConfig)}  # world_size is a record only
    given = {k: v for k, v in (original.train_config or {}).items() if k in names}
    config = TrainConfig(**given) if given else dataset_train_config(data.name)
    extra: dict[str, Any] = {"epochs": epochs, "steps": None} if epochs is not None else {}
    return dataclasses.replace(config, seed=seed, **extra)


def _cached(cache_dir: str | Path | None, role: str, recipe: dict[str, Any],
            seeds: Sequence[int], make: Callable[[int], ModelBundle]) -> list[ModelBundle]:
    """Per seed, the bundle cached as ``ROLE-KEY.safetensors`` (``KEY`` hashes ``recipe`` and
    the seed), else ``make(seed)``, saved there."""
    out = []
    for seed in seeds:
        path = shadow_cache_dir(cache_dir) / f"{role}-{_key({**recipe, 'seed': seed})}.safetensors"
        if path.exists():
            out.append(load(path))
            continue
        out.append(make(seed))
        path.parent.mkdir(parents=True, exist_ok=True)
        save(out[-1], path)
    return out


def shadow_originals(original: ModelBundle, *, n: int, data: str | Dataset | None = None,
                     epochs: int | None = None, first_seed: int = FIRST_SEED["original"],
                     cache_dir: str | Path | None = None, device: str | torch.device | None = None,
                     progress: bool = True) -> list[ModelBundle]:  # fmt: skip
    """``n`` models trained like ``original`` (architecture, dataset, training settings, codes;
    ``epochs`` instead of the recipe's when given) with seeds ``first_seed + i``, cached in
    :func:`shadow_cache_dir` under the original's weights (:func:`original_sha256`), the
    recipe and the seed. ``original`` may be the forgotten model: only its recipe is used."""
    data = api.bundle_dataset(original, data) if not isinstance(data, Dataset) else data
    api.check_dataset_fits(original, data)
    codes = original.codes.config if original.codes is not None else None
    return _cached(cache_dir, "original", _recipe(original, data, epochs),
                   range(first_seed, first_seed + n), lambda seed: api.train(
        data, original.arch, config=_train_config(original, data, seed, epochs), codes=codes,
        model_kwargs=dict(original.arch_kwargs), device=device, progress=progress))  # fmt: skip


def shadow_retrains(original: ModelBundle, classes: Sequence[int], *, n: int,
                    data: str | Dataset | None = None, epochs: int | None = None,
                    first_seed: int = FIRST_SEED["retrained"], cache_dir: str | Path | None = None,
                    device: str | torch.device | None = None,
                    progress: bool = True) -> list[ModelBundle]:  # fmt: skip
    """``n`` models retrained from scratch without ``classes`` with ``original``'s recipe (the
    ``retrain`` method, as :func:`~obliviate.references.retrained_reference`), seeds
    ``first_seed + i``, cached in :func:`shadow_cache_dir`."""
    data = api.bundle_dataset(original, data) if not isinstance(data, Dataset) else data
    api.check_dataset_fits(original, data)
    classes = sorted(set(int(c) for c in classes))
    start = dataclasses.replace(original, forgotten_classes=[], history=[], stats=None)
    return _cached(cache_dir, "retrained", {**_recipe(original, data, epochs), "classes": classes},
                   range(first_seed, first_seed + n), lambda seed: api.forget(
        start, classes, method="retrain", data=data, seed=seed, device=device, progress=progress,
        **({"epochs": epochs} if epochs is not None else {})))  # fmt: skip


def shadow_models(original: ModelBundle, classes: Sequence[int], *, n: int,
                  data: str | Dataset | None = None, method: str | None = None,
                  hyperparameters: dict[str, Any] | None = None, with_data: bool | None = None,
                  epochs: int | None = None, cache_dir: str | Path | None = None,
                  device: str | torch.device | None = None,
                  progress: bool = True) -> tuple[list[Classifier], list[Classifier]]:  # fmt: skip
    """The shadows of class-level U-LiRA: ``(forgotten, retrained)``, ``n`` models each.

    Forgotten: :func:`shadow_originals` (seeds 1000 + i) forgotten of ``classes`` with
    ``method`` and ``hyperparameters`` (each with its own original's seed as the forget seed),
    with ``force=True``: a shadow whose forget the method cannot verify is kept (its record
    says ``verified: false``) and a warning counts them. Retrained: :func:`shadow_retrains`
    (seeds 2000 + i). Every shadow is cached as a ``.safetensors`` in ``cache_dir`` (default
    ``$XDG_CACHE_HOME/obliviate/shadows``), keyed by the original's weights, the recipe, the
    seed, the role and, for forgotten ones, the classes and a hash of the method's JSON
    record: a second call loads them.

    Args:
        original: the model before forgetting, or the forgotten model under test (only its
            recipe and original weights' hash are used).
        classes: the forget classes.
        method, hyperparameters: the forget to replay; default those of ``original``'s last
            forget record (which then must exist).
        with_data: give the shadow forgets the training data; default: as the last record
            did (it saw forget or retain samples), else when the method needs data.
        epochs: train shadows this many epochs instead of the recipe's (tests; cached apart).

    Raises:
        ObliviateError: no method given and no forget record, or ``n < 3``.
    """
    if n < 3:
        raise ObliviateError(f"U-LiRA holds out one shadow per side and fits on the rest, so "
                             f"it needs at least 3 shadows per side, got {n}")  # fmt: skip
    last = original.history[-1] if original.history else None
    if method is None:
        if last is None:
            raise ObliviateError("give the forget method of the model under test (method=...): "
                                 "this model has no forget record to take it from")  # fmt: skip
        method = str(last["method"])
        if hyperparameters is None:
            hyperparameters = dict(last.get("hyperparameters") or {})
    hyperparameters = dict(hyperparameters or {})
    if with_data is None:
        if last is not None and last.get("method") == method and "data" in last:
            seen = last["data"]
            with_data = bool(seen.get("forget_samples") or seen.get("retain_samples"))
        else:
            with_data = bool(METHODS.get(method).needs & {"forget", "retain"})
    data = api.bundle_dataset(original, data) if not isinstance(data, Dataset) else data
    classes = sorted(set(int(c) for c in classes))
    originals = shadow_originals(original, n=n, data=data, epochs=epochs, cache_dir=cache_dir,
                                 device=device, progress=progress)  # fmt: skip
    by_seed = {FIRST_SEED["original"] + i: shadow for i, shadow in enumerate(originals)}
    # each shadow forgets with its own seed (its original's): a method that draws (retrain,
    # fine-tuning) would otherwise give shadows that differ only by their originals
    forgotten = _cached(cache_dir, "forgotten", {
        **_recipe(original, data, epochs), "classes": classes, "method": method,
        "hyperparameters": hyperparameters, "with_data": with_data, "forget_seed": "shadow's"},
        list(by_seed),
        lambda seed: api.forget(by_seed[seed], classes, method=method,
                                data=data if with_data else None, seed=seed, device=device,
                                progress=progress, force=True, **hyperparameters))  # fmt: skip
    unverified = sum(1 for b in forgotten if b.history and b.history[-1].get("verified") is False)
    if unverified:
        log.warning("%d of %d shadow forgets with %s could not be verified (kept: the model "
                    "under test may be alike)", unverified, n, method)  # fmt: skip
    retrained = shadow_retrains(original, classes, n=n, data=data, epochs=epochs,
                                cache_dir=cache_dir, device=device, progress=progress)  # fmt: skip
    return [b.model for b in forgotten], [b.model for b in retrained]


# --- the attack -------------------------------------------------------------------------------


def _prototype_index(y: torch.Tensor, classes: Sequence[int]) -> dict[int, torch.Tensor]:
    """Indices of ``PROTOTYPE_SHOTS`` samples of each class in ``classes``, drawn with seed 0."""
    generator = torch.Generator().manual_seed(0)
    out = {}
    for c in classes:
        idx = torch.nonzero(y == c).flatten()
        out[int(c)] = idx[torch.randperm(len(idx), generator=generator)[:PROTOTYPE_SHOTS]]
    return out


def _scored_samples(data: Dataset, classes: Sequence[int], samples: str,
                    protos: dict[int, torch.Tensor],
                    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The scored inputs and labels, decoded (an image folder's are read once, here)."""
    parts = []
    if samples in ("train", "both"):
        mask = torch.isin(data.train.y, torch.tensor(list(classes)))
        for c in classes:
            mask[protos[c]] = False
        parts.append((data.train.x[mask], data.train.y[mask]))
    if samples in ("test", "both"):
        mask = torch.isin(data.test.y, torch.tensor(list(classes)))
        parts.append((data.test.x[mask], data.test.y[mask]))
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


def logit_confidence(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``log p_y - log(1 - p_y)`` of softmax(``logits``) per row, as ``z_y - logsumexp`` of the
    other logits (no probability is formed, so it stays finite where ``p_y`` rounds to 0 or 1)."""
    logits = logits.double()
    true = logits.gather(1, y[:, None]).squeeze(1)
    others = logits.scatter(1, y[:, None], float("-inf"))
    return true - torch.logsumexp(others, dim=1)


@torch.no_grad()
def _statistics(model: Classifier, x: torch.Tensor, y: torch.Tensor, data: Dataset,
                classes: Sequence[int], protos: dict[int, torch.Tensor],
                features: bool) -> torch.Tensor:  # fmt: skip
    """``[S, 1]`` (phi) or ``[S, 2]`` (phi, psi) of ``model`` on the scored samples."""
    logits = torch.cat(batched_eval(lambda xb: model(xb).cpu(), model, x, 1024))
    phi = logit_confidence(logits, y)
    if not features:
        return phi[:, None]

    def unit_features(inputs: torch.Tensor) -> torch.Tensor:
        h = torch.cat(batched_eval(lambda xb: model.features(xb).cpu(), model, inputs, 1024))
        return torch.nn.functional.normalize(h.double().flatten(1), dim=1)

    names = sorted(protos)
    P = torch.stack([unit_features(data.train.x[protos[c]]).mean(0) for c in names])
    cos = unit_features(x) @ torch.nn.functional.normalize(P, dim=1).T  # [S, C]
    column = {c: j for j, c in enumerate(names)}
    own = cos.gather(1, torch.tensor([column[int(c)] for c in y])[:, None]).squeeze(1)
    kept = [column[c] for c in names if c not in set(int(k) for k in classes)]
    psi = own - cos[:, kept].max(dim=1).values
    return torch.stack([phi, psi], dim=1)


def _leave_one_out(s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per shadow ``i`` of ``[n, S, D]`` statistics, the mean and the sum of squared deviations
    of the other ``n - 1`` (``[n, S, D]`` each)."""
    n = s.shape[0]
    mean = (s.sum(0) - s) / (n - 1)
    return mean, ((s**2).sum(0) - s**2 - (n - 1) * mean**2).clamp_min(0)


def _llr(x: torch.Tensor, mean_u: torch.Tensor, ss_u: torch.Tensor, mean_r: torch.Tensor,
         ss_r: torch.Tensor, k: int) -> torch.Tensor:  # fmt: skip
    """``sum log N(x | U) - log N(x | R)`` over the last two axes (samples, statistics), the
    Gaussians fitted on ``k`` shadows a side (their means and sums of squares; broadcast).
    Below ``POOL_BELOW`` one variance per statistic, pooled over samples and both sides."""
    pooled = ((ss_u + ss_r).mean(-2, keepdim=True) / (2 * k - 2)).clamp_min(1e-12)
    var_u = var_r = pooled
    if k >= POOL_BELOW:
        floor = 1e-3 * pooled
        var_u, var_r = (ss_u / (k - 1)).maximum(floor), (ss_r / (k - 1)).maximum(floor)

    def log_density(mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        return -0.5 * (var.log() + (x - mean) ** 2 / var)

    return (log_density(mean_u, var_u) - log_density(mean_r, var_r)).sum((-2, -1))


def _pair_scores(u: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Leave-pair-out: ``[n, n]`` scores of forgotten ``i`` and of retrained ``j`` under the fit
    without both (at ``[i, j]``)."""
    (mean_u, ss_u), (mean_r, ss_r) = _leave_one_out(u), _leave_one_out(r)
    fit = (mean_u[:, None], ss_u[:, None], mean_r[None], ss_r[None], u.shape[0] - 1)
    return _llr(u[:, None], *fit), _llr(r[None], *fit)


def _auc(score_u: torch.Tensor, score_r: torch.Tensor) -> float:
    return float(((score_u > score_r).double() + 0.5 * (score_u == score_r).double()).mean())


def _null_aucs(u: torch.Tensor, r: torch.Tensor, permutations: int) -> tuple[list[float], bool]:
    """The leave-pair-out AUC of the shadows split into two sides at random (every split when
    there are at most ``permutations``; ``True`` then), seeded: its law when the sides are
    alike."""
    both, n = torch.cat([u, r]), u.shape[0]
    exact = math.comb(2 * n, n) <= permutations
    generator = torch.Generator().manual_seed(0)
    drawn = (torch.randperm(2 * n, generator=generator)[:n].tolist() for _ in range(permutations))
    splits = itertools.combinations(range(2 * n), n) if exact else drawn
    out = []
    for first in splits:
        side = torch.zeros(2 * n, dtype=torch.bool)
        side[list(first)] = True
        out.append(_auc(*_pair_scores(both[side], both[~side])))
    return out, exact


def ulira(target: Classifier | None, forgotten_shadows: Sequence[Classifier],
          retrained_shadows: Sequence[Classifier], data: Dataset, classes: Sequence[int], *,
          features: bool = False, samples: Literal["train", "test", "both"] = "train",
          permutations: int = 200) -> dict[str, Any]:  # fmt: skip
    """Class-level U-LiRA of ``target`` against the shadows (see the module's docstring).

    Returns:
        ``auc`` (leave-pair-out) and ``tpr_at_low_fpr``, the share of forgotten shadows that
        at most ``low_fpr * n`` retrained ones score at or above, each pair under a fit without
        both (with one score scale, exactly the empirical ROC's TPR at FPR ``low_fpr``);
        ``low_fpr`` is 1 % from 100 shadows per side, else ``1/n``; ``fpr_resolution`` (``1/n``),
        ``n``; ``auc_chance_95`` and ``auc_p_value``: the central 95 % of the AUC over
        ``permutations`` random splits of the 2n shadows into two sides (all of them when
        fewer), and the share at or above ``auc``: the AUCs that do not tell the sides apart
        at this ``n`` (``None`` with ``permutations=0``); ``samples`` (which and how many
        were scored), ``variant`` (``"output"`` or ``"features"``). For a ``target``:
        ``target_score`` (fitted on every shadow), ``target_retrain_percentile``, the % of
        the held-out retrains that score below the target, each under the fit without it and
        its forgotten partner (near 50 for a retrain-like target, 100 for one that looks more
        forgotten than every retrain), and ``target_p_value``,
        ``(1 + #{retrain_j >= target}) / (n + 1)``; ``None`` without a target.

    Raises:
        ObliviateError: the sides differ in size or hold fewer than 3 shadows, no class given.
    """
    n = len(forgotten_shadows)
    if n != len(retrained_shadows) or n < 3:
        raise ObliviateError(f"U-LiRA needs as many forgotten as retrained shadows, at least 3 "
                             f"a side; got {n} and {len(retrained_shadows)}")  # fmt: skip
    if samples not in ("train", "test", "both"):
        raise ObliviateError(f"samples must be 'train', 'test' or 'both', got {samples!r}")
    classes = sorted(set(int(c) for c in classes))
    if not classes:
        raise ObliviateError("give the forget classes U-LiRA tests")
    data.check_classes(classes)
    protos = _prototype_index(data.train.y, range(data.num_classes))
    x, y = _scored_samples(data, classes, samples, protos)

    def stats(model: Classifier) -> torch.Tensor:
        return _statistics(model, x, y, data, classes, protos, features)

    u = torch.stack([stats(m) for m in forgotten_shadows])
    r = torch.stack([stats(m) for m in retrained_shadows])
    score_u, score_r = _pair_scores(u, r)
    auc = _auc(score_u, score_r)
    low_fpr = 0.01 if n >= 100 else 1 / n
    at_or_above = (score_r >= score_u).sum(1)  # per forgotten shadow
    out: dict[str, Any] = {
        "auc": auc,
        "tpr_at_low_fpr": float((at_or_above <= math.floor(low_fpr * n + 1e-9)).double().mean()),
        "low_fpr": low_fpr, "fpr_resolution": 1 / n, "n": n,
        "auc_chance_95": None, "auc_p_value": None,
        "samples": {"which": samples, "count": len(y)},
        "variant": "features" if features else "output",
        "target_score": None, "target_retrain_percentile": None, "target_p_value": None,
    }  # fmt: skip
    if permutations > 0:
        null, exact = _null_aucs(u, r, permutations)
        ranked = sorted(null)
        out["auc_chance_95"] = [ranked[math.floor(0.025 * (len(ranked) - 1))],
                                ranked[math.ceil(0.975 * (len(ranked) - 1))]]  # fmt: skip
        above = sum(a >= auc - 1e-12 for a in null)
        out["auc_p_value"] = above / len(null) if exact else (1 + above) / (1 + len(null))
    if target is not None:
        t = stats(target)
        (mean_u, ss_u), (mean_r, ss_r) = _leave_one_out(u), _leave_one_out(r)
        mine = _llr(t, mean_u, ss_u, mean_r, ss_r, n - 1)  # under the fit without pair j
        held = score_r.diagonal()
        out["target_score"] = float(_llr(t, u.mean(0), ((u - u.mean(0)) ** 2).sum(0),
                                         r.mean(0), ((r - r.mean(0)) ** 2).sum(0), n))  # fmt: skip
        out["target_retrain_percentile"] = 100 * _auc(mine, held)
        out["target_p_value"] = (1 + int((held >= mine).sum())) / (n + 1)
    return out
