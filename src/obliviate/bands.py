"""The two-sided bands that judge depth: a forget passes a measure only when it lands near the
model retrained without the classes, on either side.

A forget that leaves more of the class than retraining is *shallower* (an attacker gets the
class back); one that removes more than retraining *overshoots* it. Both can be told from a
retrained model by whoever compares with one, so both fail. Every gap is signed, model minus
retrained reference:

- KR k=10, KR k=100 (a fresh linear head on the frozen penultimate features, few-shot: where
  an attacker has few labels), Spotter (the published prototypical relearning attack) and the
  prototype attack (nearest class mean): gap in [-5, +5] points;
- the forget-class MIA AUC (seen vs unseen samples of the forgotten classes): gap in
  [-0.05, +0.05];
- relearn time from re-initialised forget rows: ratio in [0.8, 1.25];
- agreement and JS to the retrained model on forget samples: at least as close as the
  output-only forget's (an edit further from retraining than leaving the features alone is a
  different model, not a deeper one);
- class-level U-LiRA (shadow forgets against shadow retrains): AUC at most 0.60, or a
  permutation p-value of at least 0.05 (with few shadows chance alone reaches far above 0.60).

A page of many requests adds its own goals over the per-request gaps (median in [-5, +2], worst
at most +5: ``docs/results/depth.md``). The paper's RE (the head retrained from the forgotten
one) and MIA-efficacy stay in the tables, out of the verdict: the first moves with the forgotten
row, the second calls any model that misclassifies the class a non-member.
"""

from __future__ import annotations

from typing import Any

#: gap bands (model minus retrained reference), in the measure's unit
GAP_BANDS: dict[str, tuple[float, float]] = {
    "kr_k10": (-5.0, 5.0),
    "kr_k100": (-5.0, 5.0),
    "spotter": (-5.0, 5.0),
    "proto_k10": (-5.0, 5.0),
    "mia_forget_auc": (-0.05, 0.05),
}
#: ratio bands (model over retrained reference)
RATIO_BANDS: dict[str, tuple[float, float]] = {"relearn_steps_fresh": (0.8, 1.25)}
#: the largest class-level U-LiRA AUC that passes, and the permutation p-value below which a
#: larger one is not chance
ULIRA_MAX_AUC = 0.60
ULIRA_ALPHA = 0.05
#: names in the verdict line
NAMES = {"kr_k10": "KR k=10", "kr_k100": "KR k=100", "spotter": "Spotter",
         "proto_k10": "prototype k=10", "mia_forget_auc": "forget-class MIA",
         "relearn_steps_fresh": "relearn time", "agree_forget": "agreement",
         "js_forget": "JS", "ulira_auc": "U-LiRA"}  # fmt: skip


def steps_ratio(mine: int | None, ref: int | None, cap: int) -> float:
    """``(steps + 1) / (reference steps + 1)``; a budget not reached counts as ``cap + 1``."""
    a = cap + 1 if mine is None else mine
    b = cap + 1 if ref is None else ref
    return (a + 1) / (b + 1)


def place(measure: str, value: float) -> str:
    """Where a gap (or ratio, or AUC) lies: ``"within"`` its band, ``"shallower"`` (more of the
    class left than in the reference) or ``"beyond"`` (more removed than by retraining)."""
    if measure in GAP_BANDS:
        low, high = GAP_BANDS[measure]
        return "shallower" if value > high else "beyond" if value < low else "within"
    if measure in RATIO_BANDS:  # a faster relearn is shallower
        low, high = RATIO_BANDS[measure]
        return "shallower" if value < low else "beyond" if value > high else "within"
    if measure == "ulira_auc":
        return "shallower" if value > ULIRA_MAX_AUC else "within"
    raise KeyError(measure)


def signed_gaps(model: dict[str, Any], reference: dict[str, Any], cap: int) -> dict[str, float]:
    """Every gap of :data:`GAP_BANDS` and ratio of :data:`RATIO_BANDS` that both flat measure
    dicts (:meth:`obliviate.evidence.Evidence.flat`) have, keyed ``gap_<measure>``."""
    gaps = {}
    for key in GAP_BANDS:
        if model.get(key) is not None and reference.get(key) is not None:
            gaps[f"gap_{key}"] = float(model[key]) - float(reference[key])
    for key in RATIO_BANDS:
        if key in model and key in reference and cap > 0:
            gaps[f"gap_{key}"] = steps_ratio(model[key], reference[key], cap)
    return gaps


