"""'Ours w/o MNCODE' (mnemonic-data): the same Alg. 2 with the Fisher from training images."""

import pytest

import obliviate
from obliviate import ObliviateError


def test_forgets_on_a_model_trained_without_codes(digits):
    plain = obliviate.train(
        digits, "fc", config=obliviate.TrainConfig(epochs=40, lr=0.1), codes=None, progress=False
    )
    before = obliviate.evaluate(plain, digits, [0], relearn_steps=0)
    out = obliviate.forget(plain, [0], method="mnemonic-data", data=digits, lambda1=1e-2,
                           lambda2=10, per_class=50, force=True)
    after = obliviate.evaluate(out, digits, [0], relearn_steps=0)
    record = out.history[-1]
    assert record["method"] == "mnemonic-data"
    assert record["data"] == {"codes": False, "forget_samples": int((digits.train.y == 0).sum()),
                              "retain_samples": int((digits.train.y != 0).sum())}
    assert record["selected_on"] == "data"
    assert after.forget_err >= before.forget_err + 50
    assert plain.codes is None and out.codes is None


def test_needs_training_data(digits_bundle):
    with pytest.raises(ObliviateError, match="needs the forget set and the retain set"):
        obliviate.forget(digits_bundle, [0], method="mnemonic-data")


def test_forget_classes_absent_from_the_data(digits, digits_bundle):
    without_zero = digits.train.without_classes([0])
    with pytest.raises(ObliviateError, match=r"forget class\(es\) \[0\] have no samples"):
        obliviate.forget(digits_bundle, [0], method="mnemonic-data", data=without_zero)


def test_bad_per_class(digits, digits_bundle):
    with pytest.raises(ObliviateError, match="per_class"):
        obliviate.forget(digits_bundle, [0], method="mnemonic-data", data=digits, per_class=0)
