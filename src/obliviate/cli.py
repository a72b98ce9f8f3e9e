"""The ``obliviate`` command line: parses, builds configs, calls the library, prints."""

from __future__ import annotations

import importlib
import json
import logging
import math
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from obliviate.errors import GoalMissedWarning, NotVerifiedError, ObliviateError
from obliviate.interrupts import cleaned_up
from obliviate.names import CODE_DISTRIBUTIONS, CODE_MODES, DATASET_NAMES, TRAINABLE_MODEL_NAMES

if TYPE_CHECKING:
    from obliviate.metrics import EvalReport


class _Lazy:
    """A module or a name of the library, imported when first used. The command line imports
    torch only once a command runs, so `obliviate --help` and usage errors stay fast."""

    def __init__(self, module: str, name: str | None = None) -> None:
        self._module, self._name = module, name

    def _target(self) -> Any:
        importlib.import_module("obliviate.recoverable")  # registers "lirf-recover"
        module = importlib.import_module(self._module)
        return module if self._name is None else getattr(module, self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._target(), attribute)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._target()(*args, **kwargs)


api = _Lazy("obliviate.api")
file_mode = _Lazy("obliviate.checkpoint", "file_mode")
load = _Lazy("obliviate.checkpoint", "load")
save = _Lazy("obliviate.checkpoint", "save")
CodeConfig = _Lazy("obliviate.codes", "CodeConfig")
DATASETS = _Lazy("obliviate.data", "DATASETS")
METHODS = _Lazy("obliviate.methods", "METHODS")
coerce_hyperparameters = _Lazy("obliviate.methods.base", "coerce_hyperparameters")
hyperparameter_defaults = _Lazy("obliviate.methods.base", "hyperparameter_defaults")
trainable_models = _Lazy("obliviate.models", "trainable_models")
TrainConfig = _Lazy("obliviate.training", "TrainConfig")
truncation_oracle = _Lazy("obliviate.metrics", "truncation_oracle")
weights_sha256 = _Lazy("obliviate.checkpoint", "weights_sha256")
dataset_train_config = _Lazy("obliviate.training", "dataset_train_config")

#: Help of options several commands share, for those that give none of their own.
SHARED_HELP = {
    "seed": "Random seed; the same seed repeats a run.",
    "device": "cpu, cuda or cuda:N (default: cuda when available).",
    "data_dir": "Directory holding the dataset's files, and where --download puts them "
                "(digits is bundled; fashion-mnist is also found in Debian's package).",
    "download": "Let torchvision download the data when it is missing.",
    "batch_size": "Samples per optimiser step.",
    "lr": "Learning rate.",
    "momentum": "SGD momentum, 0..1.",
    "weight_decay": "L2 weight decay.",
    "relearn_lr": "Learning rate of the relearn probe.",
    "relearn_steps": "Relearn-probe steps (0 skips RE).",
}  # fmt: skip

INT_MAX = 2**31 - 1
#: Integer options for which 0 means nothing (default lowest value: 0).
INT_LOWEST = {"epochs": 1, "batch_size": 1, "steps": 1, "nproc_per_node": 1, "image_size": 1,
              "resize": 1, "check_samples": 1, "folds": 2}  # fmt: skip
#: Float options with a range (lowest, highest, whether the lowest is excluded); every float
#: option must be finite.
FLOAT_RANGES = {"t_mix": (0.0, 1.0, False), "code_strength": (0.0, 1.0, False),
                "momentum": (0.0, 1.0, False), "weight_decay": (0.0, None, False),
                "max_memory_gib": (0.0, None, False), "max_accuracy_drop": (0.0, None, False),
                "lr": (0.0, None, True)}  # fmt: skip


