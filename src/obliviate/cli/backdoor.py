"""The backdoor command: Hayase et al.'s transform forgetting (obliviate.finer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from obliviate.cli.describe import fmt_number
from obliviate.cli.group import app
from obliviate.cli.options import (
    Overwrite,
    TrainConfig,
    check_choice,
    check_model_names,
    check_outputs,
    console,
    err_console,
    parse_classes,
    parse_hyperparameters,
    refuse_missed_goal,
    trainable_models,
    write_json_atomic,
)
from obliviate.errors import ObliviateError


@app.command("backdoor")
def backdoor_cmd(
    out: Annotated[Path, typer.Option("--out", help="JSON report to write.")],
    dataset: Annotated[str, typer.Option(help="Dataset.")] = "fashion-mnist",
    forget_class: Annotated[str, typer.Option("--class", help="Class(es) carrying the transform, e.g. 0.")] = "0",
    transform: Annotated[str, typer.Option(help="line, tile, color, or none (plain sample forgetting).")] = "tile",
    pattern: Annotated[str, typer.Option(help="A (forget samples), B (backdoor), C (leakage).")] = "B",
    method: Annotated[Optional[str], typer.Option(help="paper (Hayase et al.'s loss, the reproduction) or ours (B, C: other-class distillation, a D_f term that keeps its label, a logit calibration fitted on validation data). Default: ours for C (it met C's goals on Fashion-MNIST line) and Fashion-MNIST B line (closest to B's goals there), else paper.")] = None,
    term: Annotated[Optional[str], typer.Option(help="Forgetting term: rld or rnd (the paper's), clean-old or clean-self (ours). Default: rld for paper; ours: rld for B, clean-self for C.")] = None,
    calibration: Annotated[Optional[str], typer.Option(help="ours only: none, offset or offset+scale on the class's logit, fitted on validation sets (default offset).")] = None,
    save_model: Annotated[Optional[Path], typer.Option("--save-model", help="Write the forgotten model (the main variant) here (.safetensors).")] = None,
    tune: Annotated[int, typer.Option("--tune", help="Optuna trials (0: the paper's Table S1 values).")] = 0,
    split: Annotated[str, typer.Option(help="Search validation: holdout (the paper's 20/80 split of D_f) or kfold.")] = "holdout",
    folds: Annotated[int, typer.Option(help="Folds of --split kfold.")] = 5,
    tune_storage: Annotated[Optional[Path], typer.Option(help="SQLite file that keeps the search's trials; a rerun resumes it.")] = None,
    activation: Annotated[str, typer.Option(help="hardtanh-mlp activation: as-written (jumps at |x|=2.83) or continuous.")] = "as-written",
    fisher_on: Annotated[str, typer.Option(help="The remembering term's Fisher over retain (D_r, the paper's experiments) or pretraining (D_f and D_r, its Eq. 7).")] = "retain",
    epochs: Annotated[int, typer.Option(help="Pretraining epochs of the poisoned model.")] = 10,
    lr: Annotated[float, typer.Option(help="Pretraining learning rate.")] = 0.01,
    model: Annotated[str, typer.Option(help="Model (default: the paper's 10-layer MLP).")] = "hardtanh-mlp",
    hp: Annotated[Optional[list[str]], typer.Option("--hp", help="Forgetting setting KEY=VALUE: lr, lambda_kl, lambda_f, epochs, lambda_other (ours).")] = None,
    seed: int = 0,
    data_dir: Optional[Path] = None,
    force: Annotated[bool, typer.Option("--force", help="Write the report (and --save-model) even if the forget missed its pattern's goal (the report says which goals were missed).")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Hayase et al.: poison a model with a transform, make it forget, report the four accuracies.

    A forget that misses its pattern's goal prints its accuracies, exits 2 and writes nothing,
    unless --force."""
    from obliviate.finer.calibration import CALIBRATIONS
    from obliviate.finer.experiment import run_backdoor
    from obliviate.finer.forgetting import FISHER_DATA, FORGETTING_TERMS, PATTERNS
    from obliviate.finer.ours import FINER_METHODS
    from obliviate.finer.transforms import TRANSFORMS

    check_choice(pattern, list(PATTERNS), "pattern")
    check_choice(transform, TRANSFORMS.names(), "transform")
    if method is not None:
        check_choice(method, list(FINER_METHODS), "method")
    if term is not None:
        check_choice(term, list(FORGETTING_TERMS), "forgetting term")
    if calibration is not None:
        check_choice(calibration, list(CALIBRATIONS), "calibration")
    check_choice(model, trainable_models(), "model")
    check_choice(split, ["holdout", "kfold"], "split")
    check_choice(activation, ["as-written", "continuous"], "activation")
    check_choice(fisher_on, list(FISHER_DATA), "Fisher data")
    check_outputs([out, save_model], overwrite=overwrite)
    if save_model is not None:
        check_model_names([save_model])
    settings: dict[str, float] = {}
    known = ("lr", "lambda_kl", "lambda_f", "epochs", "lambda_other")
    for key, value in parse_hyperparameters(hp or []).items():
        if key not in known:
            raise ObliviateError(f"unknown setting {key!r}; known: {', '.join(known)}")
        try:
            settings[key] = int(value) if key == "epochs" else float(value)
        except ValueError:
            raise ObliviateError(f"{key}={value!r} is not a number") from None
    report = run_backdoor(
        dataset, parse_classes(forget_class), transform, pattern, method=method, term=term,
        calibration=calibration, save_model=save_model, model=model,
        pretrain=TrainConfig(epochs=epochs, lr=lr, seed=seed), tune_trials=tune, tune_folds=folds,
        tune_split=split, tune_storage=f"sqlite:///{tune_storage}" if tune_storage else None,
        model_kwargs={"activation": activation} if model == "hardtanh-mlp" else None,
        fisher_on=fisher_on, settings=settings, seed=seed, data_dir=data_dir,
        save_if_missed=force,
    )  # fmt: skip
    method = report["method"]
    table = Table(title=f"{dataset}: {transform} on class(es) {report['classes']}, pattern {pattern} "
                        "(test accuracy %)")  # fmt: skip
    table.add_column("model")
    for name in ("D_r", "D_f", "D_f,clean", "D_r,extra"):
        table.add_column(name, justify="right")
    for label, accs in report["accuracy"].items():
        table.add_row(label, *[fmt_number(accs[k]) for k in ("D_r", "D_f", "D_f,clean", "D_r,extra")])
    console.print(table)
    s = report["settings"]
    other = f" lambda_other={s['lambda_other']:g}" if method == "ours" else ""
    err_console.print(f"method {method}, term {report['term']}: lr={s['lr']:g} "
                      f"lambda_kl={s['lambda_kl']:g} lambda_f={s['lambda_f']:g}{other}",
                      highlight=False, soft_wrap=True)  # fmt: skip
    if report["calibration"] is not None:
        c = report["calibration"]
        err_console.print(f"calibration of class(es) {c['classes']}: logit * {c['scale']:.3g} "
                          f"+ {c['offset']:.3g}, fitted on validation sets (their lowest margin "
                          f"above the goals: {100 * c['score_before']:+.1f} -> "
                          f"{100 * c['score_after']:+.1f} points)", highlight=False)  # fmt: skip
    for note in report["notes"]:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True)
    goal = report["goal"]
    for name, ok in goal["goals"].items():
        err_console.print(f"goal of {goal['variant']}: {name}: {'met' if ok else 'MISSED'}",
                          highlight=False, soft_wrap=True)  # fmt: skip
    hint = "--hp, --tune N" + (", --method ours" if method == "paper" and pattern != "A" else "")
    missed = f"{goal['variant']} missed its goal ({goal['criterion']}); try other settings ({hint})"
    if not goal["met"] and not force:
        refuse_missed_goal(missed, recorded="goal.met: false in the report")
    write_json_atomic(out, report)
    err_console.print(f"wrote {out}" + (f" and {save_model}" if save_model else ""),
                      highlight=False)  # fmt: skip
    if not goal["met"]:
        err_console.print(f"WARNING: written with --force although {missed}", highlight=False,
                          soft_wrap=True)  # fmt: skip
