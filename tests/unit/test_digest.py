"""The weights' digest a forget records for its input: hashed afresh in effect, though a model
forgotten from before is checked byte for byte against the copy it was hashed from."""

from __future__ import annotations

import copy

import torch

from obliviate import digest
from obliviate.digest import checked_weights_sha256, weights_sha256


def test_the_checked_digest_is_the_fresh_one_and_sees_every_write(tiny_bundle):
    model = copy.deepcopy(tiny_bundle.model)
    first = checked_weights_sha256(model)
    assert first == weights_sha256(model, reuse=False)
    assert checked_weights_sha256(model) == first  # unchanged: the kept digest
    with torch.no_grad():  # writes PyTorch's version counters do not see
        model.hidden.weight.data[0, 0] = torch.nextafter(model.hidden.weight.data[0, 0],
                                                         torch.tensor(1.0))  # one bit  # fmt: skip
    second = checked_weights_sha256(model)
    assert second != first and second == weights_sha256(model, reuse=False)
    model.classifier.bias.data[0] = 0.0
    zero = checked_weights_sha256(model)
    model.classifier.bias.data[0] = -0.0  # equal as numbers, other bytes
    negative_zero = checked_weights_sha256(model)
    assert negative_zero != zero and negative_zero == weights_sha256(model, reuse=False)


def test_a_model_above_the_copy_limit_is_hashed_afresh_and_keeps_no_copy(tiny_bundle, monkeypatch):
    monkeypatch.setattr(digest, "COPY_LIMIT", 0)
    model = copy.deepcopy(tiny_bundle.model)
    assert checked_weights_sha256(model) == weights_sha256(model, reuse=False)
    assert model not in digest._COPIES