def check_number(name: str, value: Any) -> Any:
    """``value`` of option ``name`` if it is in range, else a usage error: integers in
    ``INT_LOWEST.get(name, 0)..INT_MAX``, floats finite and within ``FLOAT_RANGES``."""
    if isinstance(value, (list, tuple)):
        return type(value)(check_number(name, v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, int):
        lowest = INT_LOWEST.get(name, 0)
        if not lowest <= value <= INT_MAX:
            raise typer.BadParameter(f"must be an integer in {lowest}..{INT_MAX}, got {value}")
        return value
    low, high, open_low = FLOAT_RANGES.get(name, (None, None, False))
    wrong = not math.isfinite(value) or (low is not None and (value <= low if open_low else value < low)) \
        or (high is not None and value > high)  # fmt: skip
    if wrong:
        where = "" if low is None else (f" {'>' if open_low else '>='} {low:g}"
                                        + ("" if high is None else f" and <= {high:g}"))  # fmt: skip
        raise typer.BadParameter(f"must be a finite number{where}, got {value}")
    return value


class CheckedGroup(TyperGroup):
    """The command group: every number option of every command is range-checked
    (:func:`check_number`), every option without help gets the shared one, and flags show
    no type in the help (``--force``, not ``--force <bool>``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [*self.commands.values(), self]:
            for param in command.params:
                if not getattr(param, "help", None) and param.name in SHARED_HELP:
                    param.help = SHARED_HELP[param.name]
                param.callback = _checked_callback(param.callback)
                _untyped_flag(param)
            command.get_help_option = _untyped_help(command.get_help_option)


def _untyped_flag(param: Any) -> Any:
    """A flag (``--force``, ``--help``) with no type shown after it: typer prints ``<bool>``
    for every boolean, flags included, though a flag takes no value."""
    if param is not None and getattr(param, "is_flag", False):
        param.metavar = ""
    return param


def _untyped_help(get_help_option: Any) -> Any:
    def untyped(ctx: Any) -> Any:
        return _untyped_flag(get_help_option(ctx))

    return untyped


def _checked_callback(callback: Any) -> Any:
    def check(ctx: Any, param: Any, value: Any) -> Any:
        value = check_number(param.name, value)
        return callback(ctx, param, value) if callback is not None else value

    return check


app = typer.Typer(
    cls=CheckedGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Data-free, one-shot machine unlearning for PyTorch classifiers.",
)
console = Console()
err_console = Console(stderr=True)


def _print_version(value: bool) -> None:
    if value:
        from obliviate import __version__

        print(f"obliviate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,  # fmt: skip
) -> None:
    """Data-free, one-shot machine unlearning for PyTorch classifiers."""


def parse_classes(text: str, bundle: Any = None) -> list[int]:
    """``"0,3, 5"`` -> ``[0, 3, 5]``; with a model whose file records class names, names too
    (``"Trouser, Bag"`` -> ``[1, 8]``, :func:`obliviate.api.resolve_classes`). A bad token is a
    user error."""
    tokens = [token.strip() for token in text.split(",") if token.strip()]
    if not tokens:
        raise ObliviateError("give at least one class, e.g. --classes 0")
    if bundle is not None:
        return api.resolve_classes(bundle, tokens)
    out = []
    for token in tokens:
        try:
            out.append(int(token))
        except ValueError:
            raise ObliviateError(f"class {token!r} is not an integer (use e.g. --classes 0,3)")
    return out


def _check_dataset(name: str) -> str:
    """A registered dataset name or ``folder:PATH``."""
    if name.startswith("folder:"):
        if not name[len("folder:"):]:
            raise ObliviateError("give the image folder's path: --dataset folder:PATH")
        return name
    return _check_choice(name, DATASETS.names(), "dataset (or folder:PATH for an image folder)")


ImageSize = Annotated[Optional[int], typer.Option(help="Image folders: crop side in pixels (default 224, or the model's).", rich_help_panel="Image folders (folder:PATH)")]
Resize = Annotated[Optional[int], typer.Option(help="Image folders: resize the shorter side to this before the centre crop (default size*256/224).", rich_help_panel="Image folders (folder:PATH)")]
Mean = Annotated[Optional[str], typer.Option(help="Image folders: per-channel mean, R,G,B (default ImageNet's).", rich_help_panel="Image folders (folder:PATH)")]
Std = Annotated[Optional[str], typer.Option(help="Image folders: per-channel std, R,G,B (default ImageNet's).", rich_help_panel="Image folders (folder:PATH)")]
MaxMemory = Annotated[float, typer.Option(help="Image folders: decode into memory up to this many GiB, else stream from disk.", rich_help_panel="Image folders (folder:PATH)")]
NprocPerNode = Annotated[int, typer.Option(help="Train as this many DDP processes on this machine (gloo on CPU, NCCL on GPUs); --batch-size is the global batch. Several machines: use torchrun.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace output files that exist already (refused by default: model files and reports are audit artifacts).")]


def _image_options(image_size: int | None, resize: int | None, mean: str | None,
                   std: str | None, max_memory_gib: float) -> dict:  # fmt: skip
    """The image-folder settings given on the command line."""
    given = {"image_size": image_size, "resize": resize,
             "mean": _csv_floats(mean, "mean") if mean else None,
             "std": _csv_floats(std, "std") if std else None}  # fmt: skip
    return {**{k: v for k, v in given.items() if v is not None}, "max_memory_gib": max_memory_gib}


def _dataset(name: str | None, data_dir: Path | None, download: bool, bundle: Any = None,
             image: dict | None = None):  # fmt: skip
    """The dataset ``name`` (default: the model's); an image folder is read with the ``image``
    settings over those the model file recorded."""
    if name is not None:
        _check_dataset(name)
    if bundle is not None:
        return api.bundle_dataset(bundle, name, data_dir, download, options=image)
    if name is None:
        raise ObliviateError("give a dataset (--dataset)")
    return api.resolve_dataset(name, data_dir, download, options=image)


def _check_choice(value: str, choices: list[str], what: str) -> str:
    if value not in choices:
        raise ObliviateError(f"unknown {what} {value!r}; known: {', '.join(choices)}")
    return value


def check_model_names(paths: list[Path]) -> None:
    """Refuse a model file name without the ``.safetensors`` suffix (the file is safetensors
    whatever its name, and ``x.pt`` would promise a pickle)."""
    for path in paths:
        if path.suffix != ".safetensors":
            raise ObliviateError(f"{path}: model files are safetensors; give a name ending in "
                                 f".safetensors (e.g. {path.with_suffix('.safetensors')})")  # fmt: skip


#: Kernel filesystems: a file there is not a file the user keeps, whoever may write it.
VIRTUAL_FILESYSTEMS = (Path("/proc"), Path("/sys"))


def check_outputs(outputs: list[Path | None], inputs: list[Path | None] = (), *,
                  overwrite: bool = False) -> None:  # fmt: skip
    """Refuse, before any work, output paths that cannot or must not be written: a missing
    directory, an existing directory or special file (only regular files are replaced), a
    path under /proc or /sys, a directory where a file cannot be created (one is created and
    removed there), an output that is one of the inputs (same file, by inode), an existing
    file unless ``overwrite`` (model files and reports are audit artifacts), or two outputs
    on one file."""
    given = [p for p in outputs if p is not None]
    existing_inputs = [p for p in inputs if p is not None and p.exists()]
    for path in given:
        if not path.parent.exists():
            raise ObliviateError(f"directory {path.parent} does not exist; create it first")
        exists = path.exists() or path.is_symlink()
        if exists and not path.is_file():
            raise ObliviateError(f"{path} exists and is not a regular file; give a file path")
        check_writable(path)
        if exists:
            for source in existing_inputs:
                if path.samefile(source):
                    raise ObliviateError(f"{path} is an input of this command ({source}); "
                                         "write the result to another file")  # fmt: skip
            if not overwrite:
                raise ObliviateError(f"{path} exists; give another path, or add --overwrite "
                                     "to replace it")  # fmt: skip
    resolved = [p.resolve() for p in given]
    if len(set(resolved)) != len(resolved):
        raise ObliviateError("two outputs of this command name the same file; give each its own")


def check_writable(path: Path) -> None:
    """Refuse ``path`` when it lies under a kernel filesystem or when no file can be created
    in its directory (read-only, no permission): a temporary file is created there and
    removed, as the atomic write will."""
    refuse_virtual_filesystem(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ObliviateError(f"cannot write {path}: {exc.strerror or exc} in {path.parent}; "
                             "give a path in a writable directory") from None  # fmt: skip
    os.close(fd)
    os.unlink(probe)


def refuse_virtual_filesystem(path: Path) -> None:
    """Refuse an output ``path`` under /proc or /sys (:data:`VIRTUAL_FILESYSTEMS`)."""
    resolved = path.resolve()
    for root in VIRTUAL_FILESYSTEMS:
        if root in resolved.parents or resolved == root:
            raise ObliviateError(f"{path} is under {root}, a virtual filesystem of the kernel; "
                                 "write it to a directory on disk")  # fmt: skip


def check_output_directory(out: Path, names: list[str], *, overwrite: bool) -> None:
    """Create the directory ``out`` (with its parents) and check, as :func:`check_outputs`
    does, the files ``names`` a command will write in it."""
    if out.exists() and not out.is_dir():
        raise ObliviateError(f"{out} exists and is not a directory; --out names a directory")
    refuse_virtual_filesystem(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ObliviateError(f"cannot create directory {out}: {exc.strerror or exc}") from None
    check_outputs([out / name for name in names], overwrite=overwrite)


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write JSON to ``path`` through a temporary file and a rename. The command checked
    ``path`` before its work; a write that fails all the same is an :class:`ObliviateError`
    (one line) and leaves no temporary file."""
    check_outputs([path], overwrite=True)
    with cleaned_up():  # Ctrl-C here removes the temporary file (obliviate.interrupts)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh, indent=2)
                fh.write("\n")
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise ObliviateError(f"could not write {path}: {exc.strerror or exc}; nothing "
                                     "was written there") from exc  # fmt: skip
            raise


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def report_table(reports: dict[str, EvalReport], title: str,
                 forget_classes: Any = (), class_names: dict[int, str] | None = None) -> Table:  # fmt: skip
    """A rich table with one column per report: summary metrics, then per-class accuracy (the
    rows of ``forget_classes`` marked; each class named by ``class_names`` where known)."""
    table = Table(title=title)
    table.add_column("metric")
    for name in reports:
        table.add_column(name, justify="right")
    nothing_forgotten = all(r.forget_err is None for r in reports.values())
    rows = [
        ("accuracy % (all classes)" if nothing_forgotten else "A_R retain acc %", "retain_acc"),
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
        name = (class_names or {}).get(c)
        label = (f"class {c}" + (f" ({name})" if name not in (None, str(c)) else "") + " acc %"
                 + (" (forget)" if c in forget_classes else ""))  # fmt: skip
        table.add_row(label, *[_fmt(r.per_class_acc[c]) for r in reports.values()])
    return table


@app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.safetensors).")],
    dataset: Annotated[str, typer.Option(help=f"One of: {', '.join(DATASET_NAMES)}, or folder:PATH (an image folder with train/ and val/).")] = "digits",
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(TRAINABLE_MODEL_NAMES)}, or torchvision:NAME / timm:NAME (random weights; see 'obliviate list architectures').")] = "fc",
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
    _check_dataset(dataset)
    if not model.startswith(("torchvision:", "timm:")):
        _check_choice(model, trainable_models(), "model")
    check_outputs([out], overwrite=overwrite)
    check_model_names([out])
    _check_choice(code_mode, list(CODE_MODES), "code mode")
    _check_choice(code_distribution, list(CODE_DISTRIBUTIONS), "code distribution")
    config = dataset_train_config(
        dataset, epochs=epochs, lr=lr, batch_size=batch_size, optimizer=optimizer,
        momentum=momentum, weight_decay=weight_decay, schedule=schedule, seed=seed,
    )  # fmt: skip
    job = _join_job(nproc_per_node, config.batch_size)  # before the data: a usage error costs nothing
    data = _dataset(dataset, data_dir, download,
                    image=_image_options(image_size, resize, mean, std, max_memory_gib))  # fmt: skip
    code_config = (
        CodeConfig(mode=code_mode, t_mix=t_mix, strength=code_strength, seed=seed,
                   distribution=code_distribution)
        if codes
        else None
    )
    bundle = api.train(data, model, config=config, codes=code_config, device=device,
                       distributed=job)  # fmt: skip
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
    classes: Annotated[str, typer.Option(help="Classes to forget, comma-separated: indices (0,3) or the class names the model file records (Trouser,Bag).")],
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
    force: Annotated[bool, typer.Option("--force", help="Write the result even if the method could not verify it (recorded as verified: false).")] = False,
    depth: Annotated[Optional[str], typer.Option(help="mnemonic: 'features' (edit the last feature layer too: the class leaves the features), 'output' (the classifier rows only), 'auto' (default: the deepest that verifies; features need --data to verify the kept classes).")] = None,
    max_memory_gib: MaxMemory = 2.0,
    overwrite: Overwrite = False,
) -> None:
    """Make a model forget classes with any registered method; write the new model.

    The default (mnemonic, no lambda) finds the strength for each request and verifies the
    result; a request it cannot verify exits 2 and writes nothing, unless --force."""
    _check_choice(method, METHODS.names(), "method")
    method_cls = METHODS.get(method)
    if not classes.replace(",", "").strip():
        raise ObliviateError("give at least one class, e.g. --classes 0")
    hyper = coerce_hyperparameters(method_cls, parse_hyperparameters(hp or []))
    for key, value in (("lambda1", lambda1), ("lambda2", lambda2)):
        if value is not None:
            hyper.update(coerce_hyperparameters(method_cls, {key: repr(value)}))
    if depth is not None:
        _check_choice(depth, ["auto", "features", "output"], "depth")
        hyper.update(coerce_hyperparameters(method_cls, {"depth": depth}))
    check_outputs([out, report], [model_file], overwrite=overwrite)
    check_model_names([out])
    bundle = load(model_file)
    class_list = parse_classes(classes, bundle)
    dataset = None
    if data is not None:
        dataset = _dataset(data, data_dir, False, bundle, {"max_memory_gib": max_memory_gib})
    try:
        result = api.forget(
            bundle, class_list, method=method, data=dataset, seed=seed, device=device,
            force=force, **hyper,
        )  # fmt: skip
    except NotVerifiedError as exc:  # the same refusal, in the command line's words
        reason = exc.record.get("verification", {}).get("reason") or "its checks failed"
        refuse_missed_goal(f"did not forget classes {class_list} with {method}: {reason}",
                           recorded="verified: false")
    _write_result(result, out, report, result.history[-1], describe_forget)


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
    dataset = _dataset(data, data_dir, False, bundle, {"max_memory_gib": max_memory_gib})
    result = api.record_statistics(bundle, dataset, device=device)
    save(result, out)
    err_console.print(f"recorded the training statistics of {len(dataset.train)} samples of "
                      f"{dataset.name}, bound to weights sha256 "
                      f"{result.stats.weights_sha256[:12]}…; wrote {out}",
                      highlight=False, soft_wrap=True)  # fmt: skip


