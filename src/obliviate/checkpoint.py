"""The model file: one ``.safetensors`` holding weights, mnemonic codes and JSON metadata.

Layout
    tensors ``weights.<state-dict key>``  the model's state dict (parameters and buffers)
    tensor  ``codes``                     the mnemonic codes, ``[num_classes, *input_shape]``
    tensors ``stats.margin``, ``stats.feature_min``  training statistics (see obliviate.stats),
                                          when recorded, bound by their metadata
                                          ``stats_weights_sha256`` to the weights they describe
    metadata ``obliviate``                JSON: format version, architecture and kwargs,
                                          num_classes, input shape, dataset, code config,
                                          training config, forgotten classes, forget history,
                                          class names (one per class, or null: unknown)

Loading never unpickles. Writes go to a temporary file in the target directory that is then
renamed over the target, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.digest import digest_matches, weights_sha256
from obliviate.errors import ObliviateError
from obliviate.interrupts import cleaned_up
from obliviate.models import Classifier, create_model
from obliviate.stats import FEATURE_MIN_KEY, MARGIN_KEY, TrainingStatistics, stale_reason

log = logging.getLogger(__name__)

FORMAT = "obliviate.model"
FORMAT_VERSION = 1
WEIGHT_PREFIX = "weights."
CODES_KEY = "codes"


@dataclass
class ModelBundle:
    """A model together with everything needed to forget with it and to audit it.

    Attributes:
        model: the classifier (a registered architecture).
        arch: its registry name; ``arch_kwargs`` the extra constructor arguments.
        num_classes, input_shape: what it classifies.
        dataset: name of the dataset it was trained on.
        codes: its mnemonic codes (``None`` for a model trained without them).
        train_config: the training settings, for the record.
        forgotten_classes: every class forgotten so far.
        history: one audit record per forget request, oldest first.
        stats: training statistics (per-class logit margins, feature minima) that let the
            data-free forget verify its result, bound to the weights they were recorded on
            (``stats.weights_sha256``, checked on load and by every forget); ``None`` when
            not recorded.
        dataset_options: how the dataset's inputs are made (an image folder's resize, crop
            and normalisation), so later commands read the data the same way.
        retrofit: the audit record of ``obliviate retrofit`` when codes were added to a
            model trained without them, else ``None``.
        class_names: the name of each class, index order (``None``: unknown, e.g. a file
            written before names were recorded); data whose names differ is refused.
    """

    model: Classifier
    arch: str
    num_classes: int
    input_shape: tuple[int, ...]
    dataset: str
    codes: MnemonicCodes | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    forgotten_classes: list[int] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    stats: TrainingStatistics | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    retrofit: dict[str, Any] | None = None
    class_names: list[str] | None = None

    def clone(self) -> ModelBundle:
        """A deep copy: the new bundle shares no tensor with this one."""
        return copy.deepcopy(self)

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata written into the file."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": self.arch,
            "arch_kwargs": self.arch_kwargs,
            "num_classes": self.num_classes,
            "input_shape": list(self.input_shape),
            "dataset": self.dataset,
            "codes": dataclasses.asdict(self.codes.config) if self.codes is not None else None,
            "train_config": self.train_config,
            "forgotten_classes": sorted(self.forgotten_classes),
            "history": self.history,
            "stats_samples": self.stats.samples if self.stats is not None else None,
            "stats_weights_sha256": self.stats.weights_sha256 if self.stats is not None else None,
            "stats_layer": (self.stats.layer.layer
                            if self.stats is not None and self.stats.layer is not None else None),
            "dataset_options": self.dataset_options,
            "retrofit": self.retrofit,
            "class_names": list(self.class_names) if self.class_names is not None else None,
        }


def save(bundle: ModelBundle, path: str | Path) -> Path:
    """Write ``bundle`` to ``path`` atomically (temporary file + rename). Returns the path."""
    tensors = {
        WEIGHT_PREFIX + k: v.detach().cpu().contiguous().clone()
        for k, v in bundle.model.state_dict().items()
    }
    if bundle.codes is not None:
        tensors[CODES_KEY] = bundle.codes.tensor.cpu().contiguous()
    if bundle.stats is not None:
        tensors.update(bundle.stats.tensors())
    return write_safetensors(tensors, bundle.metadata(), path)


def file_mode() -> int:
    """The mode a new file gets from ``open()`` under the current umask (``mkstemp`` would
    leave 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, Any],
                      path: str | Path) -> Path:  # fmt: skip
    """Write ``tensors`` with JSON ``metadata`` (under the key ``obliviate``) to ``path``
    atomically: a temporary file in the same directory, then a rename."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise ObliviateError(f"directory {path.parent} does not exist; create it first")
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise ObliviateError(f"{path} exists and is not a regular file; give a file path")
    with cleaned_up():  # Ctrl-C here removes the temporary file (obliviate.interrupts)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
            os.close(fd)
            save_file(tensors, tmp, metadata={"obliviate": json.dumps(metadata)})
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
        except BaseException as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, (OSError, SafetensorError)):  # read-only, full, gone: one line
                raise ObliviateError(f"could not write {path}: {getattr(exc, 'strerror', None) or exc}; "
                                     "nothing was written there") from exc  # fmt: skip
            raise
    return path


def read_safetensors(path: str | Path, what: str,
                     map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:  # fmt: skip
    """``(metadata, tensors)`` of a file written by :func:`write_safetensors`; ``what`` names
    the expected kind of file in error messages."""
    path = Path(path)
    if path.is_dir():
        raise ObliviateError(f"{path} is a directory; give the {what} file (.safetensors) in it")
    if not path.is_file():
        raise ObliviateError(f"{what} file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as fh:
            raw = (fh.metadata() or {}).get("obliviate")
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ObliviateError(
            f"{path} is not a readable safetensors file ({exc}); is it truncated or of "
            "another format?"
        ) from None
    if raw is None:
        raise ObliviateError(f"{path} is a safetensors file but not an obliviate {what}")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise ObliviateError(f"{path}: the obliviate metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise ObliviateError(f"{path}: the obliviate metadata is a JSON {_json_type(meta)}, not "
                             f"an object; the file is damaged or not an obliviate {what}")  # fmt: skip
    return meta, tensors


def load(path: str | Path, *, map_location: str | torch.device = "cpu",
         module: torch.nn.Module | None = None) -> ModelBundle:  # fmt: skip
    """Read a model file written by :func:`save` (never unpickles).

    Args:
        path: the ``.safetensors`` model file.
        map_location: where the tensors go.
        module: for a model made with :func:`obliviate.wrap` from a module of your own
            (architecture ``module:CLASS``): a freshly built instance of that module, whose
            weights the file fills in (its head is found as when it was wrapped). It may
            also replace a torchvision/timm architecture.

    Raises:
        ObliviateError: the file is missing, not a safetensors file, truncated, or not an
            obliviate model.
    """
    path = Path(path)
    meta, tensors = read_safetensors(path, "model", map_location)
    if not isinstance(meta, dict):
        raise ObliviateError(f"{path}: the obliviate metadata is not a JSON object")
    if meta.get("format") == "obliviate.deposit-module":
        raise ObliviateError(f"{path} is a LIRF deposit module, not a model; give it to "
                             "'obliviate withdraw' with its target")  # fmt: skip
    _check_metadata_types(path, meta)
    version = meta.get("format_version", 0)
    if meta.get("format") != FORMAT or not 0 <= _int_or(version, -1) <= FORMAT_VERSION:
        raise ObliviateError(
            f"{path}: unsupported model format {meta.get('format')!r} "
            f"version {meta.get('format_version')!r}; upgrade obliviate"
        )
    arch, num_classes, input_shape, arch_kwargs = _checked_architecture(path, meta)
    forgotten, history = _checked_history(path, meta, num_classes)
    state = {k[len(WEIGHT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    try:
        if module is not None or arch.startswith("module:"):
            model = _given_module(path, arch, module, input_shape, num_classes, arch_kwargs)
        else:
            with torch.device("meta"):  # shapes only: nothing is allocated before they are checked
                model = create_model(arch, input_shape=input_shape, num_classes=num_classes,
                                     **arch_kwargs)  # fmt: skip
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ObliviateError(f"{path}: cannot build {arch} from the file's settings: {exc}") from None
    expected = {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}
    found = {k: (tuple(v.shape), v.dtype) for k, v in state.items()}
    if expected != found:
        wrong = sorted(set(expected) ^ set(found)) or sorted(
            k for k in expected if expected[k] != found[k]
        )
        if module is not None:
            raise ObliviateError(f"{path}: the weights do not fit the module given (first "
                                 f"mismatch: {wrong[0]}); give the module the file was made "
                                 "from")  # fmt: skip
        raise ObliviateError(f"{path}: weights do not fit {arch} (first mismatch: {wrong[0]}); "
                             "the file is damaged or was edited")  # fmt: skip
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    broken = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if broken:
        raise ObliviateError(f"{path}: non-finite weights in {', '.join(broken[:3])}; the file "
                             "is damaged or training diverged")  # fmt: skip
    codes = None
    if meta.get("codes") is not None and CODES_KEY in tensors:
        expected_codes = (num_classes, *input_shape)
        if tuple(tensors[CODES_KEY].shape) != expected_codes:
            raise ObliviateError(
                f"{path}: codes have shape {tuple(tensors[CODES_KEY].shape)}, expected "
                f"{expected_codes}; the file is inconsistent, re-create it with 'obliviate train'"
            )
        if not tensors[CODES_KEY].is_floating_point() or not bool(torch.isfinite(tensors[CODES_KEY]).all()):
            raise ObliviateError(f"{path}: the codes are not finite numbers; the file is damaged")
        if not isinstance(meta["codes"], dict):
            raise ObliviateError(f"{path}: the code settings are not a JSON object")
        try:
            config = CodeConfig(**meta["codes"])
        except TypeError as exc:
            raise ObliviateError(f"{path}: bad code settings: {exc}") from None
        codes = MnemonicCodes(tensors[CODES_KEY], config)
    layer_name = meta.get("stats_layer")
    try:
        stats = TrainingStatistics.from_tensors(
            tensors, _int_or(meta.get("stats_samples"), 0),
            layer=layer_name if isinstance(layer_name, str) else None, num_classes=num_classes,
        )  # fmt: skip
    except ObliviateError as exc:
        raise ObliviateError(f"{path}: {exc}; the file is damaged") from None
    if stats is not None and stats.layer is not None:
        _check_layer_statistics(path, model, stats.layer, forgotten)
    if stats is not None:
        stats.weights_sha256 = meta.get("stats_weights_sha256")
        current = weights_sha256(model, reuse=False)
        if stats.weights_sha256 != current and digest_matches(stats.weights_sha256, model,
                                                               current):  # fmt: skip
            stats.weights_sha256 = current  # a file of an earlier release: its digest, rebound
        stale = stale_reason(stats, current)
        if stale:  # kept, so that a forget can say why it refuses to trust them
            log.warning("%s: %s", path, stale)
    malformed = stats is None and MARGIN_KEY in tensors and FEATURE_MIN_KEY in tensors
    if malformed or stats is not None and (
        tuple(stats.margin.shape) != (num_classes, num_classes)
        or stats.feature_min.shape[0] != num_classes
        or torch.isnan(stats.margin).any() or not bool(torch.isfinite(stats.feature_min).all())
    ):
        raise ObliviateError(f"{path}: the training statistics do not fit the model; the file "
                             "is damaged")  # fmt: skip
    return ModelBundle(
        model=model,
        arch=arch,
        num_classes=num_classes,
        input_shape=input_shape,
        dataset=str(meta.get("dataset", "")),
        codes=codes,
        arch_kwargs=arch_kwargs,
        train_config=_dict_or_empty(path, meta, "train_config"),
        forgotten_classes=forgotten,
        history=history,
        stats=stats,
        dataset_options=_dict_or_empty(path, meta, "dataset_options"),
        retrofit=_dict_or_empty(path, meta, "retrofit") or None,
        class_names=_checked_class_names(path, meta, num_classes),
    )


def _check_layer_statistics(path: Path, model: Classifier, layer: Any,
                            forgotten: list[int]) -> None:  # fmt: skip
    """The layer statistics name the model's own feature layer and fit its width, and only
    forgotten classes have the infinite margins of cleared entries."""
    cleared = torch.isinf(layer.margin_quantiles).any(1).nonzero().flatten().tolist()
    if not set(cleared) <= set(forgotten):
        raise ObliviateError(f"{path}: the layer statistics have infinite margins for classes "
                             f"{sorted(set(cleared) - set(forgotten))}, which the model has not "
                             "forgotten; the file is damaged or edited")  # fmt: skip
    from obliviate.deep_layer import weight_matrix

    own = model.feature_layer() if hasattr(model, "feature_layer") else None
    if own is None or own.name != layer.layer:
        raise ObliviateError(f"{path}: the layer statistics name layer {layer.layer!r}, which "
                             "this architecture does not edit; the file is damaged or edited")  # fmt: skip
    width = weight_matrix(own.module(model)).shape[1]
    if layer.class_mean.shape[1] != width:
        raise ObliviateError(f"{path}: the layer statistics are {layer.class_mean.shape[1]} wide "
                             f"but layer {layer.layer!r} takes {width}; the file is damaged")  # fmt: skip
    if layer.skip_mean is not None and (own.residual is None or own.output_scale is None
                                        or layer.skip_mean.shape[1] != len(own.output_scale)):
        raise ObliviateError(f"{path}: the layer statistics hold shortcut means that layer "
                             f"{layer.layer!r} has no shortcut for; the file is damaged")  # fmt: skip


def _given_module(path: Path, arch: str, module: torch.nn.Module | None,
                  input_shape: tuple[int, ...], num_classes: int,
                  arch_kwargs: dict) -> Classifier:  # fmt: skip
    """The caller's module, wrapped as the file's model was (see :func:`obliviate.wrap`)."""
    from obliviate.models.external import WrappedClassifier

    if module is None:
        raise ObliviateError(f"{path} holds a {arch[len('module:'):]} built by your own code; "
                             "load it with obliviate.load(path, module=YourModule(...))")  # fmt: skip
    if not isinstance(module, torch.nn.Module):
        raise ObliviateError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if isinstance(module, Classifier):
        return module
    return WrappedClassifier(copy.deepcopy(module), head=arch_kwargs.get("head"),
                             input_shape=input_shape, num_classes=num_classes)  # fmt: skip


#: Sanity limits on what a model file may ask for before anything is allocated.
MAX_CLASSES = 100_000
MAX_INPUT_VALUES = 50_000_000
MAX_ARCH_INT = 1_000_000


#: The JSON type of every top-level metadata value a model file may hold (absent is allowed;
#: ``None`` in a tuple: null is allowed too).
METADATA_TYPES: dict[str, tuple[type | None, ...]] = {
    "format": (str,), "format_version": (int,), "arch": (str,), "arch_kwargs": (dict,),
    "num_classes": (int,), "input_shape": (list,), "dataset": (str,), "codes": (dict, None),
    "train_config": (dict, None), "forgotten_classes": (list,), "history": (list,),
    "stats_samples": (int, None), "dataset_options": (dict, None), "retrofit": (dict, None),
    "stats_weights_sha256": (str, None),
    "class_names": (list, None),
}  # fmt: skip


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
             float: "number", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _check_metadata_types(path: Path, meta: dict) -> None:
    """Refuse a top-level metadata value of the wrong JSON type (a boolean is no number)."""
    for key, allowed in METADATA_TYPES.items():
        if key not in meta:
            continue
        value = meta[key]
        ok = any(value is None if kind is None else
                 isinstance(value, kind) and not (kind is int and isinstance(value, bool))
                 for kind in allowed)  # fmt: skip
        if not ok:
            wanted = " or ".join("null" if k is None else _json_type(k()) for k in allowed)
            raise ObliviateError(f"{path}: the metadata's {key!r} is a JSON {_json_type(value)}, "
                                 f"expected {wanted}; the file is damaged or was edited")  # fmt: skip


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _dict_or_empty(path: Path, meta: dict, key: str) -> dict:
    value = meta.get(key) or {}
    if not isinstance(value, dict):
        raise ObliviateError(f"{path}: '{key}' must be a JSON object; the file is damaged")
    return value


def _checked_architecture(path: Path, meta: dict) -> tuple[str, int, tuple[int, ...], dict]:
    """``arch``, ``num_classes``, ``input_shape`` and ``arch_kwargs``, type- and size-checked."""
    from obliviate.models import MODELS

    from obliviate.models.external import is_external

    arch = meta.get("arch")
    if not isinstance(arch, str) or (arch not in MODELS.names() and not is_external(arch)):
        raise ObliviateError(f"{path}: unknown architecture {arch!r}; known: "
                             f"{', '.join(MODELS.names())}")  # fmt: skip
    num_classes = meta.get("num_classes")
    if _int_or(num_classes, -1) < 2 or num_classes > MAX_CLASSES:
        raise ObliviateError(f"{path}: num_classes must be an integer in 2..{MAX_CLASSES}, got "
                             f"{num_classes!r}")  # fmt: skip
    shape = meta.get("input_shape")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 4
            or any(_int_or(d, 0) < 1 for d in shape) or math.prod(shape) > MAX_INPUT_VALUES):
        raise ObliviateError(f"{path}: input_shape must be 1 to 4 positive integers with at most "
                             f"{MAX_INPUT_VALUES} values, got {shape!r}")  # fmt: skip
    kwargs = _dict_or_empty(path, meta, "arch_kwargs")
    for key, value in kwargs.items():
        if not _sane_setting(value):
            raise ObliviateError(f"{path}: architecture setting {key}={value!r} holds a value "
                                 f"that is not a number within +-{MAX_ARCH_INT}, a string, a "
                                 "list or an object")  # fmt: skip
    return arch, num_classes, tuple(shape), kwargs


def _sane_setting(value: Any, depth: int = 0) -> bool:
    """JSON made of strings, booleans, null and numbers within ``MAX_ARCH_INT``, nested at most
    four deep (a recover net's settings nest its base model's)."""
    if depth > 4:
        return False
    if value is None or isinstance(value, (bool, str)):
        return True
    if isinstance(value, (int, float)):
        return abs(value) <= MAX_ARCH_INT
    if isinstance(value, list):
        return all(_sane_setting(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _sane_setting(v, depth + 1) for k, v in value.items())
    return False


def _checked_history(path: Path, meta: dict, num_classes: int) -> tuple[list[int], list[dict]]:
    """``forgotten_classes`` (distinct, in range, not all) and ``history`` (a list of objects)."""
    forgotten = meta.get("forgotten_classes", [])
    if (not isinstance(forgotten, list) or any(not 0 <= _int_or(c, -1) < num_classes for c in forgotten)
            or len(set(forgotten)) != len(forgotten) or len(forgotten) >= num_classes):
        raise ObliviateError(f"{path}: forgotten_classes must be distinct classes of "
                             f"0..{num_classes - 1}, not all of them; got {forgotten!r}")  # fmt: skip
    history = meta.get("history", [])
    if not isinstance(history, list) or any(not isinstance(r, dict) for r in history):
        raise ObliviateError(f"{path}: the history must be a list of records; the file is damaged")
    return list(forgotten), list(history)


def class_names_problem(names: Any, num_classes: int) -> str | None:
    """What is wrong with ``names`` as the class names of a ``num_classes``-class model (a list
    of distinct strings, one per class), or ``None`` when nothing is."""
    if not isinstance(names, (list, tuple)) or any(not isinstance(n, str) for n in names):
        return "the class names must be a list of strings"
    if len(names) != num_classes:
        return f"there are {len(names)} class names for {num_classes} classes"
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return f"the class name {name!r} is given twice"
        seen.add(name)
    return None


def _checked_class_names(path: Path, meta: dict, num_classes: int) -> list[str] | None:
    """``class_names``: absent or null (unknown), else distinct strings, one per class."""
    names = meta.get("class_names")
    if names is None:
        return None
    problem = class_names_problem(names, num_classes)
    if problem is not None:
        raise ObliviateError(f"{path}: {problem}; the file is damaged or was edited")
    return list(names)
