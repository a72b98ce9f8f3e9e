"""The small frictions a newcomer met: units on progress lines, bench saying what it does and
skips, model files named .safetensors, help on every option, the demo title on one line, a
retrofit record without a meaningless ``epochs``."""

from __future__ import annotations

import dataclasses

import pytest
import typer.main
from rich.console import Console

import obliviate
from obliviate import cli as cli_module
from obliviate.cli import info as info_commands
from obliviate.bench import BenchConfig, run_bench


@pytest.fixture
def progress_shown(monkeypatch):
    monkeypatch.delenv("OBLIVIATE_NO_PROGRESS", raising=False)


def test_training_progress_lines_name_their_unit(digits, capsys, progress_shown):
    obliviate.train(digits, "fc", config=obliviate.TrainConfig(epochs=2, lr=0.1))
    err = capsys.readouterr().err
    assert "training fc on digits: 0/20 batches (2 epochs)" in err, err  # 1257 samples, 128 a batch
    assert "training fc on digits: 20/20 batches (2 epochs), " in err, err


def test_a_retrofit_counts_steps_and_records_no_epochs(digits, digits_bundle_no_codes, capsys,
                                                      progress_shown):  # fmt: skip
    with pytest.warns(obliviate.GoalMissedWarning):
        out = obliviate.retrofit(digits_bundle_no_codes, digits, steps=3)
    assert "retrofitting codes (3 steps): 0/3 steps" in capsys.readouterr().err
    assert out.retrofit["steps"] == 3 and "epochs" not in out.retrofit["train_config"]


def test_bench_says_what_it_trains_and_what_a_rerun_skips(tmp_path, capsys, progress_shown):
    grid = BenchConfig(dataset="digits", model="fc", methods=("mnemonic",), seeds=(0,),
                       train={"epochs": 2, "lr": 0.1}, relearn_steps=0, mia=False)  # fmt: skip
    run_bench(grid, tmp_path)
    err = capsys.readouterr().err
    assert "seed 0: training the model every method starts from" in err
    assert "seed 0: retraining without classes [0], the reference" in err
    assert "benchmark: 0/2 rows (method x seed)" in err and "retrain: 0/" in err
    run_bench(grid, tmp_path)
    err = capsys.readouterr().err
    assert "benchmark: all 2 rows are in" in err and "nothing to run" in err
    assert "benchmark: 0/0" not in err
    wider = dataclasses.replace(grid, methods=("mnemonic", "random-label"),
                                hyperparameters={"random-label": {"epochs": 1}})  # fmt: skip
    run_bench(wider, tmp_path)
    assert "benchmark: 2 of 3 rows are in" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["x.pt", "x", "x.safetensors.bak"])
def test_a_model_output_must_be_named_safetensors(cli, tmp_path, out):
    code, _, err = cli("train", "--epochs", "1", "--out", tmp_path / out)
    assert code == 2 and "model files are safetensors" in err and "x.safetensors" in err
    assert list(tmp_path.iterdir()) == []


def test_every_option_of_every_command_has_help():
    group = typer.main.get_command(cli_module.app)
    missing = [(name, p.name) for name, command in group.commands.items()
               for p in command.params if not getattr(p, "help", None)]  # fmt: skip
    assert missing == []


def test_the_demo_title_is_one_line_above_the_table(cli, monkeypatch, digits, digits_bundle):
    from obliviate.demo import DemoResult

    forgotten = obliviate.forget(digits_bundle, [0], device="cpu")
    report = obliviate.evaluate(forgotten, digits, relearn_steps=0)
    result = DemoResult(digits_bundle, forgotten, report, report)
    monkeypatch.setattr("obliviate.demo.run_demo", lambda **kwargs: result)
    monkeypatch.setattr(info_commands, "console", Console(width=60))  # a narrow terminal
    code, stdout, _ = cli("demo")
    assert code == 0
    assert "digits: forget class 0 with mnemonic codes (no data used)" in stdout.splitlines()