def refuse_missed_goal(missed: str, *, recorded: str = "goal_met: false") -> None:
    """The one policy of forget, deposit, backdoor and retrofit for a result that missed the
    goal the command checks: nothing is written and the command exits 2 with this line,
    unless it was given ``--force`` (then it writes, records the miss as ``recorded``, and
    warns)."""
    raise ObliviateError(f"{missed}; nothing was written (--force writes it anyway, recorded "
                         f"as {recorded})")


def _write_result(bundle: Any, out: Path, report: Path | None, record: dict,
                  describe: Any) -> None:  # fmt: skip
    """Save ``bundle`` to ``out``, its ``record`` as JSON to ``report``, and print the record's
    lines (``describe(record)``) and what was written."""
    save(bundle, out)
    if report is not None:
        write_json_atomic(report, record)
    for line in describe(record):
        err_console.print(line, highlight=False, soft_wrap=True)
    err_console.print(f"wrote {out}", highlight=False)


def class_names_of(names: Any) -> dict[int, str]:
    """``{index: name}`` of a model's class names (``None``: unknown, an empty mapping)."""
    return dict(enumerate(names or ()))


def named_classes(classes: list[int], names: dict[int, str]) -> str:
    """``"[3, 9] (Dress, Ankle boot)"``: the classes, then their names, unless a name is
    unknown or every name is just its index (digits' "0".."9")."""
    shown = [names.get(c) for c in classes]
    if None in shown or shown == [str(c) for c in classes]:
        return str(list(classes))
    return f"{list(classes)} ({', '.join(shown)})"


