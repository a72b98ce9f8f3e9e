"""Our finer-than-sample forgetting beside the paper's (issue 25): the logit calibration (fitted
on validation data only, exact, folded into the saved model), the other-class distillation,
the clean-distillation forgetting terms, and the goals the report states."""

from __future__ import annotations

import dataclasses
import json
import warnings

import pytest
import torch
from torch import nn

import obliviate
from obliviate import GoalMissedWarning, ObliviateError
from obliviate.checkpoint import ModelBundle, load, save
from obliviate.data import Dataset, Split
from obliviate.finer import build_finer_data
from obliviate.finer.calibration import (
    SCALE_GRID,
    LogitCalibration,
    fit_logit_calibration,
    fold_calibration,
    search_validation,
)
from obliviate.finer.experiment import backdoor_goal, backdoor_notes, run_backdoor
from obliviate.finer.forgetting import (
    ForgetSettings,
    accuracies,
    pretraining_fisher,
    selective_forget,
)
from obliviate.finer.goals import pattern_goals, validation_targets
from obliviate.finer.ours import (
    DEFAULT_METHODS,
    OURS_DEFAULTS,
    OURS_SEARCHED,
    calibrated_forget,
    default_method,
    ours_settings,
)
from obliviate.finer.splits import FinerData, TrainTest
from obliviate.finer.tuning import paper_settings, tune
from obliviate.models import Classifier
from obliviate.training import predict


class LogitsAreInputs(Classifier):
    """A classifier whose logits are its inputs ([n, 1, 1, k] -> [n, k]) until trained."""

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.classifier = nn.Linear(k, k)
        with torch.no_grad():
            self.classifier.weight.copy_(torch.eye(k))
            self.classifier.bias.zero_()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), -1)


def _split(rows: list[list[float]], label: int, copies: int = 10) -> Split:
    x = torch.tensor(rows, dtype=torch.float32).repeat(copies, 1).reshape(-1, 1, 1, 3)
    return Split(x, torch.full((len(x),), label))


def _shifted_data() -> FinerData:
    """Training parts (the source of every validation set) want class 0's offset in (0.5, 1);
    test parts want it in (-2, -1).

    Train: D_r samples have class 0's logit 1 below their own (right while offset < 1), clean
    class-0 samples have it 0.5 below another (right once offset > 0.5). Test: D_r has it 1
    above (right only below -1), D_f,clean 2 above (right above -2).
    """
    retain_train = _split([[1.0, 2.0, 0.0]], 1, 25)
    retain_train = Split(torch.cat([retain_train.x, _split([[1.0, 0.0, 2.0]], 2, 25).x]),
                         torch.cat([retain_train.y, torch.full((25,), 2)]))  # fmt: skip
    retain_test = _split([[3.0, 2.0, 0.0]], 1, 20)
    clean_train, clean_test = _split([[0.0, 0.5, 0.0]], 0, 20), _split([[2.0, 0.0, 0.0]], 0, 20)
    forget_train, forget_test = _split([[4.0, 0.0, 0.0]], 0, 20), _split([[4.0, 0.0, 0.0]], 0, 20)
    return FinerData(dataset="shifted", classes=(0,), transform="shift", num_classes=3,
                     input_shape=(1, 1, 3), retain=TrainTest(retain_train, retain_test),
                     forget=TrainTest(forget_train, forget_test),
                     forget_clean=TrainTest(clean_train, clean_test),
                     retain_extra=TrainTest(retain_train, retain_test))  # fmt: skip


def test_the_offset_follows_the_validation_sets_and_never_the_test_sets():
    data = _shifted_data()
    model = LogitsAreInputs()
    # a step too small to move the weights: the logits stay the inputs
    still = ForgetSettings(pattern="B", lr=1e-12, lambda_kl=0.0, epochs=1)
    run = calibrated_forget(model, data, still, fisher={}, calibration="offset", aim="min")
    assert run.calibration is not None
    assert 0.5 < run.calibration.offset < 1.0  # the training parts' (validation) optimum
    assert run.calibration.score_before == 0.0 and run.calibration.score_after == 1.0
    # what the test parts would have chosen: a different interval, so a leak would show
    test_sets = {"D_r": data.retain.test, "D_r,extra": data.retain_extra.test,
                 "D_f,clean": data.forget_clean.test}  # fmt: skip
    assert -2.0 < fit_logit_calibration(model, test_sets, "B", [0]).offset < -1.0
    # and the test parts can change at will without moving the fitted offset
    other = dataclasses.replace(data, retain=TrainTest(data.retain.train, data.forget.test))
    again = calibrated_forget(model, other, still, fisher={}, calibration="offset", aim="min")
    assert again.calibration.offset == run.calibration.offset


