"""Commands of the benchmark and the paper's analyses: bench, sweep, analyze."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from obliviate.cli.describe import fmt_number
from obliviate.cli.group import app
from obliviate.cli.options import (
    Overwrite,
    api,
    check_output_directory,
    console,
    csv_floats,
    csv_ints,
    err_console,
    load,
    parse_classes,
)
from obliviate.errors import ObliviateError


@app.command("bench")
def bench_cmd(
    out: Annotated[Path, typer.Option("--out", help="Run directory (results.jsonl, table, plots, report).")],
    config: Annotated[Optional[Path], typer.Option(help="TOML file with the grid; flags override it.")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default digits).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Model (default fc).")] = None,
    methods: Annotated[Optional[str], typer.Option(help="Comma-separated methods (default: the paper's).")] = None,
    forget_classes: Annotated[Optional[str], typer.Option(help="Classes to forget, e.g. 0 or 0,3.")] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Comma-separated seeds, e.g. 0,1,2.")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Training epochs of each seed's model.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Training learning rate.")] = None,
    relearn_steps: Annotated[Optional[int], typer.Option(help="Relearn-probe steps (0 skips RE, S).")] = None,
    mia: Annotated[Optional[bool], typer.Option(help="Compute MIA-efficacy.")] = None,
    reference: Annotated[Optional[bool], typer.Option(help="Compare with a retrained model.")] = None,
    data_dir: Optional[Path] = None,
    device: Optional[str] = None,
) -> None:
    """Run methods x seeds on one dataset; write results.jsonl, table.md/.csv, plots, report.html.

    Rerunning the same command skips the rows already in results.jsonl.
    """
    from obliviate.bench import load_config, run_bench
    from obliviate.bench.runner import weak_originals

    grid = load_config(config)
    train = dict(grid.train)
    if epochs is not None:
        train["epochs"] = epochs
    if lr is not None:
        train["lr"] = lr
    overrides = dict(
        dataset=dataset, model=model,
        methods=tuple(m for m in methods.replace(" ", "").split(",") if m) if methods else None,
        forget_classes=csv_ints(forget_classes, "forget-classes"),
        seeds=csv_ints(seeds, "seeds"), relearn_steps=relearn_steps, mia=mia,
        reference=reference, data_dir=str(data_dir) if data_dir else None, train=train,
    )  # fmt: skip
    grid = load_config(config, **overrides)
    if out.exists() and not out.is_dir():
        raise ObliviateError(f"{out} exists and is not a directory; --out names the run directory")
    # a rerun appends to results.jsonl (it resumes): that file is not overwritten
    check_output_directory(out, ["results.jsonl"], overwrite=True)
    results = run_bench(grid, out, device=device)
    console.print((out / "table.md").read_text(), soft_wrap=True, highlight=False)
    err_console.print(f"wrote {out / 'results.jsonl'}, table.md/.csv, per_class.png, report.html")
    for line in weak_originals(grid, results):
        err_console.print(f"warning: {line}", highlight=False, soft_wrap=True)


@app.command("sweep")
def sweep_cmd(
    model_file: Annotated[Path, typer.Argument(help="Model trained with codes (.safetensors).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for sweep.csv and sweep.png.")],
    lambda1_values: Annotated[str, typer.Option(help="lambda1 values, comma-separated.")] = "1e-5,1e-4,1e-3,1e-2,1e-1",
    lambda2_values: Annotated[str, typer.Option(help="lambda2 values, comma-separated.")] = "0.1,1,10,100,1000",
    lambda1: Annotated[Optional[float], typer.Option(help="lambda1 while lambda2 moves (default: per model).")] = None,
    lambda2: Annotated[Optional[float], typer.Option(help="lambda2 while lambda1 moves (default: per model).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the model's).")] = None,
    forget_classes: Annotated[str, typer.Option(help="Classes to forget.")] = "0",
    relearn_steps: int = 1000,
    data_dir: Optional[Path] = None,
    seed: int = 0,
    overwrite: Overwrite = False,
) -> None:
    """The paper's Fig. 3: A_R, FE, RE of mnemonic forgetting as lambda1 or lambda2 moves."""
    from obliviate.bench.analyses import lambda_sweep, plot_lambda_sweep, write_rows_csv

    check_output_directory(out, ["sweep.csv", "sweep.png"], overwrite=overwrite)
    bundle = load(model_file)
    data = api.bundle_dataset(bundle, dataset, data_dir)
    api.check_dataset_fits(bundle, data)
    rows = lambda_sweep(
        bundle, data, parse_classes(forget_classes, bundle),
        lambda1_values=csv_floats(lambda1_values, "lambda1-values"),
        lambda2_values=csv_floats(lambda2_values, "lambda2-values"),
        lambda1=lambda1, lambda2=lambda2, relearn_steps=relearn_steps, seed=seed,
    )  # fmt: skip
    write_rows_csv(rows, out / "sweep.csv")
    plot_lambda_sweep(rows, out / "sweep.png")
    table = Table(title="lambda sweep")
    for column in ("varied", "lambda1", "lambda2", "A_R", "FE", "RE", "sign"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["varied"], f"{r['lambda1']:g}", f"{r['lambda2']:g}", fmt_number(r["retain_acc"]),
                      fmt_number(r["forget_err"]), fmt_number(r["relearn_err"]), r["sign"])  # fmt: skip
    console.print(table)
    err_console.print(f"wrote {out / 'sweep.csv'} and {out / 'sweep.png'}")


