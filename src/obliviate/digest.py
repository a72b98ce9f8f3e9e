"""The SHA-256 of a model's weights: what audit records and the training statistics are bound to.

A leaf module (it imports torch only), so that the statistics, the model file and the
methods can all name the weights they describe without importing each other.
"""

from __future__ import annotations

import hashlib
import weakref

import numpy as np
import torch

#: Digests already computed, per model (weakly held): a weak reference to every tensor of its
#: state dict, their stamps (:func:`_stamp`) and the digest.
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Per model (weakly held): a private copy of its weights' bytes and their digest
#: (:func:`checked_weights_sha256`).
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The largest state dict (bytes) that :func:`checked_weights_sha256` keeps a copy of.
COPY_LIMIT = 64 << 20


def weights_sha256(model: torch.nn.Module, *, reuse: bool = True) -> str:
    """SHA-256 over the state dict: for each entry in sorted key order, the UTF-8 bytes of
    ``f"{name}|{dtype}|{tuple(shape)}|"`` and then the tensor's raw bytes (C order).

    The same value for a model file: ``python -c "import obliviate; from obliviate.checkpoint
    import weights_sha256; print(weights_sha256(obliviate.load('m.safetensors').model))"``.

    A model's digest is remembered and given again while every tensor of its state dict is
    the same object at the same address with the same version counter, which PyTorch bumps on
    every in-place change (an optimiser step, ``load_state_dict``, ``copy_``, ``+=`` under
    ``no_grad``). Writes through ``.data``, which PyTorch does not count, are not seen: pass
    ``reuse=False`` to hash afresh.
    """
    state = model.state_dict(keep_vars=True)
    stamps = _stamps(state)
    known = _remembered(model, state, stamps) if reuse else None
    if known is not None:
        return known
    value = _sha256(_pieces(state))
    if stamps is not None:
        _DIGESTS[model] = ([weakref.ref(t) for t in state.values()], stamps, value)
    return value


def checked_weights_sha256(model: torch.nn.Module) -> str:
    """``weights_sha256(model, reuse=False)``: the digest of the weights as they are now, writes
    through ``.data`` included, but without hashing them again when they are unchanged.

    The first call on a model hashes a private copy of its weights' bytes and keeps both; a
    later call compares the weights byte for byte with that copy (names, dtypes and shapes
    too) and gives the kept digest when every byte is the same, which takes a fraction of
    the time of hashing. Any difference, however made, means hashing afresh. Models on
    another device than the CPU, or whose weights take more than :data:`COPY_LIMIT` bytes, are
    always hashed afresh (no copy is kept).
    """
    state = model.state_dict(keep_vars=True)
    items = sorted((name, t.detach()) for name, t in state.items())
    kept = _COPIES.get(model)
    if kept is not None and _same_bytes(items, kept[0]):
        return kept[1]
    if (any(t.device.type != "cpu" for _, t in items)
            or sum(t.numel() * t.element_size() for _, t in items) > COPY_LIMIT):  # fmt: skip
        _COPIES.pop(model, None)
        return weights_sha256(model, reuse=False)
    copies = [(name, t.clone(memory_format=torch.contiguous_format)) for name, t in items]
    value = _sha256(_pieces(dict(copies)))  # the digest of exactly the bytes kept
    _COPIES[model] = (copies, value)
    return value


def _same_bytes(items: list[tuple[str, torch.Tensor]],
                copies: list[tuple[str, torch.Tensor]]) -> bool:  # fmt: skip
    """Whether the named tensors hold exactly the copies' names, dtypes, shapes and bytes."""
    if len(items) != len(copies):
        return False
    for (name, t), (kept_name, kept) in zip(items, copies, strict=True):
        if (name != kept_name or t.dtype != kept.dtype or t.shape != kept.shape
                or t.device != kept.device):  # fmt: skip
            return False
        if t.numel() and not np.array_equal(_words(t), _words(kept)):
            return False
    return True


def _words(t: torch.Tensor) -> np.ndarray:
    """``t``'s bytes as unsigned integers (8 bytes each where they divide evenly): equal
    arrays are equal bytes (-0.0 differs from 0.0, a NaN equals itself). NumPy compares them
    in the calling thread, without waking PyTorch's thread pool."""
    raw = t.reshape(-1).view(torch.uint8).numpy()
    return raw.view(np.uint64) if raw.size % 8 == 0 else raw


def _remembered(model: torch.nn.Module, state: dict[str, torch.Tensor],
                stamps: list[tuple] | None) -> str | None:  # fmt: skip
    """The digest remembered for ``model`` while its tensors are the very ones, unchanged
    since (:func:`_stamps`), else ``None``."""
    memo = _DIGESTS.get(model) if stamps is not None else None
    if memo is None or memo[1] != stamps:
        return None
    same = all(ref() is t for ref, t in zip(memo[0], state.values(), strict=True))
    return memo[2] if same else None


def _pieces(state: dict[str, torch.Tensor]) -> list[bytes | memoryview]:
    """What :func:`weights_sha256` hashes, in order: for each entry in sorted key order, its
    header and its raw bytes (through the buffer protocol: no copy of a CPU tensor)."""
    pieces: list[bytes | memoryview] = []
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().contiguous()
        pieces.append(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            pieces.append(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return pieces


def _sha256(pieces: list[bytes | memoryview]) -> str:
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
    return digest.hexdigest()


def _stamps(state: dict[str, torch.Tensor]) -> list[tuple] | None:
    """Name, address, version counter, dtype, shape and device of each tensor; ``None`` when a
    tensor keeps no version counter (made under ``torch.inference_mode``)."""
    try:
        return [(name, t.data_ptr(), t._version, t.dtype, tuple(t.shape), t.device)
                for name, t in state.items()]  # fmt: skip
    except RuntimeError:
        return None
