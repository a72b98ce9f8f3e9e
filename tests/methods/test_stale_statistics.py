"""The training statistics vouch only for the weights they were recorded on.

The data-free forget proves its result from statistics in the model file. Weights changed
after they were recorded (a logit offset folded in by a finer-than-sample forget, a caller's
own fine-tuning, other weights loaded into the file) make them describe another model: the
forget must refuse to say ``verified`` from them, and say why and what to run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import obliviate
from obliviate.checkpoint import weights_sha256
from obliviate.errors import NotVerifiedError, ObliviateError
from obliviate.finer.calibration import LogitCalibration, fold_calibration
from obliviate.stats import record_statistics
from obliviate.training import predict

SCRIPT = Path(sys.executable).with_name("obliviate")
CLASS = 3


def folded(bundle: obliviate.ModelBundle, offset: float) -> obliviate.ModelBundle:
    """``bundle`` with ``offset`` added to class 3's logit (what a finer forget's calibration
    does to a model), its statistics left as they were."""
    out = bundle.clone()
    out.model = fold_calibration(out.model, LogitCalibration((CLASS,), offset, 1.0, 0.0, 0.0))
    return out


def still_predicted(bundle: obliviate.ModelBundle, data, cls: int) -> int:
    """Training samples of ``cls`` the model still predicts as ``cls`` (brute force)."""
    x = data.train.x[data.train.y == cls]
    return int((predict(bundle.model, x) == cls).sum())


def test_folded_offset_after_save_and_load_is_refused(tmp_path, digits, digits_bundle):
    path = obliviate.save(folded(digits_bundle, 20.0), tmp_path / "m.safetensors")
    loaded = obliviate.load(path)
    with pytest.raises(NotVerifiedError, match="recorded for other weights.*obliviate stats"):
        obliviate.forget(loaded, [CLASS])
    # what the refused result would have been: the stale bound leaves class 3 half known
    unverified = obliviate.forget(loaded, [CLASS], force=True)
    assert unverified.history[-1]["verified"] is False
    assert still_predicted(unverified, digits, CLASS) > 0


def test_statistics_recorded_again_verify_and_forget_every_training_sample(digits, digits_bundle):
    tuned = obliviate.record_statistics(folded(digits_bundle, 20.0), digits)
    assert tuned.stats.weights_sha256 == weights_sha256(tuned.model, reuse=False)
    out = obliviate.forget(tuned, [CLASS])
    assert out.history[-1]["verified"] is True
    assert still_predicted(out, digits, CLASS) == 0


def test_folded_offset_is_refused_by_the_installed_command(tmp_path, digits_bundle):
    model = obliviate.save(folded(digits_bundle, 20.0), tmp_path / "m.safetensors")
    out = tmp_path / "f.safetensors"
    proc = subprocess.run([str(SCRIPT), "forget", str(model), "--classes", str(CLASS), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and "recorded for other weights" in lines[0], proc.stderr
    assert "obliviate stats" in lines[0] and "Traceback" not in proc.stderr
    assert not out.exists()
    # the fix the message names, run as it says
    fixed = tmp_path / "m2.safetensors"
    proc = subprocess.run([str(SCRIPT), "stats", str(model), "--out", str(fixed)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(SCRIPT), "forget", str(fixed), "--classes", str(CLASS), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0 and "verified: true" in proc.stderr, proc.stderr


def test_fine_tuning_in_place_is_seen_even_through_data(digits, digits_bundle):
    bundle = digits_bundle.clone()
    obliviate.forget(bundle, [CLASS])  # its digest is now remembered
    optimiser = torch.optim.SGD(bundle.model.parameters(), lr=0.05)
    x, y = digits.train.x[:256], digits.train.y[:256]
    optimiser.zero_grad()
    torch.nn.functional.cross_entropy(bundle.model(x), y).backward()
    optimiser.step()
    with pytest.raises(NotVerifiedError, match="recorded for other weights"):
        obliviate.forget(bundle, [CLASS])
    again = digits_bundle.clone()
    obliviate.forget(again, [CLASS])
    with torch.no_grad():  # a write PyTorch's version counter does not see
        again.model.classifier.bias.data[CLASS] += 20.0
    with pytest.raises(NotVerifiedError, match="recorded for other weights"):
        obliviate.forget(again, [CLASS])


def test_unbound_statistics_are_not_trusted(digits_bundle):
    bundle = digits_bundle.clone()
    bundle.stats.weights_sha256 = None
    with pytest.raises(NotVerifiedError, match="not bound to any weights"):
        obliviate.forget(bundle, [CLASS])


def test_other_weights_written_into_the_file_are_found_on_load(tmp_path, digits_bundle, caplog):
    path = obliviate.save(digits_bundle, tmp_path / "m.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    tensors["weights.classifier.bias"] = tensors["weights.classifier.bias"] + 1.0
    save_file(tensors, str(path), metadata=meta)
    with caplog.at_level("WARNING"):
        loaded = obliviate.load(path)
    assert "recorded for other weights" in caplog.text
    with pytest.raises(NotVerifiedError, match="recorded for other weights"):
        obliviate.forget(loaded, [CLASS])


def test_with_data_the_forget_verifies_on_it_and_records_why_the_statistics_were_withheld(
    digits, digits_bundle
):
    out = obliviate.forget(folded(digits_bundle, 20.0), [CLASS], data=digits, depth="output")
    record = out.history[-1]
    assert record["verified"] is True and "training_statistics" not in record["verification"]["on"]
    assert record["statistics"].startswith("withheld: the training statistics were recorded")
    assert out.stats is None  # nothing stale is written forward
    assert still_predicted(out, digits, CLASS) == 0


def test_depth_features_with_stale_statistics_names_the_cause(digits_bundle):
    with pytest.raises(ObliviateError, match="depth 'features' is not available.*recorded for "
                                             "other weights"):  # fmt: skip
        obliviate.forget(folded(digits_bundle, 20.0), [CLASS], depth="features")


@pytest.mark.parametrize("depth", ["output", "features"])
def test_carried_statistics_are_bound_to_the_output_and_hold_for_it(depth, digits, digits_bundle):
    """After a forget, the file's statistics describe the new weights: bound to their digest,
    and every margin bound and feature floor holds on the output (brute force over the
    training set), so the next data-free forget is verified truthfully."""
    data = digits if depth == "features" else None  # the deep edit verifies kept classes on data
    out = obliviate.forget(digits_bundle, [CLASS], data=data, depth=depth)
    assert out.history[-1]["depth"] == depth and out.history[-1]["verified"] is True
    assert out.stats.weights_sha256 == weights_sha256(out.model, reuse=False)
    truth = record_statistics(out.model, digits.train).without([CLASS])
    assert bool((out.stats.margin >= truth.margin - 1e-4).all())
    assert bool((out.stats.feature_min <= truth.feature_min + 1e-4).all())
    second = obliviate.forget(out, [5])
    assert second.history[-1]["verified"] is True
    assert still_predicted(second, digits, 5) == 0
