"""The SHA-256 of a model's weights: what audit records and the training statistics are bound to.

A leaf module (it imports torch only), so that the statistics, the model file and the
methods can all name the weights they describe without importing each other.
"""

from __future__ import annotations

import hashlib
import weakref

import torch

#: Digests already computed, per model (weakly held): a weak reference to every tensor of its
#: state dict, their stamps (:func:`_stamp`) and the digest.
_DIGESTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
    memo = _DIGESTS.get(model) if reuse and stamps is not None else None
    if (memo is not None and memo[1] == stamps
            and all(ref() is t for ref, t in zip(memo[0], state.values(), strict=True))):  # fmt: skip
        return memo[2]
    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():  # the raw bytes, through the buffer protocol (no copy)
            digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    value = digest.hexdigest()
    if stamps is not None:
        _DIGESTS[model] = ([weakref.ref(t) for t in state.values()], stamps, value)
    return value


def _stamps(state: dict[str, torch.Tensor]) -> list[tuple] | None:
    """Name, address, version counter, dtype, shape and device of each tensor; ``None`` when a
    tensor keeps no version counter (made under ``torch.inference_mode``)."""
    try:
        return [(name, t.data_ptr(), t._version, t.dtype, tuple(t.shape), t.device)
                for name, t in state.items()]  # fmt: skip
    except RuntimeError:
        return None
