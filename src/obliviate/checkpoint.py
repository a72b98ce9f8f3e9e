"""The model file: one ``.safetensors`` holding weights, mnemonic codes and JSON metadata.

Layout
    tensors ``weights.<state-dict key>``  the model's state dict (parameters and buffers)
    tensor  ``codes``                     the mnemonic codes, ``[num_classes, *input_shape]``
    tensors ``stats.margin``, ``stats.feature_min``  training statistics (see obliviate.stats),
                                          when recorded
    metadata ``obliviate``                JSON: format version, architecture and kwargs,
                                          num_classes, input shape, dataset, code config,
                                          training config, forgotten classes, forget history

Loading never unpickles. Writes go to a temporary file in the target directory that is then
renamed over the target, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from obliviate.codes import CodeConfig, MnemonicCodes
from obliviate.errors import ObliviateError
from obliviate.models import Classifier, create_model
from obliviate.stats import TrainingStatistics

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
            data-free forget verify its result; ``None`` when not recorded or stale.
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
        }


def weights_sha256(model: torch.nn.Module) -> str:
    """SHA-256 over the state dict (sorted keys, names, dtypes, shapes and raw bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():  # the raw bytes, through the buffer protocol (no copy)
            digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return digest.hexdigest()


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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"obliviate": json.dumps(metadata)})
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_safetensors(path: str | Path, what: str,
                     map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:  # fmt: skip
    """``(metadata, tensors)`` of a file written by :func:`write_safetensors`; ``what`` names
    the expected kind of file in error messages."""
    path = Path(path)
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
        return json.loads(raw), tensors
    except json.JSONDecodeError:
        raise ObliviateError(f"{path}: the obliviate metadata is not valid JSON") from None


def load(path: str | Path, *, map_location: str | torch.device = "cpu") -> ModelBundle:
    """Read a model file written by :func:`save` (never unpickles).

    Raises:
        ObliviateError: the file is missing, not a safetensors file, truncated, or not an
            obliviate model.
    """
    path = Path(path)
    meta, tensors = read_safetensors(path, "model", map_location)
    if meta.get("format") == "obliviate.deposit-module":
        raise ObliviateError(f"{path} is a LIRF deposit module, not a model; give it to "
                             "'obliviate withdraw' with its target")  # fmt: skip
    if meta.get("format") != FORMAT or meta.get("format_version", 0) > FORMAT_VERSION:
        raise ObliviateError(
            f"{path}: unsupported model format {meta.get('format')!r} "
            f"version {meta.get('format_version')!r}; upgrade obliviate"
        )
    input_shape = tuple(int(s) for s in meta["input_shape"])
    model = create_model(
        meta["arch"],
        input_shape=input_shape,
        num_classes=int(meta["num_classes"]),
        **meta.get("arch_kwargs", {}),
    )
    state = {k[len(WEIGHT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(WEIGHT_PREFIX)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ObliviateError(f"{path}: weights do not fit {meta['arch']}: {first}") from None
    model.eval()
    codes = None
    if meta.get("codes") is not None and CODES_KEY in tensors:
        expected = (int(meta["num_classes"]), *input_shape)
        if tuple(tensors[CODES_KEY].shape) != expected:
            raise ObliviateError(
                f"{path}: codes have shape {tuple(tensors[CODES_KEY].shape)}, expected {expected}"
                "; the file is inconsistent, re-create it with 'obliviate train'"
            )
        codes = MnemonicCodes(tensors[CODES_KEY], CodeConfig(**meta["codes"]))
    return ModelBundle(
        model=model,
        arch=meta["arch"],
        num_classes=int(meta["num_classes"]),
        input_shape=input_shape,
        dataset=meta.get("dataset", ""),
        codes=codes,
        arch_kwargs=meta.get("arch_kwargs", {}),
        train_config=meta.get("train_config", {}),
        forgotten_classes=list(meta.get("forgotten_classes", [])),
        history=list(meta.get("history", [])),
        stats=TrainingStatistics.from_tensors(tensors, int(meta.get("stats_samples") or 0)),
    )
