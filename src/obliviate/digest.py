"""The SHA-256 of a model's weights: what audit records and the training statistics are bound to.

The digest is a two-level SHA-256 (:func:`weights_sha256`): one SHA-256 per tensor, and one
over the tensors' names, dtypes, shapes and digests. It is exactly as binding as a SHA-256 of
every byte in a row, and it lets a forget that changed one tensor (the head) hash that tensor
alone: every other tensor of its output is compared byte for byte with the input's and keeps
its digest (:func:`checked_weights_sha256` with ``like``). Files written before this digest
hold the one-level SHA-256 of an earlier release (:func:`legacy_weights_sha256`);
:func:`digest_matches` accepts both.

A leaf module (it imports torch only), so that the statistics, the model file and the
methods can all name the weights they describe without importing each other.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

#: What the two-level digest hashes first: its name, so that it never equals the one-level
#: digest of an earlier release.
SCHEME = b"obliviate weights sha256 tree v1\n"
#: Digests already computed, per model (weakly held): a weak reference to every tensor of its
#: state dict, their stamps (:func:`_stamps`) and the digest.
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: Per model (weakly held): by name, a private copy of each of its tensors with that copy's
#: bytes, entry in the digest and finiteness (:func:`_piece`; :func:`check_weights`).
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
#: The largest state dict (bytes) that :func:`check_weights` keeps a copy of.
COPY_LIMIT = 64 << 20


def weights_sha256(model: torch.nn.Module, *, reuse: bool = True) -> str:
    """The SHA-256 of the weights, in two levels: the SHA-256 of :data:`SCHEME` followed by, for
    each entry of the state dict in sorted key order, the length of its header as 4 bytes
    (big-endian), the header (the UTF-8 text ``f"{name}|{dtype}|{tuple(shape)}|"``), and the
    32-byte SHA-256 of the tensor's raw bytes (C order).

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
    value = _combine([_piece(name, t, tested=False) for name, t in _sorted_items(state)])
    _remember(model, state, stamps, value)
    return value


@dataclass(frozen=True)
class WeightsCheck:
    """What :func:`check_weights` found: the weights' digest (:func:`weights_sha256`), and the
    names of the floating-point tensors that hold NaN or inf (:func:`finite`)."""

    sha256: str
    non_finite: tuple[str, ...]


def check_weights(model: torch.nn.Module, *, like: torch.nn.Module | None = None) -> WeightsCheck:
    """``weights_sha256(model, reuse=False)``: the digest of the weights as they are now, writes
    through ``.data`` included, but without hashing again the tensors that are unchanged; and
    which of them hold NaN or inf.

    The first call on a model hashes a private copy of each of its tensors and keeps the
    copies with their digests and finiteness; a later call compares each tensor byte for byte
    with its copy (name, dtype and shape too) and hashes, and tests, only those that differ,
    which for unchanged weights takes a fraction of the time of hashing.

    ``like``: a model this one was made from (a forget's input, for its output), whose copies
    :func:`check_weights` kept: each tensor equal byte for byte to ``like``'s copy of the same
    name keeps that copy's digest and finiteness, and only the others are hashed and tested;
    no copy of ``model`` is kept. Models on another device than the CPU, or whose weights take
    more than :data:`COPY_LIMIT` bytes, keep no copy and are hashed afresh.
    """
    state = model.state_dict(keep_vars=True)
    stamps = _stamps(state)
    items = _sorted_items(state)
    keep = like is None and all(t.device.type == "cpu" for _, t in items) and sum(
        t.numel() * t.element_size() for _, t in items) <= COPY_LIMIT
    known = _COPIES.get(model if like is None else like, {})
    fresh: dict[str, _Piece] = {}
    for name, t in items:
        kept = known.get(name)
        if kept is not None and _same_bytes(t, kept):
            fresh[name] = kept
        else:  # with a copy kept, the digest of exactly the bytes kept
            fresh[name] = _piece(name, t.clone(memory_format=torch.contiguous_format) if keep else t)
    value = _combine(list(fresh.values()))
    if keep:
        _COPIES[model] = fresh
    elif like is None:
        _COPIES.pop(model, None)
    _remember(model, state, stamps, value)
    # in the state dict's order, as ``model.state_dict()`` lists them
    return WeightsCheck(value, tuple(name for name in state if not fresh[name].finite))


def checked_weights_sha256(model: torch.nn.Module, *, like: torch.nn.Module | None = None) -> str:
    """The digest of :func:`check_weights` (``weights_sha256(model, reuse=False)`` in effect)."""
    return check_weights(model, like=like).sha256


def finite(t: torch.Tensor) -> bool:
    """Whether ``t`` holds no NaN or inf (always, for a tensor that is not floating-point): the
    float64 sum of a float32/16 tensor overflows only when an element is non-finite."""
    if not t.is_floating_point():
        return True
    if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        return bool(torch.isfinite(t.sum(dtype=torch.float64)))
    return bool(torch.isfinite(t).all())


def legacy_weights_sha256(model: torch.nn.Module) -> str:
    """The one-level digest that files written before :data:`SCHEME` hold: one SHA-256 over, for
    each entry of the state dict in sorted key order, the UTF-8 text
    ``f"{name}|{dtype}|{tuple(shape)}|"`` and then the tensor's raw bytes (C order)."""
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(memoryview(_words(t)))
    return digest.hexdigest()


