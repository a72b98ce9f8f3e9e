"""The data means what the model means: a model file records its class names, data named
otherwise is refused wherever data meets a model, classes can be given by name, and a data
check whose oracle guesses cannot verify a forget."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import obliviate
from obliviate import CodeConfig, NotVerifiedError, ObliviateError, TrainConfig
from obliviate.calibration import data_check
from obliviate.data import DATASETS, Dataset, FolderOptions, Split
from obliviate.data import CIFAR_CLASSES, FASHION_CLASSES

from folders import write_image_folder

SCRIPT = Path(sys.executable).with_name("obliviate")


def run(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def blobs(names: tuple[str, ...], per_class: int = 20, seed: int = 0) -> Dataset:
    """Well separated Gaussian blobs as 1x4x4 'images', one per class, named ``names``."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(len(names), 1, 4, 4, generator=g) * 3

    def make(n: int) -> Split:
        y = torch.arange(len(names)).repeat_interleave(n)
        return Split(centers[y] + 0.05 * torch.randn(len(y), 1, 4, 4, generator=g), y)

    return Dataset("blobs", make(per_class), make(5), len(names), (1, 4, 4), names)


@pytest.fixture(scope="module")
def fashion_named() -> tuple[obliviate.ModelBundle, Dataset]:
    """A model of ten blobs named like Fashion-MNIST's classes."""
    data = blobs(FASHION_CLASSES)
    bundle = obliviate.train(data, "fc", config=TrainConfig(epochs=30, lr=0.1, batch_size=32),
                             model_kwargs={"hidden": 32}, progress=False)  # fmt: skip
    return bundle, data


# --- the model file --------------------------------------------------------------------------


def test_train_records_the_names_and_they_round_trip(fashion_named, tmp_path):
    bundle, _ = fashion_named
    assert bundle.class_names == list(FASHION_CLASSES)
    loaded = obliviate.load(obliviate.save(bundle, tmp_path / "m.safetensors"))
    assert loaded.class_names == list(FASHION_CLASSES)
    # they survive a forget (and its file)
    forgotten = obliviate.forget(bundle, [1], device="cpu", force=True)
    assert forgotten.class_names == list(FASHION_CLASSES)
    again = obliviate.load(obliviate.save(forgotten, tmp_path / "f.safetensors"))
    assert again.class_names == list(FASHION_CLASSES)


def test_every_registered_dataset_names_its_classes(monkeypatch, tmp_path):
    """Each loader, on stand-in files, gives one distinct name per class: the real ones."""
    import obliviate.data as data_module

    images = (torch.zeros(2, 28, 28), torch.tensor([0, 1]))
    idx = images, images
    monkeypatch.setattr(data_module, "load_idx_dataset", lambda *a, **k: idx)
    pixels, labels = np.zeros((2, 32, 32, 3), np.uint8), np.array([0, 1])
    monkeypatch.setattr(data_module, "load_cifar10_arrays",
                        lambda *a, **k: ((pixels, labels), (pixels, labels)))  # fmt: skip
    digits = tuple(str(i) for i in range(10))
    expected = {"digits": digits, "mnist": digits, "fashion-mnist": FASHION_CLASSES,
                "cifar10": CIFAR_CLASSES}  # fmt: skip
    assert sorted(DATASETS.names()) == sorted(expected)  # a new dataset: add its names here
    for name, names in expected.items():
        data = obliviate.load_dataset(name, data_dir=tmp_path)
        assert data.class_names == names and len(set(names)) == data.num_classes, name
    assert FASHION_CLASSES[:2] == ("T-shirt/top", "Trouser") and CIFAR_CLASSES[0] == "airplane"


def test_a_file_without_names_loads_with_none(tiny_bundle, tmp_path):
    path = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    meta, tensors = read(path)
    assert meta["class_names"] is None
    del meta["class_names"]  # a file written before names were recorded
    assert obliviate.load(write(tmp_path, meta, tensors)).class_names is None