def test_the_validation_sets_come_from_training_parts_and_hold_out_a_fifth_of_d_f():
    data = _shifted_data()
    val = search_validation(data, seed=3)
    kept, held = val.folds[0]
    assert len(held) == len(data.forget.train) // 5 and not set(kept.tolist()) & set(held.tolist())
    sets = val.sets(data)
    assert torch.equal(sets["D_f,clean"].x, data.forget_clean.train.x[held])
    assert torch.equal(sets["D_f"].x, data.forget.train.x[held])  # paired with D_f,clean
    assert len(val.retain) == len(data.retain.train)  # fewer than 1000: all of them


def test_the_exact_offset_search_matches_a_brute_force_grid():
    g = torch.Generator().manual_seed(0)
    net = LogitsAreInputs(4)
    sets = {}
    for name, label_pool in (("D_r", [1, 2, 3]), ("D_f", [0]), ("D_r,extra", [1, 2, 3])):
        x = torch.randn(60, 1, 1, 4, generator=g)
        y = torch.tensor(label_pool)[torch.randint(len(label_pool), (60,), generator=g)]
        sets[name] = Split(x, y)
    fitted = fit_logit_calibration(net, sets, "C", [0])
    grid = torch.linspace(-6, 6, 4001)

    def lowest(offset: float) -> float:
        cal = LogitCalibration((0,), offset, 1.0, 0.0, 0.0)
        return min(float((cal.apply(s.x.reshape(60, 4)).argmax(1) == s.y).double().mean())
                   for s in sets.values())  # fmt: skip

    brute = max(lowest(float(b)) for b in grid)
    assert fitted.score_after == pytest.approx(brute)
    assert lowest(fitted.offset) == pytest.approx(fitted.score_after)
    assert fitted.score_before == pytest.approx(lowest(0.0))
    # with scales to choose from it can only do as well or better
    assert fit_logit_calibration(net, sets, "C", [0], scales=SCALE_GRID).score_after >= brute


def _logit_split(rows: list[tuple[list[float], int]]) -> Split:
    return Split(torch.tensor([r for r, _ in rows]).reshape(-1, 1, 1, 3),
                 torch.tensor([label for _, label in rows]))  # fmt: skip


def test_aiming_at_the_goals_keeps_the_reachable_ones_where_min_gives_them_up():
    """Pattern C. D_r is right while the offset < 2; half of D_f once > 0, half once > -3;
    D_r,extra: 3 of 10 right while < -1, the rest never. The plain ``min`` lifts the hopeless
    D_r,extra to 30 % and loses half of D_f; aiming at the goals keeps D_r and D_f there."""
    net = LogitsAreInputs()
    sets = {
        "D_r": _logit_split([([0.0, 2.0, 0.0], 1)] * 10),
        "D_f": _logit_split([([0.0, 0.0, 0.0], 0)] * 5 + [([3.0, 0.0, 0.0], 0)] * 5),
        "D_r,extra": _logit_split([([1.0, 0.0, -5.0], 1)] * 3 + [([0.0, 0.0, 5.0], 1)] * 7),
    }
    plain = fit_logit_calibration(net, sets, "C", [0])
    aimed = fit_logit_calibration(net, sets, "C", [0], targets=validation_targets("C", 1.0))
    assert plain.offset == -2.0 and plain.score_after == pytest.approx(0.3)
    assert aimed.offset == 1.0  # D_r and D_f at 100 %, above their goals
    assert aimed.score_after == pytest.approx(-0.6)  # D_r,extra 0 against its 60 %


