"""Models obliviate did not train: image folders, `wrap`, weights files, and `obliviate retrofit`
end to end through the installed console script (torchvision resnet18 and a timm model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import obliviate
from obliviate.api import bundle_dataset
from obliviate.data.folder import FolderOptions, ImageFiles
from obliviate.errors import ObliviateError
from obliviate.pretrained import retrofit, source_model, wrap
from obliviate.training import TrainConfig, fit

SCRIPT = Path(sys.executable).with_name("obliviate")
CLASSES = ("cat", "dog", "fox")


def write_image_folder(root: Path, per_class: dict[str, int], size: int = 20, seed: int = 0) -> Path:
    """PNG files in torchvision's ImageFolder layout; class k is brightest in channel k."""
    rng = np.random.default_rng(seed)
    for split, n in per_class.items():
        for k, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 60, (size, size + 4, 3), dtype=np.uint8)
                pixels[..., k] += 150
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("images"), {"train": 16, "val": 6})


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


# -- image folders -----------------------------------------------------------------------------


def test_folder_dataset_reads_splits_classes_and_transforms(image_folder):
    data = obliviate.load_dataset(f"folder:{image_folder}",
                                  options=FolderOptions(image_size=12, resize=16))  # fmt: skip
    assert data.class_names == CLASSES and data.num_classes == 3
    assert data.input_shape == (3, 12, 12)
    assert data.train.x.shape == (48, 3, 12, 12) and len(data.test) == 18
    assert data.options["image_size"] == 12 and data.options["resize"] == 16
    # normalised with ImageNet's statistics: the dominant channel of class k is high
    for k in range(3):
        means = data.train.x[data.train.y == k].mean(dim=(0, 2, 3))
        assert int(means.argmax()) == k


def test_large_folder_streams_from_disk_and_refuses_whole_set_operations(image_folder):
    data = obliviate.load_dataset(f"folder:{image_folder}",
                                  options=FolderOptions(image_size=8, max_memory_gib=0))  # fmt: skip
    x = data.train.x
    assert isinstance(x, ImageFiles) and x.shape == (48, 3, 8, 8)
    subset = data.train.of_classes([1])
    assert isinstance(subset.x, ImageFiles) and len(subset) == 16
    assert subset.x[torch.arange(3)].shape == (3, 3, 8, 8)
    eager = obliviate.load_dataset(f"folder:{image_folder}", options=FolderOptions(image_size=8))
    assert torch.allclose(subset.x[:16], eager.train.of_classes([1]).x)
    with pytest.raises(ObliviateError, match="whole image set in memory"):
        torch.cat([x, x])
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    losses = fit(net, x, data.train.y, TrainConfig(steps=3, batch_size=16), progress=False)
    assert all(np.isfinite(losses))


@pytest.mark.parametrize("layout, message", [
    ({"train": 2}, "no val/ \\(or test/\\)"),
    ({"val": 2}, "no train/"),
])  # fmt: skip
def test_folder_without_a_split_is_refused(tmp_path, layout, message):
    root = write_image_folder(tmp_path / "f", layout, size=6)
    with pytest.raises(ObliviateError, match=message):
        obliviate.load_dataset(f"folder:{root}")


def test_folder_splits_with_different_classes_are_refused(tmp_path):
    root = write_image_folder(tmp_path / "f", {"train": 2, "val": 2}, size=6)
    (root / "val" / "cat" / "0.png").rename(root / "val" / "0.png")
    for f in (root / "val" / "cat").iterdir():
        f.unlink()
    (root / "val" / "cat").rmdir()
    with pytest.raises(ObliviateError, match="different classes"):
        obliviate.load_dataset(f"folder:{root}")


# -- wrap and load -----------------------------------------------------------------------------


class HandWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten())  # fmt: skip
        self.out = nn.Linear(16, 10)

    def forward(self, x):
        return self.out(self.body(x))


def test_wrap_a_hand_written_module_then_train_forget_save_and_load(tmp_path, digits):
    module = HandWritten()
    bundle = wrap(module, num_classes=10, input_shape=(1, 8, 8))
    assert bundle.arch == "module:HandWritten" and bundle.arch_kwargs == {"head": "out"}
    assert isinstance(module.out, nn.Linear)  # the caller's module is not changed
    trained = obliviate.train(digits, bundle, config=TrainConfig(epochs=8, lr=0.1),
                              progress=False)  # fmt: skip
    assert trained.codes is not None and trained.stats is not None
    forgotten = obliviate.forget(trained, [4])
    assert forgotten.history[-1]["verified"] is True
    path = obliviate.save(forgotten, tmp_path / "w.safetensors")
    with pytest.raises(ObliviateError, match=r"module=YourModule"):
        obliviate.load(path)
    back = obliviate.load(path, module=HandWritten())
    x = digits.test.x[:32]
    assert torch.equal(back.model(x), forgotten.model(x))
    assert back.forgotten_classes == [4] and back.history == forgotten.history
    report = obliviate.evaluate(back, digits, relearn_steps=0)
    fours = digits.test.of_classes([4])
    with torch.no_grad():  # the test error evaluate reports, counted here
        assert report.forget_err == pytest.approx(
            100.0 * float((back.model(fours.x).argmax(1) != 4).float().mean()), abs=1e-4)
        # and the verified forget's guarantee: no training sample of 4 is called 4
        assert (back.model(digits.train.of_classes([4]).x).argmax(1) != 4).all()

    class Wider(HandWritten):
        def __init__(self) -> None:
            super().__init__()
            self.out = nn.Linear(16, 10)
            self.body[0] = nn.Conv2d(1, 5, 3, padding=1)

    with pytest.raises(ObliviateError, match="do not fit the module given"):
        obliviate.load(path, module=Wider())
    with pytest.raises(ObliviateError, match="does not list its blocks"):
        back.model.blocks()


