"""Commands of recoverable forgetting (LIRF, obliviate.recoverable): deposit, withdraw."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli.describe import lirf_table
from obliviate.cli.group import app
from obliviate.cli.options import (
    Overwrite,
    api,
    check_dataset,
    check_model_names,
    check_outputs,
    console,
    err_console,
    load,
    parse_classes,
    parse_hyperparameters,
    refuse_missed_goal,
    save,
    write_json_atomic,
)
from obliviate.errors import ObliviateError


@app.command("deposit")
def deposit_cmd(
    model_file: Annotated[Path, typer.Argument(help="Original model, or a target to deposit more from (.safetensors).")],
    classes: Annotated[list[str], typer.Option("--classes", help="Classes of one deposit set, comma-separated (repeat for several modules, deposited at once).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the target network.")],
    module: Annotated[list[Path], typer.Option("--module", help="Where to write each deposit module (one per --classes).")],
    data: Annotated[Optional[str], typer.Option(help="Dataset holding the deposit samples (default: the model's).")] = None,
    hp: Annotated[Optional[list[str]], typer.Option("--hp", help="Deposit setting KEY=VALUE: block, prune_ratio, epochs, lr, lambda_kp, lambda_re, lambda_pt, lambda_at, logit_loss (mse|kd), random_labels (preserved|all), ...")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write the record and test metrics as JSON here.")] = None,
    data_dir: Optional[Path] = None,
    seed: int = 0,
    device: Optional[str] = None,
    force: Annotated[bool, typer.Option("--force", help="Write the target and modules even if the deposit missed its goal (recorded as goal_met: false).")] = False,
    overwrite: Overwrite = False,
) -> None:
    """LIRF knowledge deposit: take classes' knowledge out of a model into deposit modules.

    A deposit that misses its goal (the target still knows the classes) exits 2 and writes
    nothing, unless --force."""
    from obliviate.recoverable import (
        LIRFSettings,
        deposit_bundle,
        deposit_records,
        lirf_accuracy,
        save_module,
        withdraw,
    )

    if len(module) != len(classes):
        raise ObliviateError(f"give one --module file per --classes set: {len(classes)} sets, "
                             f"{len(module)} module files")  # fmt: skip
    check_outputs([out, *module, report], [model_file], overwrite=overwrite)
    check_model_names([out, *module])
    settings = LIRFSettings.from_strings(parse_hyperparameters(hp or []), seed=seed)
    bundle = load(model_file)
    sets = [parse_classes(c, bundle) for c in classes]
    if data is not None:
        check_dataset(data)
    dataset = api.bundle_dataset(bundle, data, data_dir)
    api.check_dataset_fits(bundle, dataset)
    target, modules, result = deposit_bundle(bundle, dataset, sets, settings, device=device,
                                             progress=True)  # fmt: skip
    taken = [c for r in deposit_records(target) for s in r["classes"] for c in s]
    x, y = dataset.test.x, dataset.test.y
    metrics = {"original": result.goal["original"], "target": result.goal["target"],
               "recover (these modules)": lirf_accuracy(withdraw(target, modules).model, x, y, taken)}  # fmt: skip
    console.print(lirf_table(f"{dataset.name}: deposited {result.record['classes']} (test %)", metrics))
    goal_met = result.goal["met"]
    advice = "try " + " ".join(f"--hp {k}={v:g}" for k, v in result.goal["try"].items())
    if not goal_met and not force:
        refuse_missed_goal(f"{result.goal['missed']}; {advice}")
    save(target, out)
    for m, path in zip(modules, module, strict=True):
        save_module(m, path)
    if report is not None:
        write_json_atomic(report, {"record": result.record, "losses": result.losses, "test": metrics,
                                   "goal_met": goal_met})  # fmt: skip
    err_console.print(f"deposited {result.record['classes']} in {result.seconds:.1f} s; wrote {out} and "
                      f"{', '.join(str(p) for p in module)}")  # fmt: skip
    if not goal_met:
        err_console.print(f"WARNING: written with --force although {result.goal['missed']}; "
                          f"{advice}", highlight=False, soft_wrap=True)  # fmt: skip


@app.command("withdraw")
def withdraw_cmd(
    target_file: Annotated[Path, typer.Argument(help="Target network (or a recover net) from 'obliviate deposit'.")],
    modules: Annotated[Optional[list[Path]], typer.Argument(help="Deposit modules to withdraw (any number, any order).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the recover net.")] = Path("recovered.safetensors"),
    data: Annotated[Optional[str], typer.Option(help="Report test metrics on this dataset (no data is needed to withdraw).")] = None,
    data_dir: Optional[Path] = None,
    overwrite: Overwrite = False,
) -> None:
    """LIRF knowledge withdrawal: put deposited classes back into a target network."""
    from obliviate.recoverable import deposit_records, lirf_accuracy, load_module, withdraw

    check_outputs([out], [target_file, *(modules or [])], overwrite=overwrite)
    check_model_names([out])
    if data is not None:
        check_dataset(data)
    bundle = load(target_file)
    loaded = [load_module(p) for p in modules or []]
    recovered = withdraw(bundle, loaded)
    dataset = api.resolve_dataset(data, data_dir, False) if data is not None else None
    if dataset is not None:
        api.check_dataset_fits(bundle, dataset)
    save(recovered, out)
    if dataset is not None:
        taken = [c for r in deposit_records(bundle) for s in r["classes"] for c in s]
        x, y = dataset.test.x, dataset.test.y
        console.print(lirf_table(f"{dataset.name}: deposited classes {taken} (test %)", {
            "target": lirf_accuracy(bundle.model, x, y, taken),
            "recover net": lirf_accuracy(recovered.model, x, y, taken)}))  # fmt: skip
    back = recovered.history[-1]["classes"]
    err_console.print(f"withdrew {len(loaded)} module(s), classes {back} back; wrote {out}")