def digest_matches(stored: str | None, model: torch.nn.Module, current: str | None = None) -> bool:
    """Whether a digest recorded for some weights (``stored``) names ``model``'s weights as they
    are now: its :func:`weights_sha256` (``current`` when the caller has it), or, for a file
    written before that digest, its :func:`legacy_weights_sha256`. ``None`` matches nothing."""
    if not stored:
        return False
    if stored == (current if current is not None else weights_sha256(model, reuse=False)):
        return True
    return stored == legacy_weights_sha256(model)


def _sorted_items(state: dict[str, torch.Tensor]) -> list[tuple[str, torch.Tensor]]:
    """The state dict's entries in sorted key order, detached."""
    return [(name, state[name].detach()) for name in sorted(state)]


class _Piece(NamedTuple):
    """A tensor as the digest saw it: the tensor, its bytes as words (:func:`_words`), its entry
    in the digest (:func:`_piece`) and whether it is finite (:func:`finite`; ``None``: not
    tested, for a piece that is hashed and dropped)."""

    tensor: torch.Tensor
    words: np.ndarray
    entry: bytes
    finite: bool | None


def _piece(name: str, t: torch.Tensor, *, tested: bool = True) -> _Piece:
    """``t``'s piece: the entry is what :func:`weights_sha256` hashes for it, the header's
    length (4 bytes, big-endian), the header ``f"{name}|{dtype}|{tuple(shape)}|"`` and the
    32-byte SHA-256 of the tensor's raw bytes; ``tested``: whether to test it for NaN/inf."""
    words = _words(t)
    header = f"{name}|{t.dtype}|{tuple(t.shape)}|".encode()
    digest = hashlib.sha256(memoryview(words)).digest()
    return _Piece(t, words, len(header).to_bytes(4, "big") + header + digest,
                  finite(t) if tested else None)  # fmt: skip


def _combine(pieces: list[_Piece]) -> str:
    """The weights' digest from each tensor's piece (:func:`_piece`), in sorted key order."""
    return hashlib.sha256(SCHEME + b"".join(piece.entry for piece in pieces)).hexdigest()


def _same_bytes(t: torch.Tensor, kept: _Piece) -> bool:
    """Whether ``t`` holds exactly the dtype, shape, device and bytes of a kept piece: by the C
    library's ``memcmp`` for a contiguous CPU tensor (it reads each byte once and stops at the
    first difference; NumPy's comparison also writes a result per word), else by NumPy."""
    k = kept.tensor
    if t.dtype != k.dtype or t.shape != k.shape or t.device != k.device:
        return False
    if not t.numel():
        return True
    compare = _memcmp()
    if compare is not None and t.device.type == "cpu" and t.is_contiguous():
        return compare(t.data_ptr(), k.data_ptr(), t.numel() * t.element_size()) == 0
    return bool(np.array_equal(_words(t), kept.words))


@functools.cache
def _memcmp() -> Callable[[int, int, int], int] | None:
    """The C library's ``memcmp``, or ``None`` where it cannot be loaded."""
    try:  # on POSIX the process's own symbols hold the C library's
        compare = ctypes.CDLL("msvcrt" if sys.platform == "win32" else None).memcmp
    except (OSError, AttributeError):
        return None
    compare.restype = ctypes.c_int
    compare.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    return compare


def _words(t: torch.Tensor) -> np.ndarray:
    """``t``'s raw bytes (C order) as unsigned integers (8 bytes each where they divide
    evenly; no copy of a contiguous CPU tensor): equal arrays are equal bytes (-0.0 differs from
    0.0, a NaN equals itself). NumPy compares them in the calling thread, without waking
    PyTorch's thread pool."""
    raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
    return raw.view(np.uint64) if raw.size % 8 == 0 else raw


def _remember(model: torch.nn.Module, state: dict[str, torch.Tensor],
              stamps: list[tuple] | None, value: str) -> None:  # fmt: skip
    """Keep ``value`` as ``model``'s digest while its tensors stay as they are (:func:`_stamps`)."""
    if stamps is not None:
        _DIGESTS[model] = ([weakref.ref(t) for t in state.values()], stamps, value)


def _remembered(model: torch.nn.Module, state: dict[str, torch.Tensor],
                stamps: list[tuple] | None) -> str | None:  # fmt: skip
    """The digest remembered for ``model`` while its tensors are the very ones, unchanged
    since (:func:`_stamps`), else ``None``."""
    memo = _DIGESTS.get(model)
    if memo is None or stamps is None or memo[1] != stamps or len(memo[0]) != len(state):
        return None
    same = all(ref() is t for ref, t in zip(memo[0], state.values(), strict=True))
    return memo[2] if same else None


def _stamps(state: dict[str, torch.Tensor]) -> list[tuple] | None:
    """Name, address, version counter, dtype, shape and device of each tensor; ``None`` when a
    tensor keeps no version counter (made under ``torch.inference_mode``)."""
    try:
        return [(name, t.data_ptr(), t._version, t.dtype, tuple(t.shape), t.device)
                for name, t in state.items()]  # fmt: skip
    except RuntimeError:
        return None
