"""The ``obliviate`` command line: parses, builds configs, calls the library, prints."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from obliviate import api
from obliviate.checkpoint import load, save
from obliviate.codes import CODE_MODES, CodeConfig
from obliviate.data import DATASETS
from obliviate.errors import ObliviateError
from obliviate.methods import METHODS
from obliviate.methods.base import coerce_hyperparameters, hyperparameter_defaults
from obliviate.metrics import EvalReport
from obliviate.models import MODELS
from obliviate.training import TrainConfig

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Data-free, one-shot machine unlearning for PyTorch classifiers.",
)
console = Console()
err_console = Console(stderr=True)


def parse_classes(text: str) -> list[int]:
    """``"0,3, 5"`` -> ``[0, 3, 5]``; a bad token is a user error."""
    out = []
    for token in text.replace(" ", "").split(","):
        if not token:
            continue
        try:
            out.append(int(token))
        except ValueError:
            raise ObliviateError(f"class {token!r} is not an integer (use e.g. --classes 0,3)")
    if not out:
        raise ObliviateError("give at least one class, e.g. --classes 0")
    return out


def _check_choice(value: str, choices: list[str], what: str) -> str:
    if value not in choices:
        raise ObliviateError(f"unknown {what} {value!r}; known: {', '.join(choices)}")
    return value


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to ``path`` through a temporary file and a rename."""
    if not path.parent.exists():
        raise ObliviateError(f"directory {path.parent} does not exist; create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_table(reports: dict[str, EvalReport], title: str) -> Table:
    """A rich table with one column per report: summary metrics, then per-class accuracy."""
    table = Table(title=title)
    table.add_column("metric")
    for name in reports:
        table.add_column(name, justify="right")
    rows = [
        ("A_R retain acc %", "retain_acc"),
        ("FE forget err %", "forget_err"),
        ("RE relearn err %", "relearn_err"),
        ("S score", "score"),
        ("forget seconds", "forget_seconds"),
    ]
    for label, key in rows:
        values = [getattr(r, key) for r in reports.values()]
        cells = [f"{v:.4f}" if key == "forget_seconds" and v is not None else _fmt(v) for v in values]
        table.add_row(label, *cells)
    first = next(iter(reports.values()))
    for c in first.per_class_acc:
        table.add_row(f"class {c} acc %", *[_fmt(r.per_class_acc[c]) for r in reports.values()])
    return table


@app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors).")],
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(DATASETS.names())}.")] = "digits",
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(MODELS.names())}.")] = "fc",
    epochs: int = 10,
    seed: int = 0,
    lr: float = 0.01,
    batch_size: int = 128,
    optimizer: Annotated[str, typer.Option(help="sgd or adam.")] = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: Annotated[str, typer.Option(help="none or cosine.")] = "none",
    codes: Annotated[bool, typer.Option(help="Train with mnemonic codes.")] = True,
    code_mode: Annotated[str, typer.Option(help="replace (v2) or mix (v1).")] = "replace",
    t_mix: Annotated[float, typer.Option(help="Code replacement probability.")] = 0.1,
    code_strength: Annotated[float, typer.Option(help="Mixing weight for --code-mode mix.")] = 0.99,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the dataset files are.")] = None,
    download: Annotated[bool, typer.Option(help="Let torchvision download the data.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: auto).")] = None,
) -> None:
    """Train a model with mnemonic codes and write it to one .safetensors file."""
    _check_choice(dataset, DATASETS.names(), "dataset")
    _check_choice(model, MODELS.names(), "model")
    _check_choice(code_mode, list(CODE_MODES), "code mode")
    config = TrainConfig(
        epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer, momentum=momentum,
        weight_decay=weight_decay, schedule=schedule, seed=seed,
    )  # fmt: skip
    code_config = (
        CodeConfig(mode=code_mode, t_mix=t_mix, strength=code_strength, seed=seed)
        if codes
        else None
    )
    bundle = api.train(
        dataset, model, config=config, codes=code_config, data_dir=data_dir,
        download=download, device=device,
    )  # fmt: skip
    save(bundle, out)
    err_console.print(f"wrote {out}")


