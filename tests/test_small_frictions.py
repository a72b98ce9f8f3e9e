"""Issue 36's smaller frictions, as a newcomer meets them: library messages at the command line
name flags, not keyword arguments (and Python's name keyword arguments, not flags); training on
the CPU with large inputs says before the work that it will be slow, and after the first step
how long it will take. Each test runs the user's command, through the installed script or
in-process, and fails on the old behaviour."""

from __future__ import annotations

import os

import pytest
import torch

import obliviate
from obliviate import training
from obliviate.data import Dataset, Split
from obliviate.errors import ObliviateError

from folders import write_image_folder
from installed import one_error_line, run

PYTHON_SYNTAX = ("=DATASET", "relearn_lr", "TrainConfig(", "force=True", "CLI:")




# -- library messages in the command line's words ---------------------------------------------


def test_a_method_without_its_data_names_the_flag_at_the_command_line(model_file, tmp_path):
    proc = run("forget", model_file, "--classes", "0", "--method", "ssd", "--out",
               tmp_path / "f.safetensors")  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "pass --data DATASET" in line
    assert not any(python in line for python in PYTHON_SYNTAX), line


def test_a_bad_relearn_rate_names_the_flag_at_the_command_line(digits_bundle_no_codes, tmp_path):
    digits_model = obliviate.save(digits_bundle_no_codes, tmp_path / "d.safetensors")
    proc = run("evaluate", digits_model, "--relearn-lr", "-1")
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc.stderr)
    assert "the relearn learning rate (--relearn-lr) must be a positive number" in line
    assert not any(python in line for python in PYTHON_SYNTAX), line


def test_python_hears_keyword_arguments_not_flags(tiny_bundle, tiny_dataset):
    with pytest.raises(ObliviateError) as info:
        obliviate.forget(tiny_bundle, [0], method="ssd")
    assert str(info.value).endswith("pass data=DATASET") and "--" not in str(info.value)
    with pytest.raises(ObliviateError) as info:
        obliviate.evaluate(tiny_bundle, tiny_dataset, relearn_lr=-1.0)
    assert "relearn_lr" in str(info.value) and "--" not in str(info.value)
    with pytest.raises(ObliviateError) as info:
        obliviate.forget(tiny_bundle, [3, 1], device="cpu", max_strength=1e-6)
    assert str(info.value).endswith("(force=True keeps the unverified result)")
    assert "--force" in info.value.for_command_line()


# -- training on the CPU with large inputs says it will be slow -------------------------------


def big_images() -> Dataset:
    g = torch.Generator().manual_seed(0)

    def make(n: int) -> Split:
        y = torch.arange(2).repeat_interleave(n)
        return Split(torch.rand(len(y), 1, 128, 128, generator=g), y)

    return Dataset("big", make(8), make(2), 2, (1, 128, 128))


@pytest.fixture
def progress_shown(monkeypatch):
    monkeypatch.delenv("OBLIVIATE_NO_PROGRESS", raising=False)
    monkeypatch.setattr(training, "SLOW_CPU_NOTED_SECONDS", 0.0)  # any estimate is shown


def test_train_on_the_cpu_with_large_inputs_warns_and_estimates(capsys, progress_shown):
    obliviate.train(big_images(), "convnet", device="cpu", codes=None,
                    config=obliviate.TrainConfig(epochs=1, batch_size=4))  # fmt: skip
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("warning: training convnet on the CPU with 1x128x128 inputs"), lines
    assert "will be slow" in lines[0] and "FolderOptions(image_size=...)" in lines[0]
    assert lines[1] == "training convnet on big: 0/4 batches (1 epochs)", lines  # the work after
    estimate = [line for line in lines if "the first step took" in line]
    assert len(estimate) == 1 and "so all 4 will take about" in estimate[0], lines


def test_retrofit_on_the_cpu_with_large_inputs_warns_before_the_work(capsys, progress_shown):
    data = big_images()
    plain = obliviate.train(data, "convnet", config=obliviate.TrainConfig(epochs=1, batch_size=4),
                            device="cpu", codes=None, progress=False)  # fmt: skip
    capsys.readouterr()
    with pytest.warns(obliviate.GoalMissedWarning):  # two steps learn no code
        obliviate.retrofit(plain, data, steps=2, device="cpu")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("warning: retrofitting convnet on the CPU with 1x128x128 inputs"), \
        lines
    assert any("the first step took" in line and "so all 2 will take" in line for line in lines)


def test_small_inputs_train_without_a_warning(digits, capsys, progress_shown, monkeypatch):
    monkeypatch.setattr(training, "SLOW_CPU_SECONDS", 1e9)
    obliviate.train(digits, "fc", config=obliviate.TrainConfig(epochs=1), device="cpu")
    assert "warning" not in capsys.readouterr().err


def test_the_command_line_warns_with_its_own_flag(tmp_path):
    write_image_folder(tmp_path / "images", per_class=2)
    env = {k: v for k, v in os.environ.items() if k != "OBLIVIATE_NO_PROGRESS"}
    proc = run("train", "--dataset", f"folder:{tmp_path / 'images'}", "--image-size", "128",
               "--model", "convnet", "--epochs", "1", "--device", "cpu", "--out",
               tmp_path / "m.safetensors", env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    warning = proc.stderr.splitlines()[0]
    assert warning.startswith("warning: training convnet on the CPU with 3x128x128 inputs"), \
        proc.stderr
    assert "(--image-size N)" in warning and "FolderOptions" not in warning