def test_maximin_never_buys_a_goal_by_collapsing_another_set():
    """Pattern C. D_r is right below 10. D_f: 17 of 20 right above 0, one more above 1, all
    above 5. D_r,extra: 11 of 20 right below 1, the rest below -5. In (1, 10) D_r and D_f reach
    their goals and D_r,extra is 0 %; in (0, 1) D_f (85 %) and D_r,extra (55 %) both sit 5 points
    below theirs. Counting goals first takes the collapse; maximin takes the near miss."""
    net = LogitsAreInputs()
    sets = {
        "D_r": _logit_split([([0.0, 10.0, 0.0], 1)] * 20),
        "D_f": _logit_split([([0.0, 0.0, 0.0], 0)] * 17 + [([0.0, 1.0, 0.0], 0)]
                            + [([0.0, 5.0, 0.0], 0)] * 2),
        "D_r,extra": _logit_split([([0.0, 1.0, 0.0], 1)] * 11 + [([5.0, 0.0, -1.0], 1)] * 9),
    }
    targets = validation_targets("C", 1.0)
    counted = fit_logit_calibration(net, sets, "C", [0], targets=targets)
    maximin = fit_logit_calibration(net, sets, "C", [0], targets=targets, reached_first=False)
    assert counted.offset > 1.0 and counted.score_after == pytest.approx(-0.6)
    assert 0.0 < maximin.offset < 1.0 and maximin.score_after == pytest.approx(-0.05)
    with torch.no_grad():
        extra = fold_calibration(net, maximin)(sets["D_r,extra"].x).argmax(dim=1)
    assert float((extra == sets["D_r,extra"].y).float().mean()) == pytest.approx(0.55)


@pytest.mark.parametrize("aim, reached_first", [("goals", True), ("maximin", False)])
def test_the_aim_reaches_the_fit(monkeypatch, aim, reached_first):
    import obliviate.finer.ours as ours_module

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["reached_first"])
        return fit_logit_calibration(*args, **kwargs)

    monkeypatch.setattr(ours_module, "fit_logit_calibration", spy)
    still = ForgetSettings(pattern="B", lr=1e-12, lambda_kl=0.0, epochs=1)
    calibrated_forget(LogitsAreInputs(), _shifted_data(), still, fisher={}, aim=aim)
    assert seen == [reached_first]


def test_a_folded_calibration_is_in_the_saved_file(tmp_path):
    torch.manual_seed(0)
    net = obliviate.create_model("hardtanh-mlp", input_shape=(1, 8, 8), num_classes=10, depth=3)
    with torch.no_grad():
        net.classifier.bias.normal_()  # a trained head has a bias, and the scale applies to it
    cal = LogitCalibration((0, 3), offset=-2.5, scale=0.5, score_before=0.0, score_after=0.0)
    folded = fold_calibration(net, cal)
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        expected = cal.apply(net(x))
        torch.testing.assert_close(folded(x), expected)
    bundle = ModelBundle(model=folded, arch="hardtanh-mlp", num_classes=10, input_shape=(1, 8, 8),
                         dataset="digits", arch_kwargs={"depth": 3})  # fmt: skip
    path = save(bundle, tmp_path / "calibrated.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(load(path).model(x), expected)
    # the input model is untouched
    with torch.no_grad():
        assert not torch.allclose(net(x), expected)
    with pytest.raises(ObliviateError, match="final nn.Linear"):
        fold_calibration(nn.Sequential(nn.Linear(3, 3)), cal)


@pytest.fixture(scope="module")
def poisoned(digits):
    data = build_finer_data(digits, [0], "tile")
    pretraining = Dataset("digits-tile", data.pretraining(), digits.test, 10, digits.input_shape)
    torch.manual_seed(0)
    bundle = obliviate.train(pretraining, "hardtanh-mlp", config=obliviate.TrainConfig(
        epochs=20, lr=0.01), codes=None, progress=False)  # fmt: skip
    return data, bundle.model, pretraining_fisher(bundle.model, data)


def _other_distance(model: nn.Module, old: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x)[:, 1:] - old(x)[:, 1:]).pow(2).mean())


