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
    with pytest.raises(OSError):
        obliviate.save(tiny_bundle, path)
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