def describe_forget(record: dict) -> list[str]:
    """The terminal lines of a forget record: what was done, how strong, verified on what."""
    how = f"with {record['method']} in {record['seconds'] * 1000:.1f} ms"
    if record.get("mode") == "calibrated":
        needed = ", ".join(f"{k.replace('_', ' ')} {'none suffices' if v is None else f'{v:.3g}'}"
                           for k, v in record.get("strength_needed", {}).items())  # fmt: skip
        how += f", strength {record['strength']:.3g} (needed: {needed})"
    elif "lambda1" in record:
        how += f", paper mode lambda1={record['lambda1']:g} lambda2={record['lambda2']:g}"
        how += f", sign {record['sign']}"
    names = dict(zip(record["classes"], record.get("class_names") or [], strict=False))
    lines = [f"forgot classes {named_classes(record['classes'], names)} {how}"]
    verification = record.get("verification")
    verified = record.get("verified")
    if verification is None:
        lines.append("verified: not checked (this method does not check its result; "
                     "measure it with 'obliviate evaluate')")  # fmt: skip
        return lines
    parts = []
    for name, check in verification.get("checks", {}).items():
        state = "passed" if check.get("passed") else "FAILED"
        if name in ("codes", "fisher_samples"):
            parts.append(f"{name.replace('_', ' ')} {state} (worst forget-class margin "
                         f"{check['forget_margin_max']:.2f}, target <= {check['target']:g})")  # fmt: skip
        elif name == "training_statistics":
            parts.append(f"training statistics {state} (the bound that puts every training "
                         "sample of the forget classes below a kept class)")  # fmt: skip
        elif name == "retain_bound":
            bound = check.get("training_accuracy_drop_bound")
            parts.append(f"kept-class bound {state} (" + ("no bound without a confusion matrix"
                         if bound is None else f"at most {bound:.1f} points of training accuracy "
                         f"lost, allowed {check['max_retain_drop']:g}") + ")")  # fmt: skip
        elif name == "data":
            detail = []
            if "forget_error" in check:
                detail.append(f"forget error {check['forget_error']:.2f}% on "
                              f"{check['forget_samples']} samples")  # fmt: skip
            if "retain_accuracy" in check:
                detail.append(f"retain accuracy {check['retain_accuracy']:.2f}% vs oracle "
                              f"{check['oracle_retain_accuracy']:.2f}%")  # fmt: skip
            if check.get("reason"):  # it repeats the numbers it gives
                detail = [d for d in detail if d not in check["reason"]] + [check["reason"]]
            parts.append(f"data {state} ({', '.join(detail)})")
    lines.append(f"verified: {str(bool(verified)).lower()} — " + "; ".join(parts))
    lines.extend(describe_depth(record))
    if not verified:
        lines.append(f"WARNING: written with --force although not verified: "
                     f"{verification.get('reason')}")  # fmt: skip
    return lines


