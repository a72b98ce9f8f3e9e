"""Training options and guards (Adam, the cosine schedule, code mode ``mix``, TrainConfig's
checks, a diverging run, the CLI's --no-codes/--optimizer/--schedule/--code-mode), the relearn
probe, and ``forget(data="name")``."""

from __future__ import annotations

import math

import pytest
import torch

import obliviate
from obliviate import ObliviateError, TrainConfig
from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.metrics import RelearnConfig, evaluate_model, relearn_probe
from obliviate.training import fit, make_optimizer


@pytest.mark.parametrize("settings, message", [
    ({"optimizer": "rmsprop"}, "optimizer must be 'sgd' or 'adam', got 'rmsprop'"),
    ({"schedule": "step"}, "schedule must be 'none' or 'cosine', got 'step'"),
    ({"epochs": 0}, "epochs must be >= 1, got 0"),
    ({"steps": 0}, "steps must be >= 1, got 0"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"lr": 0.0}, "the learning rate must be a positive number, got 0.0"),
    ({"lr": math.inf}, "the learning rate must be a positive number, got inf"),
    ({"lr": math.nan}, "the learning rate must be a positive number, got nan"),
])  # fmt: skip
def test_train_config_checks(settings, message):
    with pytest.raises(ObliviateError) as info:
        TrainConfig(**settings)
    assert str(info.value) == message


def test_train_config_edges_are_accepted():
    assert TrainConfig(epochs=0, steps=5).steps == 5  # epochs are ignored with steps
    assert TrainConfig(epochs=1, batch_size=1, lr=1e-12).lr == 1e-12


def test_adam_is_built_and_trains(tiny_dataset):
    config = TrainConfig(optimizer="adam", lr=0.01, weight_decay=0.0, epochs=20, batch_size=32)
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], config)
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 0.01
    sgd = make_optimizer([torch.nn.Parameter(torch.zeros(2))], TrainConfig(momentum=0.5))
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.5
    bundle = obliviate.train(tiny_dataset, "fc", config=config, codes=None,
                             model_kwargs={"hidden": 16}, progress=False)  # fmt: skip
    assert bundle.train_config["optimizer"] == "adam"
    accuracy = (bundle.model(tiny_dataset.test.x).argmax(1) == tiny_dataset.test.y).float().mean()
    assert accuracy > 0.9


@pytest.mark.parametrize("schedule", ["cosine", "none"])
def test_the_learning_rate_of_every_step(schedule, monkeypatch):
    """The lr each step uses, read from the optimizer inside the objective."""
    from obliviate import training

    made = []
    real = training.make_optimizer
    monkeypatch.setattr(training, "make_optimizer", lambda p, c: made.append(real(p, c)) or made[-1])
    seen = []

    def objective(model, x, y):
        seen.append(made[0].param_groups[0]["lr"])
        return torch.nn.functional.cross_entropy(model(x), y)

    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(20, 3), torch.arange(20) % 2
    config = TrainConfig(steps=8, batch_size=5, lr=0.4, schedule=schedule)
    fit(model, x, y, config, objective=objective, progress=False)
    assert len(seen) == 8
    if schedule == "none":
        assert seen == [0.4] * 8
    else:
        expected = [0.4 * (1 + math.cos(math.pi * t / 8)) / 2 for t in range(8)]
        assert seen == pytest.approx(expected)


def test_a_diverging_loss_stops_training(tiny_dataset):
    with pytest.raises(ObliviateError, match="the loss became .* at step .*; lower the learning rate"):
        obliviate.train(tiny_dataset, "fc", config=TrainConfig(lr=1e12, epochs=5, momentum=0.0),
                        codes=None, progress=False)  # fmt: skip


def test_non_finite_weights_after_training_write_nothing(tiny_dataset, monkeypatch):
    from obliviate import api

    def breaks_a_weight(model, *args, **kwargs):
        with torch.no_grad():
            model.classifier.bias[0] = float("inf")
        return [0.0]

    monkeypatch.setattr(api, "fit", breaks_a_weight)
    with pytest.raises(ObliviateError, match="training diverged: non-finite weights in "
                                             "classifier.bias; nothing was written"):
        obliviate.train(tiny_dataset, "fc", config=TrainConfig(epochs=1), progress=False)


def test_code_mode_mix_doubles_the_batch_with_mixtures():
    codes = MnemonicCodes(torch.tensor([[0.0, 0.0], [1.0, 2.0]]),
                          CodeConfig(mode="mix", strength=0.25))  # fmt: skip
    x, y = torch.tensor([[4.0, 8.0], [0.0, 4.0]]), torch.tensor([1, 0])
    out_x, out_y = codes.augment(x, y)
    assert torch.equal(out_y, torch.tensor([1, 0, 1, 0]))
    assert torch.equal(out_x, torch.tensor([[4.0, 8.0], [0.0, 4.0], [3.25, 6.5], [0.0, 3.0]]))


def test_cli_training_options_reach_the_file(cli, tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    code, _, err = cli("train", "--epochs", "1", "--optimizer", "adam", "--schedule", "cosine",
                       "--lr", "0.01", "--code-mode", "mix", "--code-strength", "0.5", "--out", a)
    assert code == 0, err
    bundle = obliviate.load(a)
    assert (bundle.train_config["optimizer"], bundle.train_config["schedule"]) == ("adam", "cosine")
    assert (bundle.codes.config.mode, bundle.codes.config.strength) == ("mix", 0.5)
    code, _, err = cli("train", "--epochs", "1", "--no-codes", "--out", b)
    assert code == 0, err
    assert obliviate.load(b).codes is None and obliviate.load(b).train_config["optimizer"] == "sgd"
    for option, value, message in (("--optimizer", "rmsprop", "optimizer must be"),
                                   ("--schedule", "step", "schedule must be"),
                                   ("--code-mode", "blend", "code mode")):  # fmt: skip
        code, _, err = cli("train", "--epochs", "1", option, value, "--out", tmp_path / "c.safetensors")
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "b.safetensors"]