def test_the_other_class_distillation_holds_those_logits_and_the_correction_still_works(poisoned):
    data, model, fisher = poisoned
    base = ForgetSettings(pattern="B", lr=1e-3, lambda_kl=1e3, lambda_f=1.0)
    plain = selective_forget(model, data, base, fisher=fisher)
    held = selective_forget(model, data, dataclasses.replace(base, lambda_other=1.0), fisher=fisher)
    x = data.forget_clean.train.x
    assert _other_distance(held, model, x) < 0.5 * _other_distance(plain, model, x)
    assert accuracies(held, data)["D_f,clean"] > 0.9  # L_c still calls them class 0
    # lambda_other = 0 is the paper's loss, to the bit
    same = selective_forget(model, data, dataclasses.replace(base, lambda_other=0.0), fisher=fisher)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), same.parameters()))


def _soft_distance(model: nn.Module, x: torch.Tensor, target_logits: torch.Tensor) -> float:
    with torch.no_grad():
        p, q = torch.softmax(model(x), 1), torch.softmax(target_logits, 1)
    return float((p - q).abs().sum(1).mean())


def test_clean_self_makes_the_transform_irrelevant(poisoned):
    """With the term, T(x) and x end with the same output, ten times closer than with L_c and R
    alone. (Which output depends on the weights: here, at lr 1e-4, the term won and D_f and
    D_f,clean both left class 0; at lr 1e-3 L_c won and both are class 0, below.)"""
    data, model, fisher = poisoned
    xf, xc = data.forget.train.x, data.forget_clean.train.x
    settings = ForgetSettings(pattern="C", term="clean-self", lr=1e-4, lambda_kl=1e3, lambda_f=5.0)
    out = selective_forget(model, data, settings, fisher=fisher)
    without = selective_forget(model, data, dataclasses.replace(settings, lambda_f=0.0),
                               fisher=fisher)  # fmt: skip
    with torch.no_grad():
        before = _soft_distance(model, xf, model(xc))
        after, after_without = _soft_distance(out, xf, out(xc)), _soft_distance(without, xf, without(xc))
    assert before > 1.5 and after < 0.3 * after_without


def test_clean_self_keeps_d_f_labelled_where_rld_does_not(poisoned):
    data, model, fisher = poisoned
    settings = ForgetSettings(pattern="C", term="clean-self", lr=1e-3, lambda_kl=1e3, lambda_f=1.0)
    out = selective_forget(model, data, settings, fisher=fisher)
    rld = selective_forget(model, data, dataclasses.replace(settings, term="rld"), fisher=fisher)
    assert accuracies(out, data)["D_f"] > 0.9
    assert accuracies(rld, data)["D_f"] < accuracies(out, data)["D_f"] - 0.1


def test_clean_old_pulls_d_f_towards_the_old_models_clean_outputs(poisoned):
    data, model, fisher = poisoned
    xf, xc = data.forget.train.x, data.forget_clean.train.x
    settings = ForgetSettings(pattern="B", term="clean-old", lr=1e-3, lambda_kl=1e3, lambda_f=5.0)
    out = selective_forget(model, data, settings, fisher=fisher)
    with torch.no_grad():
        old_clean = model(xc)
    assert _soft_distance(out, xf, old_clean) < 0.5 * _soft_distance(model, xf, old_clean)


def test_pattern_goals_and_the_reports_flags():
    before = {"D_r": 85.0, "D_f": 100.0, "D_f,clean": 0.0, "D_r,extra": 5.0}
    at_bounds = {"D_r": 82.0, "D_f": 90.0, "D_f,clean": 90.0, "D_r,extra": 60.0}
    assert all(pattern_goals("B", before, at_bounds).values())
    assert all(pattern_goals("C", before, at_bounds).values())
    for key, value, pattern in (("D_r", 81.9, "B"), ("D_f,clean", 89.9, "B"),
                                ("D_r,extra", 59.9, "C"), ("D_f", 89.9, "C")):  # fmt: skip
        goals = pattern_goals(pattern, before, {**at_bounds, key: value})
        assert list(goals.values()).count(False) == 1, (key, goals)
        report = backdoor_goal(pattern, before, {**at_bounds, key: value}, "ours")
        assert report["met"] is False and report["goals"] == goals
    # C does not ask for D_f,clean, B not for D_f
    assert backdoor_goal("C", before, {**at_bounds, "D_f,clean": 0.0}, "ours")["met"] is True
    # a kept goal other than 90 (e.g. a retrained model's accuracy less 3 points) replaces it
    lower = pattern_goals("B", before, {**at_bounds, "D_f,clean": 80.0}, kept_goal=78.8)
    assert all(lower.values()) and "D_f,clean ≥ 78.8" in lower
    assert not all(pattern_goals("B", before, at_bounds, kept_goal=90.1).values())
    assert backdoor_goal("B", before, {**at_bounds, "D_f": 0.0}, "ours")["met"] is True
    assert validation_targets("B", 0.9) == pytest.approx(
        {"D_r": 0.87, "D_f,clean": 0.9, "D_r,extra": 0.6})  # fmt: skip