def describe_depth(record: dict) -> list[str]:
    """What a forget changed and what that means for an attacker who holds the weights."""
    depth = record.get("depth")
    if depth == "features":
        return [f"depth: features — {record.get('scope')}; compare with retraining: "
                "'obliviate evidence OUT --retrain --original MODEL'"]
    if depth == "output":
        note = record.get("depth_note") or ""
        return [f"depth: output only — the features still hold the class (prototype or relearn "
                f"attacks with a few labelled samples recover it); {note}".rstrip("; ")]
    return []


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
    reference: Annotated[Optional[Path], typer.Option(help="The original model this one was forgotten from: its truncation oracle (the forget classes' logits masked), the yardstick of A_R, is shown beside.")] = None,
    device: Optional[str] = None,
    image_size: ImageSize = None,
    resize: Resize = None,
    mean: Mean = None,
    std: Std = None,
    max_memory_gib: MaxMemory = 2.0,
) -> None:
    """Evaluate a model: per-class accuracy, A_R, FE, RE (relearn probe), S and forget time;
    says which classes count as forgotten and why, what the record verified, and what each
    column means."""
    if dataset is not None:
        _check_dataset(dataset)
    bundle = load(model_file)
    original = load(reference) if reference is not None else None
    classes = parse_classes(forget_classes, bundle) if forget_classes is not None else None
    data = _dataset(dataset, data_dir, download, bundle,
                    _image_options(image_size, resize, mean, std, max_memory_gib))  # fmt: skip
    report = api.evaluate(
        bundle, data, classes, relearn_steps=relearn_steps, relearn_lr=relearn_lr,
        seed=seed, data_dir=data_dir, download=download, device=device,
    )  # fmt: skip
    used = sorted(set(classes)) if classes is not None else sorted(bundle.forgotten_classes)
    reports = {model_file.name: report}
    if original is not None and used:
        api.check_dataset_fits(original, data)
        oracle = truncation_oracle(original.model, data, used)
        reports[f"truncation oracle of {reference.name}"] = oracle
    lines = describe_evaluation(bundle, used, classes is not None, original)
    if json_out:
        last = bundle.history[-1] if bundle.history else {}
        payload = {**report.to_dict(), "forget_classes": used,
                   "forget_classes_from": "--forget-classes" if classes is not None else "record",
                   "verified": last.get("verified"), "depth": last.get("depth")}  # fmt: skip
        if len(reports) > 1:
            payload["oracle_retain_acc"] = reports[f"truncation oracle of {reference.name}"].retain_acc
        print(json.dumps(payload, indent=2))
        for line in lines[1:]:
            if line.startswith("note:"):
                err_console.print(line, highlight=False, soft_wrap=True)
        return
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
    console.print(report_table(reports, title=None, forget_classes=used,
                               class_names=class_names_of(bundle.class_names)))  # fmt: skip
    for line in evaluation_legend(bool(used), relearn_steps, len(reports) > 1):
        console.print(line, highlight=False, soft_wrap=True)


def _record_depth(record: dict) -> str:
    """How deep a forget record says it went: its ``depth``, else read from its ``scope``."""
    depth = record.get("depth")
    if depth:
        return "output only" if depth == "output" else str(depth)
    if "classifier" in str(record.get("scope", "")):
        return "output only"
    return "not recorded"


def describe_evaluation(bundle: Any, used: list[int], given: bool, original: Any) -> list[str]:
    """The lines above the evaluate table: what was evaluated, which classes count as
    forgotten and why, what the last record verified, and any mismatch worth a note."""
    recorded = sorted(bundle.forgotten_classes)
    names = class_names_of(bundle.class_names)
    lines = [f"model: {bundle.arch} on {bundle.dataset or 'the dataset given'} (test split)"]
    if not used:
        lines.append("forget classes: none (the model has forgotten nothing): the first row is "
                     "the accuracy over every class")  # fmt: skip
    elif given:
        lines.append(f"forget classes: {named_classes(used, names)} (from --forget-classes)")
    else:
        lines.append(f"forget classes: {named_classes(used, names)} (from the model file's "
                     f"history, {len(bundle.history)} record(s))")  # fmt: skip
    if bundle.history:
        last = bundle.history[-1]
        verified = last.get("verified")
        shown = "not checked (null)" if verified is None else str(bool(verified)).lower()
        lines.append(f"last record: {last.get('method')} forgot {last.get('classes')} at "
                     f"{last.get('utc')}; verified: {shown}; depth: {_record_depth(last)}")  # fmt: skip
    if given and used != recorded:
        kept = [c for c in recorded if c not in used]
        unforgotten = [c for c in used if c not in recorded]
        parts = [f"note: --forget-classes {used} differs from what the model forgot "
                 f"({recorded or 'nothing'})"]  # fmt: skip
        if kept:
            parts.append(f"classes {kept}, forgotten by the model, count as retained in A_R here")
        if unforgotten:
            parts.append(f"classes {unforgotten} were never forgotten, so FE measures classes "
                         "the model still knows")  # fmt: skip
        lines.append("; ".join(parts))
    if original is not None and bundle.history:
        first = bundle.history[0].get("input_sha256")
        sha = weights_sha256(original.model)
        if first and sha != first:
            lines.append("note: the --reference model is not the one this model was forgotten "
                         "from (its weights' SHA-256 differs from the first record's "
                         "input_sha256)")  # fmt: skip
    return lines


def evaluation_legend(forgot: bool, relearn_steps: int, oracle: bool) -> list[str]:
    """What each row of the evaluate table means, and which direction is good."""
    if not forgot:
        return ["accuracy: share of test samples classified right (higher is better); "
                "class c acc: the same per class"]  # fmt: skip
    lines = [
        "legend (test split; percentages):",
        "  A_R  accuracy on the kept classes' samples; higher is better, and an output-layer "
        "forget cannot beat the truncation oracle (the original with the forget classes' "
        "logits masked)" + (", shown beside" if oracle else ", shown with --reference ORIGINAL"),
        "  FE   error on the forget classes' samples; higher is better (100: never predicted)",
    ]  # fmt: skip
    if relearn_steps > 0:
        lines += [
            f"  RE   FE again after the relearn probe: the last layer retrained {relearn_steps} "
            "steps on the whole training set, forget classes included; higher means harder to "
            "relearn. A forget of depth 'output only' leaves the features the probe relearns "
            "from, so RE near 0 is expected after it, verified or not: it says the features "
            "still hold the classes (docs/results/reliability.md)",
            "  S    (A_R + (FE + RE) / 2) / 2, the paper's score; higher is better",
        ]  # fmt: skip
    else:
        lines.append("  RE, S  not measured (--relearn-steps 0)")
    lines += ["  forget seconds  the last forget request's own time (from its record); lower is "
              "better", "  class c acc  test accuracy of each class; '(forget)' marks the forget "
              "classes, where lower is better"]  # fmt: skip
    return lines


