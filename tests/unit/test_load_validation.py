"""`obliviate.load`'s checks, one edit per check, each with the message that says what is
wrong; `map_location`; and a save, load and second forget after a calibrated forget (whose
statistics then hold ``-inf`` margins)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import obliviate
from obliviate import ObliviateError
from obliviate.checkpoint import FORMAT_VERSION


@pytest.fixture(scope="module")
def parts(tiny_bundle, tmp_path_factory):
    path = obliviate.save(tiny_bundle, tmp_path_factory.mktemp("v") / "m.safetensors")
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["obliviate"])
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return meta, tensors


def write(tmp_path, meta, tensors, raw=None):
    path = tmp_path / "e.safetensors"
    save_file(tensors, str(path), metadata={"obliviate": raw if raw is not None else json.dumps(meta)})
    return path


def edited(parts, **changes):
    meta, tensors = parts
    meta = {**meta, **changes}
    return meta, dict(tensors)


META_CASES = [
    ({"format": "other"}, "unsupported model format 'other' version 1; upgrade obliviate"),
    ({"format_version": FORMAT_VERSION + 1}, f"version {FORMAT_VERSION + 1}; upgrade obliviate"),
    ({"format_version": -1}, "unsupported model format"),
    ({"format_version": True}, "the metadata's 'format_version' is a JSON boolean"),
    ({"format": "obliviate.deposit-module"}, "is a LIRF deposit module, not a model"),
    ({"arch": "nosuch"}, "unknown architecture 'nosuch'; known: "),
    ({"arch": 3}, "the metadata's 'arch' is a JSON number, expected string"),
    ({"num_classes": 1}, "num_classes must be an integer in 2..100000, got 1"),
    ({"num_classes": 100_001}, "num_classes must be an integer in 2..100000"),
    ({"num_classes": True}, "the metadata's 'num_classes' is a JSON boolean"),
    ({"num_classes": 5}, "weights do not fit fc (first mismatch: classifier.bias)"),
    ({"input_shape": "1,4,4"}, "the metadata's 'input_shape' is a JSON string"),
    ({"input_shape": []}, "input_shape must be 1 to 4 positive integers"),
    ({"input_shape": [1, 1, 1, 4, 4]}, "input_shape must be 1 to 4 positive integers"),
    ({"input_shape": [1, 0, 16]}, "input_shape must be 1 to 4 positive integers"),
    ({"input_shape": [10_000, 10_000]}, "with at most 50000000 values"),
    ({"input_shape": [2, 4, 4]}, "weights do not fit fc"),
    ({"arch_kwargs": [1]}, "the metadata's 'arch_kwargs' is a JSON array, expected object"),
    ({"arch_kwargs": {"hidden": 1_000_001}}, "architecture setting hidden=1000001 holds a value"),
    ({"arch_kwargs": {"hidden": [[[[[1]]]]]}}, "architecture setting hidden="),
    ({"arch_kwargs": {"hidden": 32, "x": {"a": [1, {"b": 2.5}]}}}, "cannot build fc"),
    ({"forgotten_classes": [4]}, "forgotten_classes must be distinct classes of 0..3"),
    ({"forgotten_classes": [-1]}, "forgotten_classes must be distinct"),
    ({"forgotten_classes": [1, 1]}, "forgotten_classes must be distinct"),
    ({"forgotten_classes": [0, 1, 2, 3]}, "not all of them; got [0, 1, 2, 3]"),
    ({"forgotten_classes": "1"}, "the metadata's 'forgotten_classes' is a JSON string"),
    ({"history": {}}, "the metadata's 'history' is a JSON object, expected array"),
    ({"history": [{}, 1]}, "the history must be a list of records"),
    ({"train_config": [1]}, "the metadata's 'train_config' is a JSON array"),
    ({"dataset_options": "x"}, "the metadata's 'dataset_options' is a JSON string"),
    ({"retrofit": 3}, "the metadata's 'retrofit' is a JSON number"),
    ({"codes": [1]}, "the metadata's 'codes' is a JSON array"),
    ({"codes": {"colour": 1}}, "bad code settings"),
    # at the limits: the size checks let these through, the weights then do not fit
    ({"num_classes": 100_000}, "weights do not fit fc"),
    ({"input_shape": [5_000, 10_000]}, "weights do not fit fc"),
    ({"arch_kwargs": {"hidden": 1_000_000}}, "weights do not fit fc"),
    ({"input_shape": [1, "4", 4]}, "input_shape must be 1 to 4 positive integers"),
    ({"forgotten_classes": ["0"]}, "forgotten_classes must be distinct"),
    ({"arch": "module:Mine"}, "holds a Mine built by your own code; load it with obliviate.load("),
    # settings: strings, null and four levels of nesting are sane (fc then rejects the name)
    ({"arch_kwargs": {"hidden": 32, "name": "x", "none": None}}, "cannot build fc"),
    ({"arch_kwargs": {"hidden": 32, "x": [[[[1]]]]}}, "cannot build fc"),
    ({"arch_kwargs": {"hidden": 32, "x": {"a": {"b": {"c": {"d": 1}}}}}}, "cannot build fc"),
    ({"arch_kwargs": {"hidden": 32, "x": {"a": {"b": {"c": {"d": {"e": 1}}}}}}},
     "architecture setting x="),
    ({"arch_kwargs": {"hidden": 32, "x": {"a": 10_000_000}}}, "architecture setting x="),
    ({"stats_layer": "classifier"}, "the layer statistics name layer 'classifier', which this "
                                    "architecture does not edit"),
]

#: edits that keep the file valid: it must load with the same outputs
VALID_CASES = [
    {"forgotten_classes": [0]},
    {"codes": None, "input_shape": [16]},  # fc reads 16 values however they are shaped
    {"codes": None, "input_shape": [1, 1, 4, 4]},
    {"format_version": 0},
]


@pytest.mark.parametrize("change, message", META_CASES, ids=[str(c) for c, _ in META_CASES])
def test_each_metadata_check_names_what_is_wrong(parts, tmp_path, change, message):
    path = write(tmp_path, *edited(parts, **change))
    with pytest.raises(ObliviateError) as info:
        obliviate.load(path)
    assert message in str(info.value) and str(path) in str(info.value)


@pytest.mark.parametrize("raw, message", [
    ("[1, 2]", "the obliviate metadata is a JSON array, not an object"),
    ("{nope", "the obliviate metadata is not valid JSON"),
])  # fmt: skip
def test_metadata_that_is_not_a_json_object(parts, tmp_path, raw, message):
    path = write(tmp_path, None, parts[1], raw=raw)
    with pytest.raises(ObliviateError, match=message):
        obliviate.load(path)


def tensor_case(name, edit):
    def apply(tensors):
        t = tensors[name].clone()
        if edit == "nan":
            t.view(-1)[0] = float("nan")
        elif edit == "inf":
            t.view(-1)[-1] = float("inf")
        elif edit == "int":
            t = t.long()
        elif edit == "wide":
            t = torch.cat([t, t[:, :1]], dim=1)
        elif edit == "rows":
            t = t[:-1]
        elif edit == "flat":
            t = t.reshape(-1)
        tensors[name] = t.contiguous()
    return apply


TENSOR_CASES = [
    ("weights.classifier.weight", "nan", "non-finite weights in classifier.weight"),
    ("weights.hidden.bias", "inf", "non-finite weights in hidden.bias"),
    ("weights.classifier.weight", "int", "weights do not fit fc (first mismatch: classifier.weight)"),
    ("codes", "rows", "codes have shape (3, 1, 4, 4), expected (4, 1, 4, 4)"),
    ("codes", "nan", "the codes are not finite numbers"),
    ("codes", "int", "the codes are not finite numbers"),
    ("stats.margin", "wide", "the training statistics do not fit the model"),
    ("stats.margin", "rows", "the training statistics do not fit the model"),
    ("stats.feature_min", "rows", "the training statistics do not fit the model"),
    ("stats.feature_min", "flat", "the training statistics do not fit the model"),
    ("stats.margin", "nan", "the training statistics do not fit the model"),
    ("stats.feature_min", "nan", "the training statistics do not fit the model"),
    ("stats.feature_min", "inf", "the training statistics do not fit the model"),
]


@pytest.mark.parametrize("name, edit, message", TENSOR_CASES,
                         ids=[f"{n}-{e}" for n, e, _ in TENSOR_CASES])  # fmt: skip
def test_each_tensor_check_names_what_is_wrong(parts, tmp_path, name, edit, message):
    meta, tensors = edited(parts)
    tensor_case(name, edit)(tensors)
    with pytest.raises(ObliviateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        obliviate.load(write(tmp_path, meta, tensors))


@pytest.mark.parametrize("change", VALID_CASES, ids=[str(c) for c in VALID_CASES])
def test_valid_edits_load_with_the_same_outputs(parts, tmp_path, tiny_bundle, change):
    bundle = obliviate.load(write(tmp_path, *edited(parts, **change)))
    x = torch.rand(5, 1, 4, 4)
    assert torch.equal(bundle.model(x.reshape(5, *bundle.input_shape)), tiny_bundle.model(x))
    assert bundle.forgotten_classes == change.get("forgotten_classes", [])


def test_a_two_class_model_loads(tmp_path):
    from obliviate.checkpoint import ModelBundle
    from obliviate.models import create_model

    model = create_model("fc", input_shape=(3,), num_classes=2, hidden=4).eval()
    path = obliviate.save(ModelBundle(model, "fc", 2, (3,), "two", arch_kwargs={"hidden": 4}),
                          tmp_path / "two.safetensors")  # fmt: skip
    x = torch.rand(4, 3)
    assert torch.equal(obliviate.load(path).model(x), model(x))


def test_what_a_file_may_leave_out(parts, tmp_path, tiny_bundle):
    x = torch.rand(5, 1, 4, 4)
    meta, tensors = edited(parts)
    for key in ("format_version", "codes", "history", "forgotten_classes", "train_config",
                "dataset", "stats_samples", "dataset_options", "retrofit"):  # fmt: skip
        meta.pop(key)
    del tensors["stats.margin"]
    bundle = obliviate.load(write(tmp_path, meta, tensors))
    assert torch.equal(bundle.model(x), tiny_bundle.model(x))
    assert bundle.codes is None and bundle.stats is None and bundle.history == []
    assert bundle.train_config == {} and bundle.dataset == "" and bundle.retrofit is None
    meta, tensors = edited(parts, stats_samples=None, format_version=0)
    bundle = obliviate.load(write(tmp_path, meta, tensors))
    assert bundle.stats is not None and bundle.stats.samples == 0


def test_a_file_without_num_classes_says_so(parts, tmp_path):
    meta, tensors = edited(parts)
    del meta["num_classes"]
    with pytest.raises(ObliviateError, match=r"num_classes must be an integer in 2..100000, got "
                                             r"None$"):
        obliviate.load(write(tmp_path, meta, tensors))


def test_what_only_some_files_hold_comes_back(tiny_bundle, tmp_path):
    bundle = tiny_bundle.clone()
    bundle.dataset_options = {"image_size": 4}
    bundle.retrofit = {"codes_learned": 1.0}
    assert bundle.stats.layer is not None  # fc: the deep forget's layer statistics
    back = obliviate.load(obliviate.save(bundle, tmp_path / "m.safetensors"))
    assert back.dataset_options == {"image_size": 4} and back.retrofit == {"codes_learned": 1.0}
    assert back.stats.layer is not None and back.stats.layer.layer == bundle.stats.layer.layer
    layer = bundle.stats.layer.tensors()
    assert all(torch.equal(back.stats.layer.tensors()[k], v) for k, v in layer.items())


def test_a_layer_name_that_is_not_a_string_drops_the_layer_statistics(parts, tmp_path,
                                                                      tiny_bundle):  # fmt: skip
    bundle = obliviate.load(write(tmp_path, *edited(parts, stats_layer=3)))
    assert bundle.stats is not None and bundle.stats.layer is None
    assert torch.equal(bundle.stats.margin, tiny_bundle.stats.margin)


class _Hand(nn.Module):
    """A module written by hand (not a registered architecture), as obliviate.wrap takes it."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(16, width), nn.ReLU())
        self.out = nn.Linear(width, 4)

    def forward(self, x):
        return self.out(self.body(x))


