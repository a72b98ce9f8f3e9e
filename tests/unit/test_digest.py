"""The weights' digest a forget records for its input: hashed afresh in effect, though a model
forgotten from before is checked byte for byte against the copy it was hashed from."""

from __future__ import annotations

import copy

import pytest
import torch

import obliviate
from obliviate import digest
from obliviate.methods import mnemonic
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


def test_a_background_digest_is_the_fresh_one_and_is_not_hashed_twice(tiny_bundle, monkeypatch):
    model = copy.deepcopy(tiny_bundle.model)
    calls = []
    real = digest._sha256
    monkeypatch.setattr(digest, "_sha256", lambda pieces: calls.append(1) or real(pieces))
    digest.hash_in_background(model)
    assert weights_sha256(model) == weights_sha256(model, reuse=False)
    assert len(calls) == 2  # the background one, then the fresh one asked for; none in between
    assert model not in digest._PENDING


def test_a_background_digest_of_weights_changed_since_is_dropped(tiny_bundle):
    model = copy.deepcopy(tiny_bundle.model)
    digest.hash_in_background(model)
    with torch.no_grad():
        model.classifier.bias += 1.0  # in place: the version counter moves
    assert weights_sha256(model) == weights_sha256(model, reuse=False)
    other = copy.deepcopy(tiny_bundle.model)
    digest.hash_in_background(other)
    other.classifier.bias = torch.nn.Parameter(other.classifier.bias.detach() + 1.0)  # replaced
    assert weights_sha256(other) == weights_sha256(other, reuse=False)


def test_a_forked_child_gets_its_own_worker(monkeypatch):
    pool = digest._pool()
    assert digest._pool() is pool
    monkeypatch.setattr(digest.os, "getpid", lambda: -1)  # as in a child after fork()
    child = digest._pool()
    assert child is not pool and child.submit(lambda: 7).result(timeout=5) == 7


@pytest.mark.parametrize("drop", [None, 100.0])  # the deep edit verified; refused: output only
def test_the_default_forget_records_the_digest_of_the_weights_it_returns(tiny_bundle, monkeypatch,
                                                                         drop):  # fmt: skip
    started = []
    monkeypatch.setattr(mnemonic, "hash_in_background",
                        lambda m: started.append(m) or digest.hash_in_background(m))  # fmt: skip
    if drop is not None:  # a data-free bound on the kept classes that no request meets
        monkeypatch.setattr(mnemonic, "retain_drop_bound", lambda *a, **k: drop)
    out = obliviate.forget(tiny_bundle, [1], device="cpu")  # depth auto, no data
    record = out.history[-1]
    assert record["depth"] == ("features" if drop is None else "output")
    assert len(started) == 1 and (started[0] is out.model) == (drop is not None)
    fresh = weights_sha256(out.model, reuse=False)
    assert record["output_sha256"] == fresh == out.stats.weights_sha256
    if drop is not None:  # warm (the input's copy kept): the background digest is the only one
        calls = []
        real = digest._sha256
        monkeypatch.setattr(digest, "_sha256", lambda pieces: calls.append(1) or real(pieces))
        again = obliviate.forget(tiny_bundle, [1], device="cpu")
        assert len(calls) == 1 and again.history[-1]["output_sha256"] == fresh