def judge(report: Any) -> dict[str, dict[str, Any]]:
    """Each measure of ``report`` (an :class:`~obliviate.evidence.EvidenceReport` against a
    retrained reference) with its value and place: ``{measure: {"value", "place"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for key in (*GAP_BANDS, *RATIO_BANDS):
        value = report.gaps.get(f"gap_{key}")
        if value is not None:
            out[key] = {"value": value, "place": place(key, value)}
    baseline = report.output_only_agreement
    if baseline:
        closer = report.agreement["agree_forget"] >= baseline["agree_forget"] - 1e-9
        out["agree_forget"] = {"value": report.agreement["agree_forget"],
                               "place": "within" if closer else "beyond"}  # fmt: skip
        closer = report.agreement["js_forget"] <= baseline["js_forget"] + 1e-9
        out["js_forget"] = {"value": report.agreement["js_forget"],
                            "place": "within" if closer else "beyond"}  # fmt: skip
    if report.ulira is not None:
        # the stronger of the two variants (outputs; outputs and features); few shadows put
        # chance AUCs far above 0.60, so an AUC that chance explains (permutation p >= 0.05)
        # also passes
        variants = [report.ulira, *([report.ulira["features_variant"]]
                                    if report.ulira.get("features_variant") else [])]  # fmt: skip
        told = [v for v in variants if place("ulira_auc", v["auc"]) == "shallower"
                and (v.get("auc_p_value") is None or v["auc_p_value"] < ULIRA_ALPHA)]  # fmt: skip
        auc = max(v["auc"] for v in (told or variants))
        out["ulira_auc"] = {"value": auc, "place": "shallower" if told else "within"}
    return out


def depth_verdict(report: Any) -> dict[str, Any]:
    """The report's verdict in one word, with the measures in and out of their bands.

    Returns:
        ``{"depth", "measures", "within", "shallower", "beyond", "as_original", "values"}``.
        ``depth`` is ``"deep"`` when every measure lies within its band around the retrained
        model (``"not told apart"`` when the original does too),
        ``"beyond retraining"`` when none is shallower but some overshoot, ``"output only"``
        when the model is within the same bands of the original on every gap measure,
        ``"partial"`` or ``"not deep"`` (some or no measure within), or ``"not shown deep"``
        without a retrained reference (the gaps are then to the original).
    """
    places = judge(report)
    names = list(places)
    lists = {p: [m for m in names if places[m]["place"] == p] for p in ("within", "shallower", "beyond")}
    as_original: list[str] = []
    original = report.original.flat() if report.original is not None else None
    if report.reference_kind == "original":
        original = report.reference.flat()
    if original is not None:
        cap = report.settings.get("relearn_max_steps", 0)
        to_original = signed_gaps(report.model.flat(), original, cap)
        as_original = [m.removeprefix("gap_") for m, v in to_original.items()
                       if place(m.removeprefix("gap_"), v) == "within"]  # fmt: skip
    gap_measures = [m for m in names if m in GAP_BANDS or m in RATIO_BANDS]
    if report.reference_kind != "retrained":
        depth = "not shown deep"
    elif names and len(lists["within"]) == len(names):
        # the original itself within the bands: these measures cannot tell the two apart
        told_apart = not (gap_measures and set(gap_measures) <= set(as_original))
        depth = "deep" if told_apart else "not told apart"
    elif gap_measures and set(gap_measures) <= set(as_original):
        depth = "output only"
    elif not lists["shallower"] and lists["beyond"]:
        depth = "beyond retraining"
    else:
        depth = "partial" if lists["within"] else "not deep"
    return {"depth": depth, "measures": [NAMES[m] for m in names],
            **{p: [NAMES[m] for m in ms] for p, ms in lists.items()},
            "as_original": [NAMES[m] for m in as_original],
            "values": {NAMES[m]: places[m]["value"] for m in names}}  # fmt: skip