@app.command("evidence")
def evidence_cmd(
    model_file: Annotated[Path, typer.Argument(help="Forgotten model to judge (.safetensors).")],
    reference: Annotated[Optional[Path], typer.Option(help="A model retrained without exactly the forget classes (obliviate forget ORIGINAL --method retrain).")] = None,
    retrain: Annotated[bool, typer.Option("--retrain", help="Retrain the reference now with the model's own recipe (cached by the original's hash, the classes and the seed).")] = False,
    retrain_epochs: Annotated[Optional[int], typer.Option(help="Retrain the reference for this many epochs instead of the recipe's (implies --retrain; a cheaper, rougher look, cached apart).", min=1, max=10**6)] = None,
    original: Annotated[Optional[Path], typer.Option(help="The model before forgetting: sets the relearn-time goal; the reference when no retrained one is given (gaps are then to the original).")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="Dataset (default: the model's).")] = None,
    forget_classes: Annotated[Optional[str], typer.Option(help="Default: the model's forgotten classes.")] = None,
    shots: Annotated[str, typer.Option(help="Samples per class of the prototype attack, comma-separated.")] = "1,10",
    relearn_steps: Annotated[int, typer.Option(help="Relearn-probe steps (0 skips RE).", min=0, max=10**7)] = 1000,
    relearn_max_steps: Annotated[int, typer.Option(help="Step budget of the relearn-time fine-tune (0 skips it).", min=0, max=10**6)] = 300,
    seed: Annotated[int, typer.Option(help="Seed of the attacks' draws.", min=0, max=2**31 - 1)] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the report as JSON here.")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Write a bar chart (PNG) here.")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where --retrain caches references (default ~/.cache/obliviate/references).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(help="Where the dataset files are.")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available).")] = None,
    overwrite: Overwrite = False,
) -> None:
    """Is the forget deep? Prototype attacks, relearn probe and relearn time, agreement with a
    model retrained without the classes; one table (and --plot, --out)."""
    from obliviate.evidence import EvidenceConfig
    from obliviate.metrics import RelearnConfig

    if dataset is not None:
        _check_dataset(dataset)
    retrain = retrain or retrain_epochs is not None
    if reference is not None and retrain:
        raise ObliviateError("give either --reference FILE or --retrain (--retrain-epochs), "
                             "not both")  # fmt: skip
    if plot is not None and plot.suffix.lower() != ".png":
        raise ObliviateError(f"--plot writes a PNG; give a path ending in .png, not {plot.name}")
    check_outputs([out, plot], [model_file, reference, original], overwrite=overwrite)
    shot_list = _csv_ints(shots, "shots")
    config = EvidenceConfig(shots=shot_list, relearn=RelearnConfig(steps=relearn_steps, seed=seed),
                            relearn_max_steps=relearn_max_steps, seed=seed)  # fmt: skip
    bundle = load(model_file)
    ref = load(reference) if reference is not None else None
    orig = load(original) if original is not None else None
    classes = parse_classes(forget_classes, bundle) if forget_classes is not None else None
    report = api.depth_evidence(
        bundle, ref, dataset, classes, original=orig, retrain=retrain,
        retrain_epochs=retrain_epochs, config=config, cache_dir=cache_dir, data_dir=data_dir,
        device=device,
    )  # fmt: skip
    payload = report.to_dict()
    if out is not None:
        write_json_atomic(out, payload)
    if plot is not None:
        from obliviate.evidence import plot_evidence

        plot_evidence(report, plot, title=model_file.name)
    if json_out:
        print(json.dumps(payload, indent=2))
        return
    console.print(evidence_table(report, model_file.name), soft_wrap=True)
    for line in describe_evidence(report):
        console.print(line, highlight=False, soft_wrap=True)


def evidence_table(report: Any, name: str) -> Table:
    """Measures of the model, its reference and the original, side by side, with a legend."""
    from obliviate.evidence import MEASURES

    ref_title = "retrained" if report.reference_kind == "retrained" else "original (reference)"
    table = Table(title=f"evidence: {name}, forget classes {report.forget_classes}")
    table.add_column("measure")
    table.add_column(name, justify="right")
    table.add_column(ref_title, justify="right")
    if report.original is not None:
        table.add_column("original", justify="right")
    columns = [report.model.flat(), report.reference.flat()]
    if report.original is not None:
        columns.append(report.original.flat())
    shown = evidence_rows(report)
    for key, label, _ in MEASURES:
        if key in shown:
            table.add_row(label, *[_fmt_value(c.get(key)) for c in columns])
    for key, value in report.agreement.items():
        table.add_row(f"{key.replace('_', ' ')} (vs reference)", _fmt_value(value), "-",
                      *(["-"] if report.original is not None else []))  # fmt: skip
    return table


def evidence_rows(report: Any) -> list[str]:
    """The keys of the measures the evidence table shows: those measured on some model (a
    model of one block has no "block earlier" prototype)."""
    from obliviate.evidence import MEASURES

    columns = [e.flat() for e in (report.model, report.reference, report.original) if e is not None]
    return [key for key, _, _ in MEASURES if any(c.get(key) is not None for c in columns)]


#: What the agreement rows of the evidence table mean.
AGREEMENT_LEGEND = ("agree forget/retain: test samples of the forget/kept classes whose "
                    "prediction equals the reference's, %; js forget/retain: mean Jensen-Shannon "
                    "divergence of the outputs to the reference's, nats, lower is closer")  # fmt: skip


def _fmt_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4f}"


