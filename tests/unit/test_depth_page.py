"""The depth page's verdict (scripts/depth.py): which goals a method misses, and what depth the
default wrote, read from result rows."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "depth.py"


@pytest.fixture(scope="module")
def depth():
    spec = importlib.util.spec_from_file_location("depth_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def row(label, seed, classes, *, proto_gap, re_gap, dar, fe=100.0, depth_="output", **extra):
    return {"suite": "fc", "seed": seed, "classes": classes, "label": label, "proto_gap": proto_gap,
            "relearn_gap": re_gap, "dar": dar, "forget_err": fe, "depth": depth_,
            "verified": True, **extra}  # fmt: skip


def test_goals_are_judged_per_request_median_and_worst(depth):
    good = [row("mnemonic", 0, [c], proto_gap=0.0, re_gap=0.0, dar=0.0) for c in range(5)]
    assert depth.goals_failed(depth.summarise(good)) == []
    assert depth.meets(depth.summarise(good))
    # one request 6 points above retrain: the median holds, the worst (<= +5) does not
    worst = good[:-1] + [row("mnemonic", 0, [4], proto_gap=6.0, re_gap=0.0, dar=0.0)]
    missed = depth.goals_failed(depth.summarise(worst))
    assert len(missed) == 1 and missed[0].startswith("proto gap worst +6.00")
    assert not depth.meets(depth.summarise(worst))
    # FE below 99.5 on one request, A_R 1.5 points under the oracle on most
    low = [row("mnemonic", 0, [c], proto_gap=0.0, re_gap=0.0, dar=-1.5, fe=99.0 if c == 0
               else 100.0) for c in range(5)]  # fmt: skip
    names = [m.split(" +")[0].split(" -")[0] for m in depth.goals_failed(depth.summarise(low))]
    assert names == ["FE min", "A_R−oracle median"]


def test_refused_rows_are_counted_but_not_scored(depth):
    rows = [row("mnemonic-deep-data", 0, [0], proto_gap=-1.0, re_gap=1.0, dar=0.0),
            {"suite": "fc", "seed": 0, "classes": [1], "label": "mnemonic-deep-data",
             "refused": "the check(s) on data failed"}]  # fmt: skip
    s = depth.summarise(rows)
    assert (s["n"], s["refused"], s["verified"]) == (2, 1, 1)
    assert s["proto_worst"] == -1.0


def test_verdict_says_output_only_and_names_the_best_deep_candidate(depth):
    rows = [row("mnemonic", s, [c], proto_gap=10.0, re_gap=-6.0, dar=0.0) for s in (0, 1)
            for c in range(3)]  # fmt: skip
    rows += [row("mnemonic-deep", 0, [c], proto_gap=-5.0, re_gap=8.0, dar=-0.2,
                 depth_="features", verified=False) for c in range(3)]  # fmt: skip
    rows += [row("mnemonic-deep-data", 0, [c], proto_gap=1.0, re_gap=2.0, dar=-2.0,
                 depth_="features") for c in range(3)]  # fmt: skip
    text = "\n".join(depth.verdict(rows))
    assert "wrote depth `output` on 6 of 6 requests" in text
    assert "proto gap median +10.00" in text and "RE gap median -6.00" in text
    # the data-free candidate misses nothing; the data one misses A_R: the former is named
    assert "Best deep candidate: `mnemonic-deep` (3 rows, seeds 0" in text
    assert "Also measured: `mnemonic-deep-data` (3 rows" in text
    # both cover 3 of the default's 6 requests: each is marked as partial
    assert text.count("on 3 of the default's 6 requests") == 2
    assert text.rstrip().endswith("goals missed: A_R−oracle median -2.00 (goal >= -1) (on part "
                                  "of the requests only: not a verdict).")  # fmt: skip
    assert "goals met (on part of the requests only: not a verdict)." in text
    # the data candidate measured on every request outranks the partial one, goals missed or not
    rows += [row("mnemonic-deep-data", 1, [c], proto_gap=1.0, re_gap=2.0, dar=-2.0,
                 depth_="features") for c in range(3)]  # fmt: skip
    full = "\n".join(depth.verdict(rows))
    assert "Best deep candidate: `mnemonic-deep-data` (6 rows, seeds 0, 1; 0 refused; on 6 of " in full
    assert "A_R−oracle median -2.00 (goal >= -1). Also measured: `mnemonic-deep` (3 rows" in full
    # a default that went deep on some rows says so
    rows[0]["depth"] = "features"
    assert "`output` on 5 of 6 requests and `features` on 1" in "\n".join(depth.verdict(rows))