def test_a_module_file_loads_into_the_module_given(tmp_path):
    bundle = obliviate.wrap(_Hand(), num_classes=4, input_shape=(1, 4, 4))
    path = obliviate.save(bundle, tmp_path / "m.safetensors")
    back = obliviate.load(path, module=_Hand())
    assert (back.arch, back.num_classes, back.input_shape) == ("module:_Hand", 4, (1, 4, 4))
    x = torch.rand(5, 1, 4, 4)
    assert torch.equal(back.model(x), bundle.model(x))
    with pytest.raises(ObliviateError, match=r"the weights do not fit the module given \(first "
                                             r"mismatch: backbone.body.1.bias\); give the module "
                                             r"the file was made from"):
        obliviate.load(path, module=_Hand(width=9))


def test_map_location_is_where_the_tensors_go(parts, tmp_path, monkeypatch, tiny_bundle):
    from obliviate import checkpoint

    path = write(tmp_path, *edited(parts))
    seen = []
    real = checkpoint.safe_open

    def spy(filename, framework, device):
        seen.append(device)
        return real(filename, framework=framework, device="cpu")

    monkeypatch.setattr(checkpoint, "safe_open", spy)
    bundle = obliviate.load(path, map_location=torch.device("cpu"))
    obliviate.load(path, map_location="cuda:1")
    assert seen == ["cpu", "cuda:1"]
    x = torch.rand(3, 1, 4, 4)
    assert torch.equal(bundle.model(x), tiny_bundle.model(x))
    assert next(bundle.model.parameters()).device.type == "cpu"


def test_a_second_forget_after_save_and_load_of_a_calibrated_forget(tiny_bundle, tiny_dataset,
                                                                   tmp_path):  # fmt: skip
    first = obliviate.forget(tiny_bundle, [1], device="cpu")
    assert torch.isneginf(first.stats.margin[1]).all()
    loaded = obliviate.load(obliviate.save(first, tmp_path / "f.safetensors"))
    assert torch.equal(loaded.stats.margin, first.stats.margin)  # -inf survives the file
    assert loaded.forgotten_classes == [1] and loaded.stats.samples == tiny_bundle.stats.samples
    second = obliviate.forget(loaded, [2], device="cpu")
    record = second.history[-1]
    assert record["verified"] is True and second.forgotten_classes == [1, 2]
    assert set(record["verification"]["on"]) == {"codes", "training_statistics"}
    preds = second.model(tiny_dataset.train.x).argmax(1)
    for c in (1, 2):
        assert not (preds[tiny_dataset.train.y == c] == c).any()
    assert len(second.history) == 2
