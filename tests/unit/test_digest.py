"""The weights' digest a forget records: hashed afresh in effect, though a model forgotten from
before is checked byte for byte against the copies it was hashed from, and a forget's output
hashes only the tensors that differ from its input's."""

from __future__ import annotations

import copy

import pytest
import torch

import obliviate
from obliviate import digest
from obliviate.methods import mnemonic
from obliviate.digest import (
    checked_weights_sha256,
    digest_matches,
    legacy_weights_sha256,
    weights_sha256,
)


@pytest.mark.parametrize("memcmp", [True, False])  # the C library's, and NumPy's where it lacks
def test_the_checked_digest_is_the_fresh_one_and_sees_every_write(tiny_bundle, monkeypatch,
                                                                  memcmp):  # fmt: skip
    if not memcmp:
        monkeypatch.setattr(digest, "_memcmp", lambda: None)
    model = copy.deepcopy(tiny_bundle.model)
    first = checked_weights_sha256(model)
    assert first == weights_sha256(model, reuse=False)
    assert checked_weights_sha256(model) == first  # unchanged: the kept digest
    with torch.no_grad():  # writes PyTorch's version counters do not see
        model.hidden.weight.data[0, 0] = torch.nextafter(model.hidden.weight.data[0, 0],
                                                         torch.tensor(1.0))  # one bit  # fmt: skip
    second = checked_weights_sha256(model)
    assert second != first and second == weights_sha256(model, reuse=False)
    with torch.no_grad():  # the last bit of the largest tensor: every byte is compared
        last = model.hidden.weight.data.view(-1)[-1:]
        last.copy_(torch.nextafter(last, last + 1.0))
    third = checked_weights_sha256(model)
    assert third != second and third == weights_sha256(model, reuse=False)
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


def test_a_digest_made_like_another_model_is_the_fresh_one_and_sees_every_write(tiny_bundle):
    """A forget's output is hashed against its input's kept copies: a tensor reuses the input's
    digest only when every byte is the same (written through ``.data`` or not)."""
    base = copy.deepcopy(tiny_bundle.model)
    checked_weights_sha256(base)  # its copies kept
    model = copy.deepcopy(base)
    assert checked_weights_sha256(model, like=base) == weights_sha256(base, reuse=False)
    assert model not in digest._COPIES  # an output keeps no copy of its own
    with torch.no_grad():
        model.hidden.weight.data[0, 0] = torch.nextafter(model.hidden.weight.data[0, 0],
                                                         torch.tensor(1.0))  # one bit  # fmt: skip
    one_bit = checked_weights_sha256(model, like=base)
    assert one_bit != weights_sha256(base, reuse=False)
    assert one_bit == weights_sha256(model, reuse=False)
    model.load_state_dict(base.state_dict())
    base.classifier.bias.data[0] = 0.0
    checked_weights_sha256(base)
    model.classifier.bias.data[0] = -0.0  # equal as numbers, other bytes
    assert checked_weights_sha256(model, like=base) == weights_sha256(model, reuse=False)
    assert weights_sha256(model, reuse=False) != weights_sha256(base, reuse=False)


def test_a_model_like_none_with_copies_is_hashed_whole(tiny_bundle):
    base = copy.deepcopy(tiny_bundle.model)  # no copies kept: every tensor hashed
    model = copy.deepcopy(base)
    model.classifier.bias.data += 1.0
    assert checked_weights_sha256(model, like=base) == weights_sha256(model, reuse=False)