def describe_evidence(report: Any) -> list[str]:
    """The verdict lines: the gaps to the reference and what they mean."""
    from obliviate.evidence import MEASURES

    gaps = report.gaps
    against = ("a model retrained without the classes" if report.reference_kind == "retrained"
               else "the ORIGINAL model (no retrained reference: gaps say how far the forget "
               "moved, not how close it came to retraining)")  # fmt: skip
    lines = [f"gaps to {against}:"]
    k = report.settings["proto_gap_shots"]
    lines.append(f"  prototype attack (k={k}) gap {gaps['proto_gap']:+.2f} points (lower is "
                 "deeper; > 0: the features hold more of the class than the reference's)")  # fmt: skip
    if gaps.get("relearn_gap") is not None:
        lines.append(f"  relearn-probe RE gap {gaps['relearn_gap']:+.2f} points (higher is "
                     "deeper; < 0: the head relearns the class more easily than from the "
                     "reference)")  # fmt: skip
    if gaps.get("relearn_steps_ratio") is not None:
        lines.append(f"  relearn-time ratio {gaps['relearn_steps_ratio']:.2f} (steps to regain "
                     "the class over the reference's; >= 1 is as slow as retraining)")  # fmt: skip
    shown = evidence_rows(report)
    lines.append("legend: " + "; ".join([f"{label}: {text}" for key, label, text in MEASURES
                                         if key in shown] + [AGREEMENT_LEGEND]))  # fmt: skip
    lines.append(verdict_line(report))
    return lines


def verdict_line(report: Any) -> str:
    """One line: how deep the forget is, on how many measures, against which reference
    (:func:`obliviate.evidence.depth_verdict`)."""
    from obliviate.evidence import depth_verdict

    verdict = depth_verdict(report)
    n, depth = len(verdict["measures"]), verdict["depth"]

    def on(matched: list[str]) -> str:
        return f"on {len(matched)} of {n} measures" + (f" ({', '.join(matched)})" if matched else "")

    if depth == "deep":
        what = f"as hard to recover as the retrained model {on(verdict['measures'])}"
    elif depth == "output only":
        what = f"as recoverable as the original {on(verdict['measures'])}"
    elif depth == "not told apart":
        what = (f"as hard to recover as the retrained model and as recoverable as the original "
                f"{on(verdict['measures'])}: these measures do not tell the two apart")  # fmt: skip
    elif depth == "not shown deep":
        what = (f"as recoverable as the original {on(verdict['as_original'])}; without a "
                "retrained reference (--retrain) depth cannot be shown")  # fmt: skip
    else:
        what = f"as hard to recover as the retrained model {on(verdict['as_retrained'])}"
        if report.original is not None:
            what += f"; as recoverable as the original {on(verdict['as_original'])}"
    return f"depth: {depth} — {what} (reference: {report.reference_source or report.reference_kind})"


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


def _csv_ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise ObliviateError(f"--{what} takes comma-separated integers, got {text!r}") from None


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
        forget_classes=_csv_ints(forget_classes, "forget-classes"),
        seeds=_csv_ints(seeds, "seeds"), relearn_steps=relearn_steps, mia=mia,
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


def _csv_floats(text: str, what: str) -> list[float]:
    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise ObliviateError(f"--{what} takes comma-separated numbers, got {text!r}") from None


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
        lambda1_values=_csv_floats(lambda1_values, "lambda1-values"),
        lambda2_values=_csv_floats(lambda2_values, "lambda2-values"),
        lambda1=lambda1, lambda2=lambda2, relearn_steps=relearn_steps, seed=seed,
    )  # fmt: skip
    write_rows_csv(rows, out / "sweep.csv")
    plot_lambda_sweep(rows, out / "sweep.png")
    table = Table(title="lambda sweep")
    for column in ("varied", "lambda1", "lambda2", "A_R", "FE", "RE", "sign"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["varied"], f"{r['lambda1']:g}", f"{r['lambda2']:g}", _fmt(r["retain_acc"]),
                      _fmt(r["forget_err"]), _fmt(r["relearn_err"]), r["sign"])  # fmt: skip
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

    _check_choice(pattern, list(PATTERNS), "pattern")
    _check_choice(transform, TRANSFORMS.names(), "transform")
    if method is not None:
        _check_choice(method, list(FINER_METHODS), "method")
    if term is not None:
        _check_choice(term, list(FORGETTING_TERMS), "forgetting term")
    if calibration is not None:
        _check_choice(calibration, list(CALIBRATIONS), "calibration")
    _check_choice(model, trainable_models(), "model")
    _check_choice(split, ["holdout", "kfold"], "split")
    _check_choice(activation, ["as-written", "continuous"], "activation")
    _check_choice(fisher_on, list(FISHER_DATA), "Fisher data")
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
        table.add_row(label, *[_fmt(accs[k]) for k in ("D_r", "D_f", "D_f,clean", "D_r,extra")])
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