@app.command("analyze")
def analyze_cmd(
    with_codes: Annotated[Path, typer.Option(help="Model trained with codes.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the CSV and PNG files.")],
    without_codes: Annotated[Optional[Path], typer.Option(help="The same model trained without codes (for Fig. 2).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the model's).")] = None,
    forget_classes: Annotated[str, typer.Option(help="Forget classes (the first is Fig. 2's class).")] = "0",
    data_dir: Optional[Path] = None,
    overwrite: Overwrite = False,
) -> None:
    """The paper's Fig. 2 (per-class Fisher overlap, with vs without codes) and Fig. 4
    (gradient norms on D, forget codes and retain codes)."""
    from obliviate.bench.analyses import (
        fisher_overlap, gradient_norms, per_layer_rows, plot_per_layer, write_rows_csv,
    )  # fmt: skip

    check_output_directory(out, ["fisher_overlap.csv", "fisher_overlap.png", "gradient_norms.csv",
                                 "gradient_norms.png"], overwrite=overwrite)  # fmt: skip
    coded = load(with_codes)
    data = api.bundle_dataset(coded, dataset, data_dir)
    api.check_dataset_fits(coded, data)
    classes = parse_classes(forget_classes, coded)
    overlap = {"with codes (Fisher from codes)": fisher_overlap(coded, data, forget_class=classes[0])}
    if without_codes is not None:
        plain = load(without_codes)
        api.check_dataset_fits(plain, data)
        overlap["without codes (Fisher from 200 images/class)"] = fisher_overlap(
            plain, data, forget_class=classes[0]
        )
    write_rows_csv(per_layer_rows(overlap), out / "fisher_overlap.csv")
    plot_per_layer(overlap, f"mean cosine similarity of class {classes[0]}'s Fisher to the others",
                   "cosine similarity", out / "fisher_overlap.png")  # fmt: skip
    norms = gradient_norms(coded, data, classes)
    write_rows_csv(per_layer_rows(norms), out / "gradient_norms.csv")
    plot_per_layer(norms, "norm of the mean loss gradient at the trained weights",
                   "L2 norm", out / "gradient_norms.png", log=True)  # fmt: skip
    for label, values in (("Fisher overlap", overlap), ("gradient norms", norms)):
        table = Table(title=label)
        table.add_column("parameter")
        for series in values:
            table.add_column(series, justify="right")
        for row in per_layer_rows(values):
            table.add_row(row["layer"], *[f"{row[s]:.4g}" for s in values])
        console.print(table)
    err_console.print(f"wrote fisher_overlap.csv/.png and gradient_norms.csv/.png to {out}")