@pytest.mark.parametrize("drop", [None, 100.0])  # the deep edit verified; refused: output only
def test_the_default_forget_records_the_digest_of_the_weights_it_returns(tiny_bundle, monkeypatch,
                                                                         drop):  # fmt: skip
    if drop is not None:  # a data-free bound on the kept classes that no request meets
        monkeypatch.setattr(mnemonic, "retain_drop_bound", lambda *a, **k: drop)
    out = obliviate.forget(tiny_bundle, [1], device="cpu")  # depth auto, no data
    record = out.history[-1]
    assert record["depth"] == ("features" if drop is None else "output")
    fresh = weights_sha256(out.model, reuse=False)
    assert record["output_sha256"] == fresh == out.stats.weights_sha256
    # warm (the input's copies kept): only the tensors the forget changed are hashed
    hashed = []
    real = digest._piece
    monkeypatch.setattr(digest, "_piece", lambda name, t: hashed.append(t.shape) or real(name, t))
    again = obliviate.forget(tiny_bundle, [1], device="cpu")
    before, after = tiny_bundle.model.state_dict(), again.model.state_dict()
    changed = [tuple(after[k].shape) for k in sorted(after) if not torch.equal(after[k], before[k])]
    assert again.history[-1]["output_sha256"] == fresh
    assert sorted(map(tuple, hashed)) == sorted(changed)
    if drop is not None:
        assert {k for k in after if not torch.equal(after[k], before[k])} <= {
            "classifier.weight", "classifier.bias"}


def test_a_digest_of_an_earlier_release_still_names_the_weights(tiny_bundle, tmp_path, caplog):
    """Files written before the two-level digest hold the one-level one: it still matches the
    weights it was taken of, and statistics bound by it load bound to the new digest."""
    from obliviate.checkpoint import read_safetensors, write_safetensors

    model = tiny_bundle.model
    legacy = legacy_weights_sha256(model)
    assert legacy != weights_sha256(model, reuse=False)
    assert digest_matches(legacy, model) and digest_matches(weights_sha256(model), model)
    assert not digest_matches(None, model) and not digest_matches("0" * 64, model)
    other = copy.deepcopy(model)
    other.classifier.bias.data += 1.0
    assert not digest_matches(legacy, other)
    path = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    meta, tensors = read_safetensors(path, "model")
    write_safetensors(tensors, {**meta, "stats_weights_sha256": legacy}, path)
    with caplog.at_level("WARNING"):
        loaded = obliviate.load(path)
    assert "recorded for other weights" not in caplog.text
    assert loaded.stats.weights_sha256 == weights_sha256(loaded.model, reuse=False)
    assert obliviate.forget(loaded, [1], device="cpu").history[-1]["verified"] is True
    tensors["weights.classifier.bias"] = tensors["weights.classifier.bias"] + 1.0
    write_safetensors(tensors, {**meta, "stats_weights_sha256": legacy}, path)
    with caplog.at_level("WARNING"):
        obliviate.load(path)
    assert "recorded for other weights" in caplog.text  # legacy digest of other weights


@pytest.mark.parametrize(("values", "dtype", "expected"), [
    ([3e38, 3e38, 3e38], torch.float32, True),  # a float32 sum would overflow: still finite
    ([6e4] * 4, torch.float16, True),
    ([1e308, 1e308], torch.float64, True),
    ([1.0, float("inf")], torch.float32, False),
    ([1.0, float("-inf")], torch.bfloat16, False),
    ([float("nan"), 0.0], torch.float16, False),
    ([float("inf"), float("-inf")], torch.float64, False),
    ([1, 2, 3], torch.int64, True),
])  # fmt: skip
def test_finite_is_exact_for_every_dtype(values, dtype, expected):
    assert digest.finite(torch.tensor(values, dtype=dtype)) is expected


def test_an_unchanged_tensor_keeps_the_finiteness_of_the_input_it_equals(tiny_bundle):
    """A forget's output is tested only where it differs from its input; the tensors it shares
    with the input carry the input's verdict, NaN included."""
    base = copy.deepcopy(tiny_bundle.model)
    with torch.no_grad():
        base.hidden.bias.data[1] = float("nan")
    assert checked_weights_sha256(base)  # kept, with its finiteness
    out = copy.deepcopy(base)
    with torch.no_grad():
        out.classifier.weight.data[0, 0] = float("inf")
    check = digest.check_weights(out, like=base)
    assert check.non_finite == ("hidden.bias", "classifier.weight")
    assert check.sha256 == weights_sha256(out, reuse=False)
    with torch.no_grad():
        out.classifier.weight.data[0, 0] = 1.0
        out.hidden.bias.data[1] = 0.5
    assert digest.check_weights(out, like=base).non_finite == ()
