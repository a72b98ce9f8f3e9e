import json

import pytest
import torch
from safetensors.torch import save_file

import obliviate
from obliviate import ObliviateError
from obliviate.checkpoint import weights_sha256


def test_round_trip_keeps_weights_codes_and_metadata(tmp_path, tiny_bundle):
    path = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    loaded = obliviate.load(path)
    assert loaded.arch == "fc" and loaded.arch_kwargs == {"hidden": 32}
    assert loaded.num_classes == 4 and loaded.input_shape == (1, 4, 4)
    assert loaded.dataset == "tiny"
    assert torch.equal(loaded.codes.tensor, tiny_bundle.codes.tensor)
    assert loaded.codes.config == tiny_bundle.codes.config
    assert weights_sha256(loaded.model) == weights_sha256(tiny_bundle.model)
    x = torch.rand(5, 1, 4, 4)
    assert torch.equal(loaded.model(x), tiny_bundle.model(x))
    assert loaded.train_config["lr"] == 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_history_survives_a_round_trip(tmp_path, tiny_bundle):
    forgotten = obliviate.forget(tiny_bundle, [1], lambda1=0.1, lambda2=10, force=True)
    loaded = obliviate.load(obliviate.save(forgotten, tmp_path / "f.safetensors"))
    assert loaded.forgotten_classes == [1]
    assert loaded.history == json.loads(json.dumps(forgotten.history))


def test_truncated_file_is_a_user_error(tmp_path, tiny_bundle):
    path = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ObliviateError, match="not a readable safetensors"):
        obliviate.load(path)


def test_not_safetensors_is_a_user_error(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ObliviateError, match="not a readable safetensors"):
        obliviate.load(path)


def test_foreign_safetensors_file_is_rejected(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ObliviateError, match="not an obliviate model"):
        obliviate.load(path)


def test_missing_file_and_directory(tmp_path, tiny_bundle):
    with pytest.raises(ObliviateError, match="does not exist"):
        obliviate.load(tmp_path / "nope.safetensors")
    with pytest.raises(ObliviateError, match="does not exist"):
        obliviate.save(tiny_bundle, tmp_path / "no" / "dir.safetensors")


def test_failed_write_leaves_the_old_file_intact(tmp_path, tiny_bundle, monkeypatch):
    path = obliviate.save(tiny_bundle, tmp_path / "m.safetensors")
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("obliviate.checkpoint.save_file", boom)
    with pytest.raises(ObliviateError, match="could not write .*disk full; nothing was written"):
        obliviate.save(tiny_bundle, path)  # one line on the command line, not a traceback
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_weights_hash_changes_with_any_weight(tiny_bundle):
    clone = tiny_bundle.clone()
    assert weights_sha256(clone.model) == weights_sha256(tiny_bundle.model)
    with torch.no_grad():
        clone.model.classifier.bias[0] += 1e-6
    assert weights_sha256(clone.model) != weights_sha256(tiny_bundle.model)


def test_codes_that_do_not_fit_the_model_are_rejected(tmp_path, tiny_bundle):
    from obliviate.codes import CodeConfig, MnemonicCodes

    broken = tiny_bundle.clone()
    broken.codes = MnemonicCodes(torch.rand(3, 1, 4, 4), CodeConfig())
    path = obliviate.save(broken, tmp_path / "b.safetensors")
    with pytest.raises(ObliviateError, match="codes have shape"):
        obliviate.load(path)


def test_a_remembered_weights_hash_is_the_fresh_one_until_a_tensor_changes(tiny_bundle):
    model = tiny_bundle.clone().model
    first = weights_sha256(model)
    assert weights_sha256(model) == first == weights_sha256(model, reuse=False)
    with torch.no_grad():  # in-place, as an optimiser step: the version counter moves
        model.classifier.bias[0] += 1e-3
    changed = weights_sha256(model)
    assert changed != first and changed == weights_sha256(model, reuse=False)
    model.load_state_dict(tiny_bundle.model.state_dict())  # copied in place: the same weights
    assert weights_sha256(model) == first
    model.classifier.weight = torch.nn.Parameter(model.classifier.weight.detach() * 2)
    assert weights_sha256(model) == weights_sha256(model, reuse=False) != first
    with torch.no_grad():  # through .data PyTorch counts nothing: only reuse=False sees it
        model.classifier.bias.data[0] += 1.0
    stale = weights_sha256(model)
    assert weights_sha256(model, reuse=False) != stale


def test_the_weights_hash_is_the_documented_recipe(tiny_bundle):
    import hashlib

    digest = hashlib.sha256(b"obliviate weights sha256 tree v1\n")
    for name, t in sorted(tiny_bundle.model.state_dict().items()):
        header = f"{name}|{t.dtype}|{tuple(t.shape)}|".encode()
        digest.update(len(header).to_bytes(4, "big") + header)
        digest.update(hashlib.sha256(t.contiguous().numpy().tobytes()).digest())
    assert weights_sha256(tiny_bundle.model, reuse=False) == digest.hexdigest()


def test_the_legacy_weights_hash_is_the_earlier_recipe(tiny_bundle):
    """Files of earlier releases hold this one-level digest; it must stay what they hold."""
    import hashlib

    from obliviate.digest import legacy_weights_sha256

    digest = hashlib.sha256()
    for name, t in sorted(tiny_bundle.model.state_dict().items()):
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.contiguous().numpy().tobytes())
    assert legacy_weights_sha256(tiny_bundle.model) == digest.hexdigest()
