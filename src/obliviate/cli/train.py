"""Commands that make a model: train, retrofit (codes into a model trained without them),
stats (record the training statistics again)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from obliviate.cli.describe import describe_retrofit
from obliviate.cli.group import app
from obliviate.cli.options import (
    CodeConfig,
    ImageSize,
    MaxMemory,
    Mean,
    NprocPerNode,
    Overwrite,
    Resize,
    Std,
    TrainConfig,
    api,
    check_choice,
    check_dataset,
    check_model_names,
    check_outputs,
    dataset_train_config,
    err_console,
    image_options,
    parse_model_options,
    load,
    open_dataset,
    refuse_missed_goal,
    save,
    trainable_models,
    write_result,
)
from obliviate.errors import ObliviateError
from obliviate.names import CODE_DISTRIBUTIONS, CODE_MODES, DATASET_NAMES, TRAINABLE_MODEL_NAMES


@app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors).")],
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(DATASET_NAMES)}, or folder:PATH (an image folder with train/ and val/).")] = "digits",
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(TRAINABLE_MODEL_NAMES)}, or torchvision:NAME / timm:NAME (random weights; see 'obliviate list architectures').")] = "fc",
    model_option: Annotated[Optional[list[str]], typer.Option("--model-option", help="Architecture setting KEY=VALUE (repeatable), e.g. --model-option width=16 for resnet18 ('obliviate list' shows each architecture's).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Default per dataset: digits 40, cifar10 200, others 10.")] = None,
    seed: int = 0,
    lr: Annotated[Optional[float], typer.Option(help="Default per dataset: digits and cifar10 0.1, others 0.01.")] = None,
    batch_size: int = 128,
    optimizer: Annotated[str, typer.Option(help="sgd or adam.")] = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: Annotated[Optional[str], typer.Option(help="none or cosine (default: cosine for cifar10, else none).")] = None,
    codes: Annotated[bool, typer.Option(help="Train with mnemonic codes.")] = True,
    code_mode: Annotated[str, typer.Option(help="replace (v2) or mix (v1).")] = "replace",
    t_mix: Annotated[float, typer.Option(help="Code replacement probability.")] = 0.1,
    code_strength: Annotated[float, typer.Option(help="Mixing weight for --code-mode mix.")] = 0.99,
    code_distribution: Annotated[str, typer.Option(help="uniform (U[0,1), official code) or normal (N(0,1), v2 Alg. 1).")] = "uniform",
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the dataset files are.")] = None,
    download: Annotated[bool, typer.Option(help="Let torchvision download the data.")] = False,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: auto).")] = None,
    image_size: ImageSize = None,
    resize: Resize = None,
    mean: Mean = None,
    std: Std = None,
    max_memory_gib: MaxMemory = 2.0,
    nproc_per_node: NprocPerNode = 1,
    overwrite: Overwrite = False,
) -> None:
    """Train a model with mnemonic codes and write it to one .safetensors file."""
    check_dataset(dataset)
    if not model.startswith(("torchvision:", "timm:")):
        check_choice(model, trainable_models(), "model")
    model_kwargs = parse_model_options(model_option or [], model)
    check_outputs([out], overwrite=overwrite)
    check_model_names([out])
    check_choice(code_mode, list(CODE_MODES), "code mode")
    check_choice(code_distribution, list(CODE_DISTRIBUTIONS), "code distribution")
    config = dataset_train_config(
        dataset, epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer,
        momentum=momentum, weight_decay=weight_decay, schedule=schedule, seed=seed,
    )  # fmt: skip
    job = _join_job(nproc_per_node, config.batch_size)  # before the data: a usage error costs nothing
    data = open_dataset(dataset, data_dir, download,
                    image=image_options(image_size, resize, mean, std, max_memory_gib))  # fmt: skip
    code_config = (
        CodeConfig(mode=code_mode, t_mix=t_mix, strength=code_strength, seed=seed,
                   distribution=code_distribution)
        if codes
        else None
    )
    bundle = api.train(data, model, config=config, codes=code_config, device=device,
                       distributed=job, model_kwargs=model_kwargs)  # fmt: skip
    if job is not None and not job.is_main:
        return  # rank 0 evaluates and writes
    from obliviate.bench.runner import WEAK_CLASS_ACCURACY

    save(bundle, out)
    report = api.evaluate(bundle, data, [], device=device)
    worst = min((a, c) for c, a in report.per_class_acc.items() if a is not None)
    err_console.print(
        f"trained {model} on {data.name} ({config.epochs} epochs, lr {config.lr:g}): test "
        f"accuracy {report.retain_acc:.1f} %, lowest class {worst[1]} at {worst[0]:.1f} %; "
        f"wrote {out}", highlight=False, soft_wrap=True,
    )  # fmt: skip
    if worst[0] < WEAK_CLASS_ACCURACY:
        err_console.print(
            f"warning: class {worst[1]} reaches only {worst[0]:.1f} % on the test split; "
            "the model is weak (more --epochs or another --lr may help)", highlight=False,
            soft_wrap=True,
        )  # fmt: skip


def _without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


def _join_job(nproc: int, batch_size: int):
    """The rank this process is, if any. ``--nproc-per-node N`` in a plain process: check the
    batch, run this very command as N ranks (torchrun's launcher) and exit with their outcome.
    Under ``torchrun``: check that the world size divides the global batch, join the process
    group and return this rank's context. Else None."""
    from obliviate import distributed

    if nproc < 1:
        raise ObliviateError(f"--nproc-per-node must be >= 1, got {nproc}")
    if nproc > 1 and os.environ.get("WORLD_SIZE") is None:  # not a rank already
        distributed.check_batch(batch_size, nproc)
        raise typer.Exit(distributed.launch(_without_option(sys.argv[1:], "--nproc-per-node"), nproc))
    job = distributed.from_environment()
    if job is not None:
        distributed.check_batch(batch_size, job)
        distributed.init(job)
    return job


@app.command("stats")
def stats_cmd(
    model_file: Annotated[Path, typer.Argument(help="Model whose statistics to record (.safetensors).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the model with fresh statistics.")],
    data: Annotated[Optional[str], typer.Option(help="The data the model was trained on (default: the model's dataset).")] = None,
    data_dir: Optional[Path] = None,
    device: Optional[str] = None,
    max_memory_gib: MaxMemory = 2.0,
    overwrite: Overwrite = False,
) -> None:
    """Record the training statistics again, bound to the model's current weights.

    Run it once after changing the weights outside obliviate (fine-tuning in your own loop,
    loading other weights): a data-free forget verifies only from statistics recorded on the
    very weights it is given."""
    check_outputs([out], [model_file], overwrite=overwrite)
    check_model_names([out])
    bundle = load(model_file)
    dataset = open_dataset(data, data_dir, False, bundle, {"max_memory_gib": max_memory_gib})
    result = api.record_statistics(bundle, dataset, device=device)
    save(result, out)
    err_console.print(f"recorded the training statistics of {len(dataset.train)} samples of "
                      f"{dataset.name}, bound to weights sha256 "
                      f"{result.stats.weights_sha256[:12]}…; wrote {out}",
                      highlight=False, soft_wrap=True)  # fmt: skip


@app.command("retrofit")
def retrofit_cmd(
    source: Annotated[str, typer.Argument(help="A model file trained without codes, a weights file (.safetensors/.pt/.pth, with --arch), or an architecture name (torchvision:resnet18, timm:resnet18; see 'obliviate list architectures').")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors).")],
    steps: Annotated[int, typer.Option(help="Fine-tuning steps with codes (the paper: 5000 on ImageNet).")] = 1000,
    dataset: Annotated[Optional[str], typer.Option(help="Training data: a registered dataset or folder:PATH (default: a model file's own).")] = None,
    arch: Annotated[Optional[str], typer.Option(help="Architecture of a weights file SOURCE (torchvision:NAME, timm:NAME or a registered model).")] = None,
    pretrained: Annotated[bool, typer.Option("--pretrained", help="Start an architecture name from its library's pretrained weights (their cache or a download).")] = False,
    weights: Annotated[Optional[Path], typer.Option(help="Start an architecture name from this weights file.")] = None,
    head: Annotated[Optional[str], typer.Option(help="Dotted name of the final nn.Linear (default: the last one).")] = None,
    t_mix: Annotated[float, typer.Option(help="Code replacement probability.")] = 0.1,
    code_distribution: Annotated[str, typer.Option(help="uniform or normal.")] = "uniform",
    lr: float = 0.01,
    batch_size: int = 128,
    optimizer: Annotated[str, typer.Option(help="sgd or adam.")] = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    seed: int = 0,
    max_accuracy_drop: Annotated[float, typer.Option(help="Test-accuracy points the retrofit may cost before it warns.")] = 1.0,
    check_samples: Annotated[int, typer.Option(help="Test samples (balanced per class) that measure accuracy before and after.")] = 10000,
    report: Annotated[Optional[Path], typer.Option(help="Write the retrofit record as JSON here.")] = None,
    data_dir: Optional[Path] = None,
    download: bool = False,
    device: Optional[str] = None,
    image_size: ImageSize = None,
    resize: Resize = None,
    mean: Mean = None,
    std: Std = None,
    max_memory_gib: MaxMemory = 2.0,
    nproc_per_node: NprocPerNode = 1,
    force: Annotated[bool, typer.Option("--force", help="Write the model even if the retrofit missed its goal (recorded as goal_met: false).")] = False,
    overwrite: Overwrite = False,
) -> None:
    """Add mnemonic codes to a model trained without them (a pretrained torchvision/timm model,
    a weights file, an obliviate model): fine-tune with codes, check, write a forgettable model.

    A retrofit that misses its goal (a code not learned, more accuracy lost than
    --max-accuracy-drop) exits 2 and writes nothing, unless --force."""
    from obliviate.pretrained import retrofit, source_model

    check_choice(optimizer, ["sgd", "adam"], "optimizer")
    check_choice(code_distribution, list(CODE_DISTRIBUTIONS), "code distribution")
    if steps < 1:
        raise ObliviateError(f"--steps must be >= 1, got {steps}")
    source_path = Path(source).expanduser()
    check_outputs([out, report], [source_path, weights], overwrite=overwrite)
    check_model_names([out])
    job = _join_job(nproc_per_node, batch_size)
    image = image_options(image_size, resize, mean, std, max_memory_gib)
    bundle = None
    if source_path.suffix == ".safetensors" and source_path.is_file() and arch is None:
        bundle, origin = source_model(source_path, num_classes=0, input_shape=(1,))
        data = open_dataset(dataset, data_dir, download, bundle, image)
    else:
        if dataset is None:
            raise ObliviateError("give the training data with --dataset (a registered dataset "
                                 "or folder:PATH)")  # fmt: skip
        data = open_dataset(dataset, data_dir, download, None, image)
        bundle, origin = source_model(
            source, num_classes=data.num_classes, input_shape=data.input_shape, arch=arch,
            pretrained=pretrained, weights=weights, head=head, seed=seed,
        )  # fmt: skip
    config = TrainConfig(batch_size=batch_size, optimizer=optimizer, lr=lr, momentum=momentum,
                         weight_decay=weight_decay, seed=seed, steps=steps)  # fmt: skip
    codes = CodeConfig(t_mix=t_mix, seed=seed, distribution=code_distribution)
    result = retrofit(bundle, data, steps=steps, codes=codes, config=config,
                      max_accuracy_drop=max_accuracy_drop, check_samples=check_samples,
                      source=origin, device=device, distributed=job)  # fmt: skip
    if job is not None and not job.is_main:
        return  # rank 0 checks and writes
    record = result.retrofit
    if not record["goal_met"] and not force:
        for line in describe_retrofit(record):
            err_console.print(line, highlight=False, soft_wrap=True)
        missed = []
        if not record["codes_learned"]:
            missed.append(f"the codes of classes {record['codes_missed']} are not learned")
        if not record["accuracy_kept"]:
            missed.append(f"it cost {record['accuracy_drop']:.2f} points of test accuracy, "
                          f"more than --max-accuracy-drop {record['goal']['max_accuracy_drop']:g}")
        refuse_missed_goal(f"the retrofit missed its goal: {'; '.join(missed)}")
    write_result(result, out, report, record, describe_retrofit)