def parse_hyperparameters(items: list[str]) -> dict[str, str]:
    """``["alpha=10", "dampening=0.5"]`` -> ``{"alpha": "10", "dampening": "0.5"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ObliviateError(f"--hp takes KEY=VALUE (e.g. --hp alpha=10), got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


@app.command("forget")
def forget_cmd(
    model_file: Annotated[Path, typer.Argument(help="Trained model (.safetensors).")],
    classes: Annotated[str, typer.Option(help="Classes to forget, comma-separated: 0,3.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the forgotten model.")],
    method: Annotated[str, typer.Option(help="Unlearning method (see `obliviate list`).")] = "mnemonic",
    hp: Annotated[Optional[list[str]], typer.Option("--hp", help="Method hyperparameter KEY=VALUE (repeatable), e.g. --hp alpha=10.")] = None,
    lambda1: Annotated[Optional[float], typer.Option(help="Mnemonic lambda1 (same as --hp lambda1=...).")] = None,
    lambda2: Annotated[Optional[float], typer.Option(help="Mnemonic lambda2 (same as --hp lambda2=...).")] = None,
    data: Annotated[Optional[str], typer.Option(help="Dataset whose training split data-based methods may use.")] = None,
    data_dir: Optional[Path] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write the audit record as JSON here.")] = None,
    seed: int = 0,
    device: Optional[str] = None,
) -> None:
    """Make a model forget classes with any registered method; write the new model."""
    _check_choice(method, METHODS.names(), "method")
    method_cls = METHODS.get(method)
    class_list = parse_classes(classes)
    hyper = coerce_hyperparameters(method_cls, parse_hyperparameters(hp or []))
    for key, value in (("lambda1", lambda1), ("lambda2", lambda2)):
        if value is not None:
            hyper.update(coerce_hyperparameters(method_cls, {key: repr(value)}))
    if report is not None and not report.parent.exists():
        raise ObliviateError(f"directory {report.parent} does not exist; create it first")
    if not out.parent.exists():
        raise ObliviateError(f"directory {out.parent} does not exist; create it first")
    bundle = load(model_file)
    dataset = None
    if data is not None:
        _check_choice(data, DATASETS.names(), "dataset")
        dataset = api.resolve_dataset(data, data_dir, False)
    result = api.forget(
        bundle, class_list, method=method, data=dataset, seed=seed, device=device, **hyper
    )
    save(result, out)
    record = result.history[-1]
    if report is not None:
        write_json_atomic(report, record)
    sign = f", sign {record['sign']}" if "sign" in record else ""
    err_console.print(
        f"forgot classes {record['classes']} with {method} in {record['seconds']:.4f} s"
        f"{sign}; wrote {out}"
    )


@app.command("evaluate")
def evaluate_cmd(
    model_file: Annotated[Path, typer.Argument(help="Model to evaluate (.safetensors).")],
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the model's).")] = None,
    forget_classes: Annotated[Optional[str], typer.Option(help="Default: the model's forgotten classes.")] = None,
    relearn_steps: Annotated[int, typer.Option(help="Relearn-probe steps (0 skips RE and S).")] = 1000,
    relearn_lr: float = 0.01,
    seed: int = 0,
    data_dir: Optional[Path] = None,
    download: bool = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    device: Optional[str] = None,
) -> None:
    """Evaluate a model: per-class accuracy, A_R, FE, RE (relearn probe), S and forget time."""
    if dataset is not None:
        _check_choice(dataset, DATASETS.names(), "dataset")
    bundle = load(model_file)
    classes = parse_classes(forget_classes) if forget_classes is not None else None
    report = api.evaluate(
        bundle, dataset, classes, relearn_steps=relearn_steps, relearn_lr=relearn_lr,
        seed=seed, data_dir=data_dir, download=download, device=device,
    )  # fmt: skip
    if json_out:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        console.print(report_table({model_file.name: report}, title="evaluation"))


@app.command("demo")
def demo_cmd(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    seed: int = 0,
) -> None:
    """Train on digits with mnemonic codes, forget class 0 without data, show before/after."""
    from obliviate.demo import run_demo

    result = run_demo(seed=seed, progress=not json_out)
    if json_out:
        print(json.dumps(result.to_dict(), indent=2))
        return
    record = result.forgotten.history[-1]
    console.print(
        report_table(
            {"before": result.before, "after forgetting": result.after},
            title="digits: forget class 0 with mnemonic codes (no data used)",
        )
    )
    console.print(
        f"lambda1={record['lambda1']:g} lambda2={record['lambda2']:g} sign={record['sign']} "
        f"forget time {record['seconds'] * 1000:.1f} ms"
    )


@app.command("list")
def list_cmd() -> None:
    """List the registered datasets, models and unlearning methods (with the data they need)."""
    for label, registry in (("datasets", DATASETS), ("models", MODELS)):
        console.print(f"[bold]{label}[/]: {', '.join(registry.names())}")
    console.print("[bold]methods[/] (needs: data it cannot run without; uses: data it takes if given):")
    for name in METHODS.names():
        cls = METHODS.get(name)
        uses = f"; uses {', '.join(sorted(cls.uses))}" if cls.uses else ""
        defaults = ", ".join(f"{k}={v}" for k, v in hyperparameter_defaults(cls).items())
        console.print(
            f"  [bold]{name}[/]: {cls.summary}\n    needs {', '.join(sorted(cls.needs))}{uses}"
            f"\n    --hp defaults: {defaults}",
            soft_wrap=True, highlight=False,
        )


def main() -> None:
    """Entry point: run the app, turning user errors into one line on stderr and exit 2."""
    logging.basicConfig(level=logging.WARNING)
    try:
        app(standalone_mode=False)
    except ObliviateError as exc:
        err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
