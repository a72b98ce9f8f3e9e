"""The SHA-256 of a model's weights: what audit records and the training statistics are bound to.

A leaf module (it imports torch only), so that the statistics, the model file and the
methods can all name the weights they describe without importing each other.
"""

from __future__ import annotations

import hashlib
import os
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

#: Digests already computed, per model (weakly held): a weak reference to every tensor of its
#: state dict, their stamps (:func:`_stamp`) and the digest.
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Per model (weakly held): a private copy of its weights' bytes and their digest
#: (:func:`checked_weights_sha256`).
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Per model (weakly held): a digest being computed in the background (:func:`hash_in_background`)
#: with the stamps of the tensors it reads.
_PENDING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The largest state dict (bytes) that :func:`checked_weights_sha256` keeps a copy of.
COPY_LIMIT = 64 << 20
_POOL: tuple[int, ThreadPoolExecutor] | None = None


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
    pending = _PENDING.pop(model, None)
    if pending is not None and reuse and _same_tensors(pending, state, stamps):
        value = pending[2].result()  # hashed in the background from these very tensors
    else:
        value = _sha256(_pieces(state))
    if stamps is not None:
        _DIGESTS[model] = ([weakref.ref(t) for t in state.values()], stamps, value)
    return value


def hash_in_background(model: torch.nn.Module) -> None:
    """Start :func:`weights_sha256` of ``model`` in a worker thread, for a model whose weights
    are final but whose digest is needed only later (a forget's output while the forget does
    other work): the next ``weights_sha256(model)`` waits for that result instead of hashing
    again, when every tensor is still the same object with the same stamps as when the work
    began (the rule of :func:`weights_sha256`); otherwise the background result is dropped and
    the weights are hashed afresh. Models on another device than the CPU are left alone.

    SHA-256 releases the interpreter lock while it hashes, so the digest costs wall-clock time
    only where the caller has nothing else to do. Changing the weights while the thread reads
    them (through ``.data``, which the stamps do not see) gives a digest of neither state:
    hand the model to no one until its digest has been taken.
    """
    state = model.state_dict(keep_vars=True)
    stamps = _stamps(state)
    if stamps is None or any(t.device.type != "cpu" for t in state.values()):
        return
    pieces = _pieces(state)  # views of the tensors' memory, made here: the thread only hashes
    _PENDING[model] = ([weakref.ref(t) for t in state.values()], stamps,
                       _pool().submit(_sha256, pieces))  # fmt: skip


def _pool() -> ThreadPoolExecutor:
    """One worker thread, made again in a forked child (whose parent's threads do not exist)."""
    global _POOL
    if _POOL is None or _POOL[0] != os.getpid():
        _POOL = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="obliviate-sha256"))
    return _POOL[1]


def _same_tensors(memo: tuple, state: dict[str, torch.Tensor], stamps: list[tuple] | None) -> bool:
    """Whether ``state`` holds the very tensors a memo (weak references, stamps, value) was made
    from, unchanged since (same stamps)."""
    if stamps is None or memo[1] != stamps or len(memo[0]) != len(state):
        return False
    return all(ref() is t for ref, t in zip(memo[0], state.values(), strict=True))


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
    memo = _DIGESTS.get(model)
    return memo[2] if memo is not None and _same_tensors(memo, state, stamps) else None


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