def _lirf_table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("model")
    for name in ("Pre Acc", "Dep Acc", "H Mean", "Avg Acc"):
        table.add_column(name, justify="right")
    for label, m in rows.items():
        table.add_row(label, *[_fmt(m[k]) for k in ("pre_acc", "dep_acc", "h_mean", "avg_acc")])
    return table


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
        _check_dataset(data)
    dataset = api.bundle_dataset(bundle, data, data_dir)
    api.check_dataset_fits(bundle, dataset)
    target, modules, result = deposit_bundle(bundle, dataset, sets, settings, device=device,
                                             progress=True)  # fmt: skip
    taken = [c for r in deposit_records(target) for s in r["classes"] for c in s]
    x, y = dataset.test.x, dataset.test.y
    metrics = {"original": result.goal["original"], "target": result.goal["target"],
               "recover (these modules)": lirf_accuracy(withdraw(target, modules).model, x, y, taken)}  # fmt: skip
    console.print(_lirf_table(f"{dataset.name}: deposited {result.record['classes']} (test %)", metrics))
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
        _check_dataset(data)
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
        console.print(_lirf_table(f"{dataset.name}: deposited classes {taken} (test %)", {
            "target": lirf_accuracy(bundle.model, x, y, taken),
            "recover net": lirf_accuracy(recovered.model, x, y, taken)}))  # fmt: skip
    back = recovered.history[-1]["classes"]
    err_console.print(f"withdrew {len(loaded)} module(s), classes {back} back; wrote {out}")


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

    _check_choice(optimizer, ["sgd", "adam"], "optimizer")
    _check_choice(code_distribution, list(CODE_DISTRIBUTIONS), "code distribution")
    if steps < 1:
        raise ObliviateError(f"--steps must be >= 1, got {steps}")
    source_path = Path(source).expanduser()
    check_outputs([out, report], [source_path, weights], overwrite=overwrite)
    check_model_names([out])
    job = _join_job(nproc_per_node, batch_size)
    image = _image_options(image_size, resize, mean, std, max_memory_gib)
    bundle = None
    if source_path.suffix == ".safetensors" and source_path.is_file() and arch is None:
        bundle, origin = source_model(source_path, num_classes=0, input_shape=(1,))
        data = _dataset(dataset, data_dir, download, bundle, image)
    else:
        if dataset is None:
            raise ObliviateError("give the training data with --dataset (a registered dataset "
                                 "or folder:PATH)")  # fmt: skip
        data = _dataset(dataset, data_dir, download, None, image)
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
    _write_result(result, out, report, record, describe_retrofit)


def describe_retrofit(record: dict) -> list[str]:
    """The terminal lines of a retrofit record: what was done, and whether it met its goal."""
    origin = record["source"]
    what = origin.get("arch") or origin.get("source")
    lines = [
        f"retrofitted codes into {what} ({origin.get('kind')}"
        f"{', new head' if origin.get('head_replaced') else ''}) on {record['dataset']}: "
        f"{record['steps']} steps in {record['seconds']:.1f} s; test accuracy "
        f"{record['accuracy_before']:.2f} % -> {record['accuracy_after']:.2f} % "
        f"({-record['accuracy_drop']:+.2f} points, {record['check_samples']} samples); codes "
        f"classified as their class: {record['code_accuracy']:.1f} %"
    ]
    if not record["codes_learned"]:
        lines.append(f"WARNING: the codes of classes {record['codes_missed']} are not classified "
                     "as their class; the calibrated forget still solves its strength and "
                     "verifies each request, but paper mode (--lambda1/--lambda2) relies on "
                     "learned codes. More --steps or a larger --t-mix learn them")  # fmt: skip
    if not record["accuracy_kept"]:
        lines.append(f"WARNING: the retrofit cost {record['accuracy_drop']:.2f} points of test "
                     f"accuracy, more than --max-accuracy-drop {record['goal']['max_accuracy_drop']:g}; "
                     "a lower --lr or more --steps may keep more")  # fmt: skip
    if record["classes_with_negative_features"]:
        lines.append(f"note: {record['classes_with_negative_features']} classes have penultimate "
                     "features below zero on their training samples; the data-free forget "
                     "cannot bound those and will ask for --data")  # fmt: skip
    if record["goal_met"]:
        lines.append("goal met: every code learned, accuracy kept within "
                     f"{record['goal']['max_accuracy_drop']:g} point(s)")  # fmt: skip
    return lines


@app.command("list")
def list_cmd(
    what: Annotated[Optional[str], typer.Argument(help="'architectures' lists the torchvision and timm names retrofit and train take.")] = None,
    filter_: Annotated[Optional[str], typer.Option("--filter", help="Only architecture names containing this.")] = None,
) -> None:
    """List the registered datasets, models and unlearning methods (with the data they need)."""
    if what is not None:
        _check_choice(what, ["architectures"], "list")
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
    console.print(f"[bold]models[/]: {', '.join(trainable_models())}")
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


def _usage_message(exc: BaseException) -> str | None:
    """The one-line message of a command-line usage error, or ``None`` for any other error.

    Typer raises click-style exceptions (its vendored copy of click, or click itself in older
    versions); they are recognised by their class names, so no particular click is imported.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "ClickException" not in names:
        return None
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "obliviate"
    return f"{message} (see '{path} --help')"


def _speaks(about: str) -> bool:
    """Whether this process reports ``about`` (``error`` or ``interrupt``). Under torchrun
    every rank runs the same command on the same inputs and meets the same error: rank 0 says
    it once. Ranks started by ``--nproc-per-node`` leave Ctrl-C to the launcher, which says it."""
    rank = os.environ.get("RANK")
    if rank is None:
        return True
    return rank == "0" and (about == "error" or "OBLIVIATE_LAUNCHER" not in os.environ)


def _interrupted() -> None:
    if _speaks("interrupt"):
        err_console.print("interrupted", highlight=False)
    sys.exit(130)


def main() -> None:
    """Entry point: run the app. A user error (bad input, a usage mistake) prints one line on
    stderr and exits 2; Ctrl-C prints one line and exits 130."""
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore", GoalMissedWarning)  # each command prints its own WARNING line
    try:
        code = app(standalone_mode=False)
    except ObliviateError as exc:
        if _speaks("error"):
            err_console.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `obliviate`: help was printed
            sys.exit(0)
        message = _usage_message(exc)
        if message is None:
            if type(exc).__name__ == "Abort":
                _interrupted()
            raise
        err_console.print(f"error: {message}", highlight=False, soft_wrap=True)
        sys.exit(2)
    finally:
        _leave_job()
    if code == 130:  # typer turns Ctrl-C inside a command into exit code 130
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _leave_job() -> None:
    # Only obliviate.distributed joins a process group; --help and the like never import it
    # (nor torch), and an import cut short by Ctrl-C leaves no shutdown to call.
    shutdown = getattr(sys.modules.get("obliviate.distributed"), "shutdown", None)
    if shutdown is not None and "torch.distributed" in sys.modules:
        shutdown()


if __name__ == "__main__":
    main()