def test_wrap_replaces_a_head_of_another_size_and_checks_its_input():
    module = nn.Sequential(nn.Flatten(), nn.Linear(12, 7), nn.ReLU(), nn.Linear(7, 1000))
    bundle = wrap(module, num_classes=4, input_shape=(12,), head="3")
    assert bundle.model.head_replaced and bundle.model.classifier.out_features == 4
    with pytest.raises(ObliviateError, match="not an nn.Linear"):
        wrap(module, num_classes=4, input_shape=(12,), head="2")
    with pytest.raises(ObliviateError, match="input_shape"):
        wrap(module, num_classes=4, input_shape=(0,))


def test_a_torchvision_file_loads_back_without_the_module(tmp_path):
    bundle, record = source_model("torchvision:resnet18", num_classes=5, input_shape=(3, 16, 16))
    assert record["kind"] == "random init" and record["head"] == "fc"
    path = obliviate.save(bundle, tmp_path / "r.safetensors")
    back = obliviate.load(path)
    x = torch.randn(2, 3, 16, 16)
    assert back.arch == "torchvision:resnet18"
    assert torch.equal(back.model(x), bundle.model.eval()(x))


def test_weights_files_load_with_their_architecture_and_pickles_are_refused(tmp_path):
    reference = obliviate.models.external.build_architecture("torchvision:resnet18", num_classes=1000)
    pt = tmp_path / "resnet18.pt"
    torch.save({"state_dict": reference.state_dict()}, pt)
    bundle, record = source_model(pt, arch="torchvision:resnet18", num_classes=3,
                                  input_shape=(3, 16, 16))  # fmt: skip
    assert record["kind"] == "weights file" and record["head_replaced"] is True
    conv = bundle.model.backbone.conv1.weight
    assert torch.equal(conv, reference.conv1.weight)
    pickled = tmp_path / "whole.pt"
    torch.save(reference, pickled)  # a whole module: loading it needs unpickling
    with pytest.raises(ObliviateError, match="needs unpickling"):
        source_model(pickled, arch="torchvision:resnet18", num_classes=3, input_shape=(3, 16, 16))
    with pytest.raises(ObliviateError, match="do not fit"):
        source_model(pt, arch="torchvision:resnet34", num_classes=3, input_shape=(3, 16, 16))


# -- retrofit ----------------------------------------------------------------------------------


def test_retrofit_adds_codes_to_a_model_trained_without_them(digits, digits_bundle_no_codes):
    # a model worth keeping (the 2-epoch fixture is near chance, so no drop could show)
    plain = obliviate.train(digits, "fc", config=TrainConfig(epochs=40, lr=0.1), codes=None,
                            progress=False)  # fmt: skip
    out = retrofit(plain, digits, steps=300, codes=obliviate.CodeConfig(t_mix=0.3),
                   config=TrainConfig(lr=0.1), progress=False)  # fmt: skip
    record = out.retrofit
    assert out.codes is not None and out.stats is not None
    assert plain.codes is None  # the input is untouched
    assert record["steps"] == 300 and record["accuracy_before"] > 90
    _assert_record_tells_the_truth(record, out.model, out.codes)
    forgotten = obliviate.forget(out, [3])
    assert forgotten.history[-1]["verified"] is True
    with pytest.raises(ObliviateError, match="already has mnemonic codes"):
        retrofit(out, digits, steps=1)
    with pytest.raises(ObliviateError, match="bring them back"):
        retrofit(_forgotten(digits_bundle_no_codes), digits, steps=1)


def _assert_record_tells_the_truth(record, model, codes):
    """What a retrofit guarantees is its record, not how many codes a given machine's numerics
    learn in so many steps: the codes it calls learned are, by the model, and its goal flags
    follow from what it measured."""
    with torch.no_grad():
        predicted = model.eval()(codes.tensor).argmax(1)
    missed = [int(c) for c in torch.nonzero(predicted != codes.labels()).flatten()]
    assert record["codes_missed"] == missed and record["codes_learned"] == (not missed)
    assert record["code_accuracy"] == pytest.approx(100.0 * (1 - len(missed) / len(codes.tensor)))
    drop = record["accuracy_before"] - record["accuracy_after"]
    assert record["accuracy_drop"] == pytest.approx(drop)
    assert record["accuracy_kept"] == (drop <= record["goal"]["max_accuracy_drop"])
    assert record["goal_met"] == (record["codes_learned"] and record["accuracy_kept"])