@pytest.mark.parametrize("names, message", [
    (["a", "b", "c"], "there are 3 class names for 4 classes"),
    (["a", "b", "c", "a"], "the class name 'a' is given twice"),
    (["a", "b", "c", 3], "the class names must be a list of strings"),
    ("abcd", "the metadata's 'class_names' is a JSON string"),
])  # fmt: skip
def test_damaged_names_are_refused_on_load(tiny_bundle, tmp_path, names, message):
    meta, tensors = read(obliviate.save(tiny_bundle, tmp_path / "m.safetensors"))
    meta["class_names"] = names
    with pytest.raises(ObliviateError, match="damaged") as error:
        obliviate.load(write(tmp_path, meta, tensors))
    assert message in str(error.value) and "\n" not in str(error.value)
    meta["class_names"] = ["a", "b", "c", "d"]
    assert obliviate.load(write(tmp_path, meta, tensors)).class_names == ["a", "b", "c", "d"]


def test_wrap_takes_names_and_refuses_names_that_do_not_fit():
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    bundle = obliviate.wrap(net, num_classes=3, input_shape=(1, 4, 4), class_names=["x", "y", "z"])
    assert bundle.class_names == ["x", "y", "z"]
    with pytest.raises(ObliviateError, match="there are 2 class names for 3 classes"):
        obliviate.wrap(net, num_classes=3, input_shape=(1, 4, 4), class_names=["x", "y"])
    assert obliviate.wrap(net, num_classes=3, input_shape=(1, 4, 4)).class_names is None


def read(path: Path) -> tuple[dict, dict]:
    with safe_open(str(path), framework="pt") as fh:
        return json.loads(fh.metadata()["obliviate"]), {k: fh.get_tensor(k) for k in fh.keys()}


def write(tmp_path: Path, meta: dict, tensors: dict) -> Path:
    path = tmp_path / "edited.safetensors"
    save_file(tensors, str(path), metadata={"obliviate": json.dumps(meta)})
    return path


# --- classes by name -------------------------------------------------------------------------


def test_forget_by_name_is_forget_by_index(fashion_named):
    bundle, _ = fashion_named
    by_index = obliviate.forget(bundle, [1], device="cpu", force=True)
    by_name = obliviate.forget(bundle, ["Trouser"], device="cpu", force=True)
    assert by_name.forgotten_classes == [1] and by_name.history[-1]["classes"] == [1]
    assert by_name.history[-1]["class_names"] == ["Trouser"]
    named_state = by_name.model.state_dict()
    for key, value in by_index.model.state_dict().items():
        assert torch.equal(value, named_state[key]), key
    # an integer string is an index; a name's case may differ when only one name fits
    assert obliviate.forget(bundle, ["1"], device="cpu", force=True).forgotten_classes == [1]
    boot = obliviate.forget(bundle, ["ankle BOOT"], device="cpu", force=True)
    assert boot.forgotten_classes == [9]
    unknown = (r"class 'Hat' is not an integer index \(0..9\) or a class name of this model: "
               "'T-shirt/top', 'Trouser'")
    with pytest.raises(ObliviateError, match=unknown):
        obliviate.forget(bundle, ["Hat"], device="cpu")


def test_a_name_on_a_model_without_names_is_refused(tiny_bundle):
    with pytest.raises(ObliviateError, match="this model file records no class names"):
        obliviate.forget(tiny_bundle, ["Trouser"], device="cpu")


# --- data that means other classes -----------------------------------------------------------


def renamed(data: Dataset, index: int, name: str) -> Dataset:
    names = list(data.class_names)
    names[index] = name
    return Dataset(data.name, data.train, data.test, data.num_classes, data.input_shape,
                   tuple(names))  # fmt: skip


def test_data_with_other_names_is_refused_where_it_meets_the_model(fashion_named):
    bundle, data = fashion_named
    other = renamed(data, 3, "Frock")
    message = ("the data's class 3 is 'Frock' but the model's class 3 is 'Dress': its labels "
               "mean other classes")  # fmt: skip
    for call in (
        lambda: obliviate.forget(bundle, [1], data=other, device="cpu"),
        lambda: obliviate.forget(bundle, [1], method="finetune", data=other, device="cpu"),
        lambda: obliviate.evaluate(bundle, other, relearn_steps=0, device="cpu"),
        lambda: obliviate.depth_evidence(bundle, dataset=other, forget_classes=[1],
                                         original=bundle, device="cpu"),
    ):  # fmt: skip
        with pytest.raises(ObliviateError, match=message):
            call()
    # a model to compare with (evidence's reference or original) is held to the same names
    other_model = dataclasses.replace(bundle, class_names=list(other.class_names))
    with pytest.raises(ObliviateError, match="the other model's class 3 is 'Frock' but this "
                                             "model's class 3 is 'Dress'"):  # fmt: skip
        obliviate.depth_evidence(bundle, dataset=data, forget_classes=[1], original=other_model,
                                 device="cpu")  # fmt: skip
    # data without names is not compared; the same names pass
    nameless = Dataset(data.name, data.train, data.test, data.num_classes, data.input_shape)
    assert obliviate.evaluate(bundle, nameless, relearn_steps=0, device="cpu").retain_acc > 90
    assert obliviate.evaluate(bundle, data, relearn_steps=0, device="cpu").retain_acc > 90