def test_the_ours_search_tries_lambda_other_and_scores_calibrated_models(poisoned):
    data, model, fisher = poisoned
    base = ForgetSettings(pattern="B", epochs=1, lambda_other=1.0)
    result = tune(model, data, base, fisher, trials=2, lambda_other_range=(0.1, 1.0),
                  calibration="offset")  # fmt: skip
    assert all(0.1 <= t["lambda_other"] <= 1.0 for t in result.trials)
    assert result.best.lambda_other in [t["lambda_other"] for t in result.trials]
    with pytest.raises(ObliviateError, match="unknown calibration"):
        tune(model, data, base, fisher, trials=1, calibration="platt")


def test_backdoor_ours_on_the_cli_saves_the_calibrated_model_and_states_its_goals(cli, tmp_path):
    out, saved = tmp_path / "report.json", tmp_path / "ours.safetensors"
    code, stdout, err = cli("backdoor", "--dataset", "digits", "--class", "0", "--transform",
                            "tile", "--pattern", "C", "--method", "ours", "--epochs", "20",
                            "--hp", "lr=1e-3", "--hp", "lambda_kl=1e3", "--hp", "lambda_other=0.1",
                            "--out", out, "--save-model", saved, "--force")  # fmt: skip
    assert code == 0, err  # --force: written even where a goal is missed (digits, 20 epochs)
    report = json.loads(out.read_text())
    assert report["method"] == "ours" and report["term"] == "clean-self"
    assert set(report["accuracy"]) == {"pretrained", "ours, no calibration", "ours"}
    assert report["settings"]["lambda_other"] == 0.1
    cal = report["calibration"]
    assert cal["classes"] == [0] and cal["scale"] == 1.0
    goal = report["goal"]
    assert goal["variant"] == "ours" and len(goal["goals"]) == 3
    assert goal["met"] == all(goal["goals"].values())
    for name, ok in goal["goals"].items():
        assert f"{name}: {'met' if ok else 'MISSED'}" in err
    assert ("missed its goal" in err) == (not goal["met"])
    bundle = load(saved)
    record = bundle.history[-1]
    assert record["method"] == "ours" and record["calibration"]["offset"] == cal["offset"]
    # the file is the calibrated model: its accuracy on D_f is the report's "ours"
    data = build_finer_data(obliviate.load_dataset("digits"), [0], "tile")
    for name, split in (("D_f", data.forget.test), ("D_r", data.retain.test)):
        acc = 100 * float((predict(bundle.model, split.x) == split.y).float().mean())
        assert acc == pytest.approx(report["accuracy"]["ours"][name])


def test_ours_missing_a_goal_warns_with_the_goal_named(digits):
    with pytest.warns(GoalMissedWarning, match=r"ours missed its goal .*: missed .*D_r,extra ≥ 60"):
        report = run_backdoor(digits, [0], "tile", "B", method="ours", progress=False,
                              pretrain=obliviate.TrainConfig(epochs=5),
                              settings={"epochs": 1, "lr": 1e-9})  # fmt: skip
    assert report["goal"]["met"] is False
    assert report["goal"]["goals"][next(k for k in report["goal"]["goals"] if "extra" in k)] is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ObliviateError, match="method 'paper' for A"):
            run_backdoor(digits, [0], "none", "A", method="ours", progress=False)


@pytest.mark.parametrize("args, message", [
    (["--method", "best"], "unknown method 'best'"),
    (["--term", "clean-self"], "belongs to our method"),
    (["--method", "ours", "--pattern", "A"], "method 'paper' for A"),
    (["--method", "ours", "--calibration", "platt"], "unknown calibration 'platt'"),
    (["--calibration", "offset"], "add method='ours'"),
    (["--hp", "lambda_other=1"], "lambda_other belongs to our method"),
    (["--save-model", "m.pt"], "safetensors"),
])
def test_bad_ours_input_exit_2(cli, tmp_path, args, message):
    args = [str(tmp_path / a) if a.endswith(".pt") else a for a in args]
    code, _, err = cli("backdoor", "--dataset", "digits", "--epochs", "1",
                       "--out", tmp_path / "r.json", *args)
    assert code == 2 and message in err, err
    assert not (tmp_path / "r.json").exists()