def _forgotten(bundle):
    out = bundle.clone()
    out.forgotten_classes = [1]
    return out


@pytest.mark.parametrize("arch, steps", [("torchvision:resnet18", 100), ("timm:test_resnet", 200)])
def test_cli_retrofit_forget_evaluate_end_to_end(image_folder, tmp_path, arch, steps):
    fitted, forgot, report = (tmp_path / n for n in ("r.safetensors", "f.safetensors", "r.json"))
    args = ("retrofit", arch, "--dataset", f"folder:{image_folder}", "--image-size", 12,
            "--steps", steps, "--batch-size", 16, "--t-mix", 0.5, "--lr", 0.02,
            "--code-distribution", "normal", "--out", fitted, "--report", report)  # fmt: skip
    proc = run(*args)
    if proc.returncode == 2:  # a code not learned in so many steps on this machine: refused
        assert "error: the retrofit missed its goal" in proc.stderr, proc.stderr
        assert not fitted.exists() and not report.exists()
        proc = run(*args, "--force")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(report.read_text())
    assert record["source"]["arch"] == arch and record["steps"] == steps
    loaded = obliviate.load(fitted)
    assert loaded.dataset_options["image_size"] == 12 and loaded.retrofit == record
    _assert_record_tells_the_truth(record, loaded.model, loaded.codes)
    # the terminal says what the record says, and warns when codes were missed
    assert f"codes classified as their class: {record['code_accuracy']:.1f} %" in proc.stderr
    warned = f"WARNING: the codes of classes {record['codes_missed']} are not classified"
    assert (warned in proc.stderr) == (not record["codes_learned"]), proc.stderr
    assert ("goal met:" in proc.stderr) == record["goal_met"], proc.stderr
    # the calibrated forget does not need learned codes: it verifies from the statistics
    # (ReLU features, never negative), and every training sample of class 1 is forgotten
    assert record["classes_with_negative_features"] == 0
    proc = run("forget", fitted, "--classes", 1, "--out", forgot)
    assert proc.returncode == 0, proc.stderr
    assert "verified: true" in proc.stderr
    forgotten = obliviate.load(forgot)
    data = bundle_dataset(forgotten, None)
    with torch.no_grad():
        assert (forgotten.model(data.train.of_classes([1]).x).argmax(1) != 1).all()
    proc = run("evaluate", forgot, "--relearn-steps", 5, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # what the command measures, measured here too
    here = obliviate.evaluate(forgotten, data, [1], relearn_steps=0)
    assert result["forget_err"] == pytest.approx(here.forget_err)
    assert result["per_class_acc"] == pytest.approx({str(k): v for k, v in
                                                     here.per_class_acc.items()})  # fmt: skip


def test_cli_retrofit_bad_input_is_one_line_exit_2_and_writes_nothing(image_folder, tmp_path):
    out = tmp_path / "out.safetensors"
    wrong = tmp_path / "wrong.safetensors"
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.zeros(3, 7)}, str(wrong))
    pickled = tmp_path / "net.pt"
    torch.save(nn.Linear(2, 2), pickled)
    no_val = write_image_folder(tmp_path / "noval", {"train": 1}, size=6)
    folder = f"folder:{image_folder}"
    cases = {
        "unknown architecture": (["torchvision:resnet1800", "--dataset", folder],
                                 "obliviate list architectures"),
        "weights that do not fit": ([wrong, "--arch", "torchvision:resnet18", "--dataset", folder],
                                    "do not fit"),
        "folder without the split": (["torchvision:resnet18", "--dataset", f"folder:{no_val}"],
                                     "no val/"),
        ".pt that needs unpickling": ([pickled, "--arch", "torchvision:resnet18", "--dataset",
                                       folder], "needs unpickling"),
        "weights file without --arch": ([wrong, "--dataset", folder], "--arch"),
        "missing source file": ([tmp_path / "nosuch.pt", "--dataset", folder], "does not exist"),
    }  # fmt: skip
    for name, (args, message) in cases.items():
        proc = run("retrofit", *args, "--steps", 1, "--out", out)
        assert proc.returncode == 2, (name, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (name, proc.stderr)
        assert message in lines[0], (name, lines[0])
        assert not out.exists(), name


def test_the_public_names_are_the_functions():
    assert obliviate.retrofit is retrofit and obliviate.wrap is wrap
    assert obliviate.source_model is source_model


def test_list_architectures_names_torchvision_and_timm(cli):
    code, out, _ = cli("list", "architectures", "--filter", "resnet18")
    assert code == 0
    assert "torchvision:resnet18" in out and "timm:resnet18" in out