def test_retrofit_takes_the_names_from_its_data_and_refuses_renamed_data(fashion_named):
    _, data = fashion_named
    plain = obliviate.train(data, "fc", config=TrainConfig(epochs=5, lr=0.1, batch_size=32),
                            codes=None, model_kwargs={"hidden": 32}, progress=False)  # fmt: skip
    unnamed = dataclasses.replace(plain, class_names=None)  # e.g. a torchvision model
    with warnings.catch_warnings():  # a few steps: the retrofit's goal is not the point here
        warnings.simplefilter("ignore", obliviate.GoalMissedWarning)
        assert obliviate.retrofit(unnamed, data, steps=2, progress=False,
                                  device="cpu").class_names == list(FASHION_CLASSES)  # fmt: skip
    with pytest.raises(ObliviateError, match="the data's class 0 is 'Top' but the model's class 0 "
                                             "is 'T-shirt/top'"):  # fmt: skip
        obliviate.retrofit(plain, renamed(data, 0, "Top"), steps=2, progress=False, device="cpu")


def test_deposit_and_withdraw_carry_the_names_and_refuse_renamed_data(digits):
    from obliviate.recoverable import LIRFSettings, deposit_bundle, withdraw

    original = obliviate.train(digits, "convnet", config=TrainConfig(epochs=2, lr=0.01), codes=None,
                               model_kwargs={"width": 8}, progress=False)  # fmt: skip
    names = [str(i) for i in range(10)]
    assert original.class_names == names
    with pytest.raises(ObliviateError, match="the data's class 3 is 'three' but the model's class "
                                             "3 is '3'"):  # fmt: skip
        deposit_bundle(original, renamed(digits, 3, "three"), [[0]], LIRFSettings(epochs=1))
    with warnings.catch_warnings():  # one epoch: the deposit's goal is not the point here
        warnings.simplefilter("ignore", obliviate.GoalMissedWarning)
        target, modules, _ = deposit_bundle(original, digits, [[0]], LIRFSettings(epochs=1))
    assert target.class_names == names and withdraw(target, modules).class_names == names


