"""Commands that show what obliviate has: list, demo."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from obliviate.cli.describe import describe_forget, report_table
from obliviate.cli.group import app
from obliviate.cli.options import (
    DATASETS,
    METHODS,
    check_choice,
    console,
    hyperparameter_defaults,
    model_options,
    trainable_models,
)


@app.command("list")
def list_cmd(
    what: Annotated[Optional[str], typer.Argument(help="'architectures' lists the torchvision and timm names retrofit and train take.")] = None,
    filter_: Annotated[Optional[str], typer.Option("--filter", help="Only architecture names containing this.")] = None,
) -> None:
    """List the registered datasets, models and unlearning methods (with the data they need)."""
    if what is not None:
        check_choice(what, ["architectures"], "list")
        from obliviate.models.external import timm_names, torchvision_names

        for lib, names in (("torchvision", torchvision_names()), ("timm", timm_names())):
            shown = [n for n in names if not filter_ or filter_ in n]
            if lib == "timm" and not names:
                console.print("[bold]timm[/]: not installed (pip install 'obliviate\\[timm]')")
                continue
            console.print(f"[bold]{lib}[/] ({len(shown)}): " + ", ".join(f"{lib}:{n}" for n in shown),
                          soft_wrap=True, highlight=False)  # fmt: skip
        return
    console.print(f"[bold]datasets[/]: {', '.join(DATASETS.names())}")
    console.print("[bold]models[/] (train --model-option KEY=VALUE sets an option):")
    for name in trainable_models():
        shown = ", ".join(f"{k}={v}" for k, v in model_options(name).items()) or "none"
        console.print(f"  [bold]{name}[/]: options {shown}", soft_wrap=True, highlight=False)
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
    console.print("digits: forget class 0 with mnemonic codes (no data used)", highlight=False)
    console.print(report_table({"before": result.before, "after forgetting": result.after},
                               title=None, forget_classes=[0]))  # fmt: skip
    for line in describe_forget(record):
        console.print(line, highlight=False, soft_wrap=True)