def forgotten_by_the_head(bundle, c):
    """``bundle``'s model with class ``c``'s classifier row silenced: the features still know
    the class, so a relearn probe brings it back."""
    model = bundle.clone().model
    with torch.no_grad():
        model.classifier.weight[c] = 0.0
        model.classifier.bias[c] = -100.0
    return model


def test_relearn_probe_moves_only_the_classifier(tiny_bundle, tiny_dataset):
    model = forgotten_by_the_head(tiny_bundle, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probed = relearn_probe(model, tiny_dataset.train, RelearnConfig(steps=50, lr=0.05))
    for name, value in probed.state_dict().items():
        if name.startswith("classifier."):
            assert not torch.equal(value, before[name]), name
        else:
            assert torch.equal(value, before[name]), name
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # input kept
    assert not probed.training


def test_relearn_error_is_low_when_only_the_head_forgot(tiny_bundle, tiny_dataset):
    """Silencing a class's row leaves its features intact: the probe brings the class back
    (FE 100, RE near 0), and S averages A_R with the mean of FE and RE (Eqs. 8-9)."""
    model = forgotten_by_the_head(tiny_bundle, 2)
    report = evaluate_model(model, tiny_dataset, [2],
                            relearn=RelearnConfig(steps=100, lr=0.05, batch_size=32))  # fmt: skip
    assert report.forget_err == 100.0 and report.relearn_err <= 10.0
    assert report.score == pytest.approx((report.retain_acc + (100.0 + report.relearn_err) / 2) / 2)
    assert evaluate_model(model, tiny_dataset, [2], relearn=RelearnConfig(steps=0)).relearn_err is None


def test_forget_with_a_dataset_name(digits_bundle, digits):
    out = obliviate.forget(digits_bundle, [0], device="cpu", data="digits")
    record = out.history[-1]
    assert record["data"]["forget_samples"] == int((digits.train.y == 0).sum())
    assert record["data"]["retain_samples"] == int((digits.train.y != 0).sum())
    assert "data" in record["verification"]["on"] and record["verified"] is True
    with pytest.raises(ObliviateError, match="unknown dataset"):
        obliviate.forget(digits_bundle, [0], device="cpu", data="nosuch")


def test_cli_model_options_reach_the_architecture_and_the_file(cli, tmp_path):
    out = tmp_path / "r.safetensors"
    code, _, err = cli("train", "--model", "resnet18", "--model-option", "width=4", "--epochs", "1",
                       "--out", out)  # fmt: skip
    assert code == 0, err
    bundle = obliviate.load(out)
    assert bundle.arch_kwargs == {"width": 4}
    net = bundle.model.backbone
    assert [net.conv1.out_channels, net.layer1[0].conv2.out_channels,
            net.layer4[1].conv2.out_channels, bundle.model.classifier.in_features] == [4, 4, 32, 32]
    assert isinstance(net.layer2[0].bn1, torch.nn.BatchNorm2d)
    for items, message in ((["widht=4"], "has no option 'widht'; known: width"),
                           (["width=x"], "width='x' of 'resnet18' must be an int"),
                           (["width=0"], "width must be a whole number >= 1"),
                           (["width"], "takes KEY=VALUE")):  # fmt: skip
        args = [a for item in items for a in ("--model-option", item)]
        code, _, err = cli("train", "--model", "resnet18", *args, "--epochs", "1",
                           "--out", tmp_path / "bad.safetensors")  # fmt: skip
        assert code == 2 and message in err and err.count("\n") == 1, err
    code, _, err = cli("train", "--model", "torchvision:resnet18", "--model-option", "width=4",
                       "--epochs", "1", "--out", tmp_path / "bad.safetensors")  # fmt: skip
    assert code == 2 and "obliviate's own architectures" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.safetensors"]


def test_the_standard_resnet18_is_torchvisions_and_a_narrow_one_scales_every_stage():
    from torchvision.models import resnet18

    from obliviate.models import create_model

    ours = create_model("resnet18", input_shape=(3, 8, 8), num_classes=10)
    theirs = resnet18(num_classes=10).state_dict()
    shapes = {k.removeprefix("backbone."): v.shape for k, v in ours.state_dict().items()}
    assert {k: v for k, v in shapes.items() if not k.startswith(("classifier", "conv1"))} == \
        {k: v.shape for k, v in theirs.items() if not k.startswith(("fc.", "conv1"))}  # fmt: skip
    narrow = create_model("resnet18", input_shape=(1, 8, 8), num_classes=3, width=8)
    for i, stage in enumerate((narrow.backbone.layer1, narrow.backbone.layer2,
                               narrow.backbone.layer3, narrow.backbone.layer4)):  # fmt: skip
        assert {b.conv1.out_channels for b in stage} == {8 << i}
        assert all(b.bn2.weight.eq(1).all() and b.bn2.bias.eq(0).all() for b in stage)
    assert narrow(torch.zeros(2, 1, 8, 8)).shape == (2, 3)
    assert sum(p.numel() for p in narrow.parameters()) < sum(p.numel() for p in ours.parameters()) / 40