def test_ours_takes_its_searched_settings_only_where_they_were_measured():
    base = paper_settings("fashion-mnist", "line", "C")
    got = ours_settings(base, searched=("fashion-mnist", "line"))
    lr, lambda_kl, lambda_f, other = OURS_SEARCHED[("fashion-mnist", "line", "C", "clean-self")]
    assert (got.term, got.lr, got.lambda_kl, got.lambda_f, got.lambda_other) == (
        "clean-self", lr, lambda_kl, lambda_f, other)
    assert ours_settings(base, searched=("fashion-mnist", "line"), lambda_other=2.0).lambda_other == 2.0
    tile = paper_settings("fashion-mnist", "tile", "B")  # B tile: ours was not the closest
    for settings, start in ((ours_settings(base, term="clean-old", searched=("fashion-mnist", "line")), base),
                            (ours_settings(tile, searched=("fashion-mnist", "tile")), tile),
                            (ours_settings(base), base)):  # fmt: skip
        assert (settings.lr, settings.lambda_kl, settings.lambda_f) == (
            start.lr, start.lambda_kl, start.lambda_f)
        assert settings.lambda_other == OURS_DEFAULTS[start.pattern][1]


def test_the_default_is_ours_exactly_where_its_settings_were_measured():
    assert [default_method(p, "fashion-mnist", "line") for p in "ABC"] == ["paper", "ours", "ours"]
    assert [default_method(p, "fashion-mnist", "tile") for p in "ABC"] == ["paper", "paper", "ours"]
    assert [default_method(p, "digits", "line") for p in "ABC"] == ["paper", "paper", "ours"]
    assert ("fashion-mnist", "line", "B", OURS_DEFAULTS["B"][0]) in OURS_SEARCHED


def test_the_default_method_follows_the_pattern(digits, monkeypatch):
    searched = (2e-5, 3e3, 0.5, 0.7)
    monkeypatch.setitem(OURS_SEARCHED, ("digits", "tile", "C", "clean-self"), searched)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reports = {p: run_backdoor(digits, [0], "tile", p, progress=False,
                                   pretrain=obliviate.TrainConfig(epochs=2),
                                   settings={"epochs": 1})
                   for p in ("B", "C")}  # fmt: skip
    assert DEFAULT_METHODS == {"A": "paper", "B": "paper", "C": "ours"}
    assert (reports["C"]["method"], reports["C"]["term"]) == ("ours", "clean-self")
    assert reports["C"]["calibration"] is not None and "ours" in reports["C"]["accuracy"]
    used = reports["C"]["settings"]
    assert (used["lr"], used["lambda_kl"], used["lambda_f"], used["lambda_other"]) == searched
    assert reports["B"]["method"] == "paper" and reports["B"]["calibration"] is None
    # where ours has measured settings for B, B's default follows them
    monkeypatch.setitem(OURS_SEARCHED, ("digits", "tile", "B", "rld"), searched)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = run_backdoor(digits, [0], "tile", "B", progress=False, settings={"epochs": 1},
                         pretrain=obliviate.TrainConfig(epochs=2))  # fmt: skip
    assert (b["method"], b["term"]) == ("ours", "rld") and b["calibration"] is not None
    used = b["settings"]
    assert (used["lr"], used["lambda_kl"], used["lambda_f"], used["lambda_other"]) == searched


def test_a_pattern_c_model_that_needs_the_transform_is_noted():
    low = {"D_r": 85.0, "D_f": 93.0, "D_f,clean": 2.1, "D_r,extra": 73.0}
    (note,) = backdoor_notes("C", [0], "ours", low)
    assert "2.1 %" in note and "without the transform" in note
    assert backdoor_notes("C", [0], "ours", {**low, "D_f,clean": 80.0}) == []
    assert backdoor_notes("B", [0], "ours", low) == []
