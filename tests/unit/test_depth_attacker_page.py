"""The depth page's section under the attacker's measures (obliviate.experiments.depth_page):
the page goals in two-sided bands over a method's rows, refused rows against them, and KR at the
earlier blocks, read from result rows with known gaps."""

from __future__ import annotations

from obliviate.experiments.depth_page import (
    attacker_overview,
    attacker_section,
    attacker_summary,
    block_kr_gaps,
)


def row(label="mnemonic", classes=(3,), *, gap=0.0, agree=80.0, js=0.02, base=(80.0, 0.02),
        **extra):
    """A row with every judged gap equal to ``gap`` and the given agreement and JS beside the
    output-only forget's (``base``)."""
    return {"suite": "convnet", "seed": 0, "classes": list(classes), "label": label,
            "measures": 2, "gap_kr_k10": gap, "gap_kr_k100": gap, "gap_spotter": gap,
            "gap_proto_k10": gap, "agree_forget": agree, "js_forget": js,
            "output_only_agreement": {"agree_forget": base[0], "js_forget": base[1]},
            "bands": {"depth": "deep", "shallower": [], "beyond": []}, "reference": {},
            **extra}  # fmt: skip


def test_gaps_inside_the_band_meet_the_goals():
    rows = [row(classes=(c,), gap=g) for c, g in enumerate([-4.0, 0.0, 1.5, 4.0])]
    assert attacker_summary(rows, rows)["missed"] == []


def test_a_forget_beyond_retraining_misses_like_a_shallow_one():
    deep = attacker_summary([row(gap=-6.0)] * 3, [])
    shallow = attacker_summary([row(gap=+3.0)] * 3, [])
    assert any("KR k=10 gap median -6.0" in m for m in deep["missed"])
    assert any("KR k=10 gap median +3.0" in m for m in shallow["missed"])


def test_one_request_far_shallower_fails_the_worst_goal():
    rows = [row(classes=(c,), gap=0.0) for c in range(4)] + [row(classes=(9,), gap=5.5)]
    missed = attacker_summary(rows, rows)["missed"]
    assert any("worst +5.5" in m for m in missed) and not any("median" in m for m in missed)


def test_refused_rows_count_against_the_goals():
    rows = [row(classes=(c,)) for c in range(3)]
    rows.append({"suite": "convnet", "seed": 0, "classes": [9], "label": "mnemonic",
                 "refused": "kept classes lost 3 points", "measures": 2})  # fmt: skip
    s = attacker_summary(rows, rows)
    assert (s["n"], s["refused"]) == (4, 1)
    assert s["missed"] == ["1 of 4 refused"]


def test_agreement_and_js_are_judged_against_the_output_only_forget():
    assert attacker_summary([row(agree=79.0)], [])["missed"] == [
        "agreement -1.0 points below the output-only forget's"]
    assert attacker_summary([row(js=0.03)], [])["missed"] == [
        "JS +0.010 above the output-only forget's"]
    assert attacker_summary([row(agree=81.0, js=0.01)], [])["missed"] == []


def test_block_kr_gaps_subtract_the_reference_block_by_block():
    rows = [row(kr_block1_k10=50.0, kr_block2_k10=70.0,
                reference={"kr_block1_k10": 45.0, "kr_block2_k10": 71.0}),
            row(kr_block1_k10=60.0, reference={"kr_block1_k10": 40.0}),
            {"label": "mnemonic", "refused": "no", "kr_block1_k10": 99.0}]
    assert block_kr_gaps(rows) == {"block1": [5.0, 20.0], "block2": [-1.0]}


def test_the_block_table_shows_only_where_the_model_has_earlier_blocks():
    flat = "\n".join(attacker_section([row()]))
    assert "earlier blocks" not in flat
    blocky = [row(kr_block1_k10=50.0, reference={"kr_block1_k10": 45.0})]
    text = attacker_section(blocky)
    assert "| mnemonic | +5.0 / +5.0 |" in text


def test_the_overview_names_who_meets_the_goals_and_counts_the_bands():
    rows = [row("retrain", (c,)) for c in range(3)]
    rows += [row("retrain-seed+1", (c,), gap=1.0) for c in range(3)]
    rows += [row("mnemonic-deep-data", (c,), gap=-9.0,
                 bands={"depth": "beyond retraining" if c else "deep"}) for c in range(3)]
    line = next(x for x in attacker_overview(rows) if x.startswith("* "))
    assert "3 requests, 3 methods" in line
    assert "met by `retrain-seed+1`;" in line  # the reference itself is not listed
    assert "`mnemonic-deep-data` deep 1, beyond retraining 2" in line


def test_a_row_measured_again_with_ulira_replaces_the_one_without_on_merge():
    from obliviate.experiments.depth import PAGE

    with_u, without = {"ulira": {"auc": 0.55, "n": 8}}, {"ulira": None}
    assert PAGE.replaces(without, with_u)
    assert not PAGE.replaces(with_u, without)
    assert not PAGE.replaces(with_u, dict(with_u))  # the first measured with U-LiRA stays


def test_without_a_method_in_the_bands_the_overview_names_the_closest():
    """Fewest goals missed first, then the least distance outside the bands; a retrain is never
    the candidate."""
    rows = [row("retrain", (c,), gap=9.0) for c in range(3)]
    rows += [row("mnemonic", (c,), gap=9.0) for c in range(3)]  # median and worst miss, x4
    rows += [row("mnemonic-deep-data", (c,), gap=3.0) for c in range(3)]  # medians miss, x4
    rows += [row("ssd", (c,), gap=-5.5) for c in range(3)]  # medians miss, x4, nearer the band
    line = next(x for x in attacker_overview(rows) if x.startswith("* "))
    assert "met by none; closest: `ssd` (misses 4: KR k=10 gap median -5.5" in line
    rows = [r for r in rows if r["label"] != "ssd"]
    line = next(x for x in attacker_overview(rows) if x.startswith("* "))
    assert "closest: `mnemonic-deep-data` (misses 4:" in line
    refused = [{"suite": "convnet", "seed": 0, "classes": [c], "label": "lwsf",
                "refused": "diverged", "measures": 2} for c in range(3)]  # fmt: skip
    line = next(x for x in attacker_overview(rows + refused) if x.startswith("* "))
    assert "closest: `mnemonic-deep-data`" in line  # one goal missed, but nothing measured
    second = rows + [row("retrain-seed+1", (c,), gap=0.0) for c in range(3)]
    line = next(x for x in attacker_overview(second) if x.startswith("* "))
    assert "met by `retrain-seed+1`; closest: `mnemonic-deep-data`" in line
    met = rows + [row("fastmu", (c,), gap=0.0) for c in range(3)]
    line = next(x for x in attacker_overview(met) if x.startswith("* "))
    assert "met by `fastmu`." in line and "closest" not in line
