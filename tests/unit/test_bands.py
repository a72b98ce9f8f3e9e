"""The two-sided bands of the depth verdict (obliviate.bands): a forget shallower than retraining
fails, and so does one beyond it; each verdict word on a report whose answer is known."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from obliviate.bands import GAP_BANDS, depth_verdict, judge, place, signed_gaps


def _measures(kr: float, spotter: float = 0.0, proto: float = 80.0, mia: float = 0.5,
              fresh: int | None = 100) -> SimpleNamespace:  # fmt: skip
    flat = {"kr_k10": kr, "kr_k100": kr, "spotter": spotter, "proto_k10": proto,
            "mia_forget_auc": mia, "relearn_steps_fresh": fresh}  # fmt: skip
    return SimpleNamespace(flat=lambda: dict(flat))


def _report(model, reference, original=None, agreement=(80.0, 0.02), baseline=(80.0, 0.02),
            kind="retrained", ulira=None):  # fmt: skip
    cap = 300
    return SimpleNamespace(
        model=model, reference=reference, original=original, reference_kind=kind,
        gaps=signed_gaps(model.flat(), reference.flat(), cap), settings={"relearn_max_steps": cap},
        agreement={"agree_forget": agreement[0], "js_forget": agreement[1]},
        output_only_agreement={"agree_forget": baseline[0], "js_forget": baseline[1]},
        ulira=ulira,
    )  # fmt: skip


@pytest.mark.parametrize("measure", sorted(GAP_BANDS))
def test_a_gap_is_judged_on_both_sides(measure):
    low, high = GAP_BANDS[measure]
    assert place(measure, 0.0) == "within"
    assert place(measure, high * 1.01 + 1e-9) == "shallower"
    assert place(measure, low * 1.01 - 1e-9) == "beyond"


def test_relearn_time_faster_is_shallower_and_much_slower_is_beyond():
    assert place("relearn_steps_fresh", 1.0) == "within"
    assert place("relearn_steps_fresh", 0.1) == "shallower"
    assert place("relearn_steps_fresh", 3.2) == "beyond"  # the page's fc deep forget


def test_a_model_like_its_retrained_reference_is_deep():
    verdict = depth_verdict(_report(_measures(90.0), _measures(91.0), original=_measures(99.0)))
    assert verdict["depth"] == "deep" and not verdict["shallower"] and not verdict["beyond"]


def test_an_overshooting_forget_is_not_deep():
    """What the old one-sided verdict called deep: every attack reads less than retraining."""
    report = _report(_measures(70.0, proto=60.0, fresh=None), _measures(91.0),
                     original=_measures(99.0))  # fmt: skip
    verdict = depth_verdict(report)
    assert verdict["depth"] == "beyond retraining"
    assert "KR k=10" in verdict["beyond"] and "relearn time" in verdict["beyond"]


def test_a_forget_farther_from_retraining_than_the_output_only_one_fails_agreement():
    report = _report(_measures(90.0), _measures(91.0), agreement=(70.9, 0.035),
                     baseline=(89.1, 0.013))  # fmt: skip
    places = judge(report)
    assert places["agree_forget"]["place"] == "beyond" and places["js_forget"]["place"] == "beyond"
    assert depth_verdict(report)["depth"] == "beyond retraining"


def test_a_head_only_forget_is_output_only():
    original = _measures(99.0, spotter=98.0, proto=95.0, mia=0.6, fresh=20)
    model = _measures(99.0, spotter=97.0, proto=95.0, mia=0.6, fresh=20)  # features untouched
    verdict = depth_verdict(_report(model, _measures(60.0, spotter=10.0, proto=50.0), original))
    assert verdict["depth"] == "output only"
    assert set(verdict["shallower"]) >= {"KR k=10", "Spotter", "prototype k=10"}


def test_measures_that_cannot_tell_the_original_from_retraining_say_so():
    same = _measures(90.0)
    assert depth_verdict(_report(same, _measures(90.0), original=_measures(90.0)))["depth"] == (
        "not told apart")


def test_u_lira_fails_only_above_the_bound_and_beyond_chance():
    base = (_measures(90.0), _measures(90.0))
    told = {"auc": 1.0, "auc_p_value": 0.005, "n": 8}
    chance = {"auc": 0.875, "auc_p_value": 0.2, "n": 8}
    assert judge(_report(*base, ulira=told))["ulira_auc"]["place"] == "shallower"
    assert judge(_report(*base, ulira=chance))["ulira_auc"]["place"] == "within"
    assert judge(_report(*base, ulira={"auc": 0.55, "auc_p_value": 0.01, "n": 8}))["ulira_auc"][
        "place"] == "within"


def test_without_a_retrained_reference_depth_is_not_shown():
    verdict = depth_verdict(_report(_measures(90.0), _measures(90.0), kind="original"))
    assert verdict["depth"] == "not shown deep"