@pytest.fixture(scope="module")
def folder_model(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A model trained on an image folder, the folder, and a copy of it with a class folder
    renamed so that it sorts first (every index before it shifts)."""
    root = tmp_path_factory.mktemp("classnames")
    images = write_image_folder(root / "imgs", per_class=8, classes=("bag", "shirt", "tshirt"))
    data = obliviate.load_dataset(f"folder:{images}", options=FolderOptions(image_size=8))
    bundle = obliviate.train(data, "fc", config=TrainConfig(epochs=20, lr=0.1, batch_size=8),
                             codes=CodeConfig(t_mix=0.2), progress=False)  # fmt: skip
    assert bundle.class_names == ["bag", "shirt", "tshirt"]
    model = obliviate.save(bundle, root / "m.safetensors")
    shutil.copytree(images, root / "imgs_renamed")
    for split in ("train", "val"):
        folder = root / "imgs_renamed" / split
        (folder / "tshirt").rename(folder / "aaa_tshirt")
    return model, images, root / "imgs_renamed"


def test_cli_refuses_a_renamed_class_folder_in_one_line(folder_model, tmp_path):
    model, _, renamed_folder = folder_model
    out = tmp_path / "f.safetensors"
    expected = ("the data's class 0 is 'aaa_tshirt' but the model's class 0 is 'bag': its labels "
                "mean other classes (renamed or added class folders?)")  # fmt: skip
    data = f"folder:{renamed_folder}"
    for args in (["forget", model, "--classes", "2", "--data", data, "--out", out],
                 ["evaluate", model, "--dataset", data, "--relearn-steps", "0"]):  # fmt: skip
        proc = run(*args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_cli_takes_class_names_and_names_the_classes(folder_model, tmp_path):
    model, images, _ = folder_model
    out = tmp_path / "f.safetensors"
    proc = run("forget", model, "--classes", "tshirt", "--data", f"folder:{images}", "--out", out,
               "--force")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "forgot classes [2] (tshirt) with mnemonic" in proc.stderr
    assert obliviate.load(out).forgotten_classes == [2]
    proc = run("evaluate", out, "--relearn-steps", "0")
    assert proc.returncode == 0, proc.stderr
    assert "forget classes: [2] (tshirt) (from the model file's history" in proc.stdout
    assert "class 0 (bag) acc %" in proc.stdout
    proc = run("forget", model, "--classes", "hat", "--out", tmp_path / "g.safetensors")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert ("class 'hat' is not an integer index (0..2) or a class name of this model: 'bag', "
            "'shirt', 'tshirt'") in proc.stderr  # fmt: skip


# --- a data check whose oracle guesses -------------------------------------------------------


def shifted(data: Dataset) -> Dataset:
    """``data`` with every label moved to the next class: inputs of class k labelled k + 1, as
    after a class folder renamed to sort first, but without names to compare."""
    def shift(split: Split) -> Split:
        return Split(split.x, (split.y + 1) % data.num_classes)

    return Dataset(data.name, shift(data.train), shift(data.test), data.num_classes,
                   data.input_shape)  # fmt: skip


def test_data_check_fails_when_the_oracle_is_near_chance():
    y = torch.tensor([0, 2, 3, 0, 2, 3])
    right = torch.nn.functional.one_hot(y, 4).float()
    kw = dict(min_forget_error=99.5, max_retain_drop=1.0)
    # three kept classes: chance 33.3 %, refused below 1.5 x chance = 50 %
    guess = torch.tensor([0, 0, 0, 2, 2, 2])  # the oracle gets 2 of 6: 33.3 %
    out = data_check(None, None, right, y, guess, [0, 2, 3], **kw)
    assert out["passed"] is False and out["oracle_at_chance"] is True
    assert out["reason"].startswith("the data does not fit this model: the model before the "
                                    "forget is at 33.3% on the kept classes (chance 33.3%)")  # fmt: skip
    half = torch.tensor([0, 2, 3, 2, 0, 0])  # 3 of 6: 50 %, not below 1.5 x chance
    out = data_check(None, None, right, y, half, [0, 2, 3], max_retain_drop=100.0,
                     min_forget_error=99.5)  # fmt: skip
    assert out["passed"] is True and out["oracle_at_chance"] is False and "reason" not in out
    # one kept class: the oracle is trivially right, nothing to judge
    one = data_check(None, None, right[:1], y[:1], y[:1], [0], **kw)
    assert one["passed"] is True and one["oracle_at_chance"] is False


def test_forget_refuses_data_on_which_the_model_guesses(tiny_bundle, tiny_dataset, cli,
                                                        monkeypatch, tmp_path):  # fmt: skip
    data = shifted(tiny_dataset)
    with pytest.raises(NotVerifiedError) as error:
        obliviate.forget(tiny_bundle, [1], data=data, device="cpu", depth="output")
    check = error.value.record["verification"]["checks"]["data"]
    assert check["oracle_at_chance"] is True and check["passed"] is False
    assert "the data does not fit this model" in str(error.value)
    assert check["reason"].startswith("the data does not fit this model: the model before the "
                                      "forget is at ")  # fmt: skip
    # the same request on the data the model was trained on verifies
    assert obliviate.forget(tiny_bundle, [1], data=tiny_dataset, device="cpu",
                            depth="output").history[-1]["verified"] is True  # fmt: skip
    # the command line: exit 2, one line, nothing written; --force writes and says why
    from obliviate.cli import forget as forget_commands

    model = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    monkeypatch.setattr(forget_commands, "open_dataset", lambda *args, **kwargs: data)
    out = tmp_path / "f.safetensors"
    args = ["forget", model, "--classes", "1", "--data", "tiny", "--depth", "output", "--out", out]
    code, _, err = cli(*args)
    assert code == 2 and err.count("\n") == 1 and not out.exists()
    assert "the data does not fit this model" in err
    code, _, err = cli(*args, "--force")
    assert code == 0 and "the data does not fit this model" in err
