"""Shared by the commands: the library's names, imported when first used (so ``obliviate
--help`` and usage errors need no torch), the option types and number checks, the checks of
inputs and outputs, and the writers."""

from __future__ import annotations

import importlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from obliviate.errors import ObliviateError
from obliviate.interrupts import cleaned_up


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
references = _Lazy("obliviate.references")
file_mode = _Lazy("obliviate.checkpoint", "file_mode")
load = _Lazy("obliviate.checkpoint", "load")
save = _Lazy("obliviate.checkpoint", "save")
CodeConfig = _Lazy("obliviate.codes", "CodeConfig")
DATASETS = _Lazy("obliviate.data", "DATASETS")
METHODS = _Lazy("obliviate.methods", "METHODS")
coerce_hyperparameters = _Lazy("obliviate.methods.base", "coerce_hyperparameters")
hyperparameter_defaults = _Lazy("obliviate.methods.base", "hyperparameter_defaults")
trainable_models = _Lazy("obliviate.models", "trainable_models")
model_options = _Lazy("obliviate.models", "model_options")
TrainConfig = _Lazy("obliviate.training", "TrainConfig")
truncation_oracle = _Lazy("obliviate.metrics", "truncation_oracle")
digest_matches = _Lazy("obliviate.digest", "digest_matches")
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


console = Console()
err_console = Console(stderr=True)


ImageSize = Annotated[Optional[int], typer.Option(help="Image folders: crop side in pixels (default 224, or the model's).", rich_help_panel="Image folders (folder:PATH)")]
Resize = Annotated[Optional[int], typer.Option(help="Image folders: resize the shorter side to this before the centre crop (default size*256/224).", rich_help_panel="Image folders (folder:PATH)")]
Mean = Annotated[Optional[str], typer.Option(help="Image folders: per-channel mean, R,G,B (default ImageNet's).", rich_help_panel="Image folders (folder:PATH)")]
Std = Annotated[Optional[str], typer.Option(help="Image folders: per-channel std, R,G,B (default ImageNet's).", rich_help_panel="Image folders (folder:PATH)")]
MaxMemory = Annotated[float, typer.Option(help="Image folders: decode into memory up to this many GiB, else stream from disk.", rich_help_panel="Image folders (folder:PATH)")]
NprocPerNode = Annotated[int, typer.Option(help="Train as this many DDP processes on this machine (gloo on CPU, NCCL on GPUs); --batch-size is the global batch. Several machines: use torchrun.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace output files that exist already (refused by default: model files and reports are audit artifacts).")]


def parse_classes(text: str, bundle: Any = None) -> list[int]:
    """``"0,3, 5"`` -> ``[0, 3, 5]``; with a model whose file records class names, names too
    (``"Trouser, Bag"`` -> ``[1, 8]``, :func:`obliviate.classes.resolve_classes`). A bad token is a
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


def check_dataset(name: str) -> str:
    """A registered dataset name or ``folder:PATH``."""
    if name.startswith("folder:"):
        if not name[len("folder:"):]:
            raise ObliviateError("give the image folder's path: --dataset folder:PATH")
        return name
    return check_choice(name, DATASETS.names(), "dataset (or folder:PATH for an image folder)")


def image_options(image_size: int | None, resize: int | None, mean: str | None,
                   std: str | None, max_memory_gib: float) -> dict:  # fmt: skip
    """The image-folder settings given on the command line."""
    given = {"image_size": image_size, "resize": resize,
             "mean": csv_floats(mean, "mean") if mean else None,
             "std": csv_floats(std, "std") if std else None}  # fmt: skip
    return {**{k: v for k, v in given.items() if v is not None}, "max_memory_gib": max_memory_gib}


def open_dataset(name: str | None, data_dir: Path | None, download: bool, bundle: Any = None,
             image: dict | None = None):  # fmt: skip
    """The dataset ``name`` (default: the model's); an image folder is read with the ``image``
    settings over those the model file recorded."""
    if name is not None:
        check_dataset(name)
    if bundle is not None:
        return api.bundle_dataset(bundle, name, data_dir, download, options=image)
    if name is None:
        raise ObliviateError("give a dataset (--dataset)")
    return api.resolve_dataset(name, data_dir, download, options=image)


def check_choice(value: str, choices: list[str], what: str) -> str:
    if value not in choices:
        raise ObliviateError(f"unknown {what} {value!r}; known: {', '.join(choices)}")
    return value


def csv_ints(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise ObliviateError(f"--{what} takes comma-separated integers, got {text!r}") from None


def csv_floats(text: str, what: str) -> list[float]:
    try:
        return [float(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise ObliviateError(f"--{what} takes comma-separated numbers, got {text!r}") from None


def parse_hyperparameters(items: list[str]) -> dict[str, str]:
    """``["alpha=10", "dampening=0.5"]`` -> ``{"alpha": "10", "dampening": "0.5"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ObliviateError(f"--hp takes KEY=VALUE (e.g. --hp alpha=10), got {item!r}")
        out[key.strip().replace("-", "_")] = value.strip()
    return out


def parse_model_options(items: list[str], model: str) -> dict[str, Any]:
    """``--model-option KEY=VALUE`` items -> typed constructor arguments of the registered
    architecture ``model`` (e.g. ``width=16``); refused for wrapped torchvision/timm models."""
    if not items:
        return {}
    if model.startswith(("torchvision:", "timm:")):
        raise ObliviateError(f"--model-option is for obliviate's own architectures; {model} is "
                             "built by its library with its own defaults")  # fmt: skip
    from obliviate.models import MODELS, model_options
    from obliviate.registry import coerce_keywords

    raw: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ObliviateError(f"--model-option takes KEY=VALUE (e.g. --model-option width=16), "
                                 f"got {item!r}")  # fmt: skip
        raw[key.strip().replace("-", "_")] = value.strip()
    return coerce_keywords(MODELS.get(model), raw, owner=f"model {model!r}", noun="option",
                           known=model_options(model))  # fmt: skip


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


def refuse_missed_goal(missed: str, *, recorded: str = "goal_met: false") -> None:
    """The one policy of forget, deposit, backdoor and retrofit for a result that missed the
    goal the command checks: nothing is written and the command exits 2 with this line,
    unless it was given ``--force`` (then it writes, records the miss as ``recorded``, and
    warns)."""
    raise ObliviateError(f"{missed}; nothing was written (--force writes it anyway, recorded "
                         f"as {recorded})")


def write_result(bundle: Any, out: Path, report: Path | None, record: dict,
                  describe: Any) -> None:  # fmt: skip
    """Save ``bundle`` to ``out``, its ``record`` as JSON to ``report``, and print the record's
    lines (``describe(record)``) and what was written."""
    save(bundle, out)
    if report is not None:
        write_json_atomic(report, record)
    for line in describe(record):
        err_console.print(line, highlight=False, soft_wrap=True)
    err_console.print(f"wrote {out}", highlight=False)
