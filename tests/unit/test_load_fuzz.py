"""Property tests of `obliviate.load` on edited files. Every edit is drawn from one of two
families, known in advance: edits that keep the file valid must load and give the same
outputs; damage must raise `ObliviateError` (and nothing else, and write nothing)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

import obliviate
from obliviate import ObliviateError

KEYS = ["format", "format_version", "arch", "arch_kwargs", "num_classes", "input_shape",
        "dataset", "codes", "train_config", "forgotten_classes", "history", "stats_samples",
        "dataset_options", "retrofit"]  # fmt: skip
#: keys a file may lack: the loader has a default for each
OPTIONAL = ["format_version", "dataset", "codes", "train_config", "forgotten_classes", "history",
            "stats_samples", "dataset_options", "retrofit"]  # fmt: skip

scalars = (st.none() | st.booleans() | st.integers(-(10**13), 10**13)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6))  # fmt: skip
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=4)
#: JSON that is neither an object nor falsy (falsy settings read as "none given")
truthy_non_objects = json_values.filter(lambda v: bool(v) and not isinstance(v, dict))
not_an_int = json_values.filter(lambda v: not isinstance(v, int) or isinstance(v, bool))


@pytest.fixture(scope="module")
def original(tiny_bundle):
    """``(metadata, tensors)`` of the tiny model's file, and its outputs on fixed inputs."""
    with tempfile.TemporaryDirectory() as tmp:
        path = obliviate.save(tiny_bundle, Path(tmp) / "m.safetensors")
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["obliviate"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outputs = tiny_bundle.model(x)
    return meta, tensors, x, outputs


def load_edited(meta, tensors):
    """Load the edited file: the bundle, or the ObliviateError. Nothing else may be written."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edited.safetensors"
        save_file(tensors, str(path), metadata={"obliviate": json.dumps(meta)})
        try:
            result = obliviate.load(path)
        except ObliviateError as exc:
            result = exc
        assert [p.name for p in Path(tmp).iterdir()] == ["edited.safetensors"]
    return result


def assert_same_model(bundle, original):
    assert not isinstance(bundle, Exception), f"a valid edit was refused: {bundle}"
    meta, tensors, x, outputs = original
    with torch.no_grad():
        assert torch.equal(bundle.model(x), outputs)
    assert bundle.num_classes == 4 and bundle.input_shape == (1, 4, 4)


@st.composite
def valid_metadata_edit(draw, meta):
    meta = dict(meta)
    kind = draw(st.sampled_from(["dataset", "unknown key", "train_config", "history", "samples",
                                 "version", "delete", "forgotten", "retrofit", "options"]))  # fmt: skip
    if kind == "dataset":
        meta["dataset"] = draw(st.text(max_size=8))
    elif kind == "unknown key":
        meta[draw(st.text(min_size=1, max_size=6).filter(lambda k: k not in KEYS))] = draw(json_values)
    elif kind == "train_config":
        meta["train_config"] = draw(json_objects)
    elif kind == "history":
        meta["history"] = draw(st.lists(json_objects, max_size=3))
    elif kind == "samples":
        meta["stats_samples"] = draw(st.none() | st.integers(0, 10**9))  # a number or null
    elif kind == "version":
        meta["format_version"] = draw(st.sampled_from([0, 1]))
    elif kind == "delete":
        meta.pop(draw(st.sampled_from(OPTIONAL)))
    elif kind == "forgotten":
        meta["forgotten_classes"] = draw(st.lists(st.integers(0, 3), unique=True, max_size=3))
    elif kind == "retrofit":
        meta["retrofit"] = draw(st.none() | json_objects)
    else:
        meta["dataset_options"] = draw(json_objects)
    return kind, meta


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_valid_metadata_edits_load_with_the_same_outputs(original, data):
    kind, meta = data.draw(valid_metadata_edit(original[0]))
    bundle = load_edited(meta, original[1])
    assert_same_model(bundle, original)
    if kind == "forgotten":
        assert bundle.forgotten_classes == meta["forgotten_classes"]
    if "codes" not in meta:
        assert bundle.codes is None  # no settings: the codes tensor is not read
    else:
        assert torch.equal(bundle.codes.tensor, original[1]["codes"])


@st.composite
def damaged_metadata(draw, meta):
    meta = dict(meta)
    kind = draw(st.sampled_from(["format", "version", "arch", "num_classes", "input_shape",
                                 "forgotten", "history", "arch_kwargs", "object", "codes",
                                 "required"]))  # fmt: skip
    if kind == "format":
        meta["format"] = draw(json_values.filter(lambda v: v != "obliviate.model"))
    elif kind == "version":
        meta["format_version"] = draw(not_an_int | st.integers(2, 10**6) | st.integers(-99, -1))
    elif kind == "arch":
        meta["arch"] = draw(not_an_int.filter(lambda v: not isinstance(v, str))
                            | st.text(max_size=8).filter(lambda v: ":" not in v and v != "fc"))
    elif kind == "num_classes":
        meta["num_classes"] = draw(not_an_int | st.integers().filter(lambda n: n != 4))
    elif kind == "input_shape":
        meta["input_shape"] = draw(
            truthy_non_objects.filter(lambda v: not isinstance(v, list))
            | st.lists(st.integers(-3, 40), max_size=6).filter(lambda s: not (
                1 <= len(s) <= 4 and all(d >= 1 for d in s) and torch.tensor(s).prod() == 16))
            | st.sampled_from([[1, 4, 4, 1, 1], [4, 0, 4], [1, 16.0]])
        )  # fmt: skip
    elif kind == "forgotten":
        meta["forgotten_classes"] = draw(
            truthy_non_objects.filter(lambda v: not isinstance(v, list))
            | st.sampled_from([[4], [-1], [1, 1], [0, 1, 2, 3], [True], ["0"], [1.0]])
        )  # fmt: skip
    elif kind == "history":
        meta["history"] = draw(truthy_non_objects.filter(lambda v: not isinstance(v, list))
                               | st.lists(truthy_non_objects, min_size=1, max_size=3))  # fmt: skip
    elif kind == "arch_kwargs":
        meta["arch_kwargs"] = draw(truthy_non_objects | st.sampled_from([
            {"hidden": 33}, {"hidden": 10**7}, {"hidden": 32, "depth": 2},
            {"hidden": [[[[[[1]]]]]]}]))  # fmt: skip
    elif kind == "object":
        meta[draw(st.sampled_from(["train_config", "dataset_options", "retrofit"]))] = draw(
            truthy_non_objects)
    elif kind == "codes":
        meta["codes"] = draw(truthy_non_objects | st.sampled_from([{"colour": 1}, {"t_mix": "x"}]))
    else:
        meta.pop(draw(st.sampled_from(["format", "arch", "num_classes", "input_shape"])))
    return kind, meta


@settings(max_examples=120, deadline=None)
@given(data=st.data())
def test_damaged_metadata_is_a_user_error(original, data):
    kind, meta = data.draw(damaged_metadata(original[0]))
    result = load_edited(meta, original[1])
    assert isinstance(result, ObliviateError), (kind, meta)


VALID_TENSOR_EDITS = ["stats to float64", "drop a statistic", "-inf margin", "reorder"]
DAMAGE = ["nan", "inf", "dtype", "int", "shape", "drop", "extra"]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_valid_tensor_edits_load_with_the_same_outputs(original, data):
    meta, tensors = original[0], dict(original[1])
    edit = data.draw(st.sampled_from(VALID_TENSOR_EDITS))
    stat = data.draw(st.sampled_from(["stats.margin", "stats.feature_min"]))
    if edit == "stats to float64":
        tensors[stat] = tensors[stat].double()
    elif edit == "drop a statistic":
        del tensors[stat]
    elif edit == "-inf margin":
        margin = tensors["stats.margin"].clone()
        margin.view(-1)[data.draw(st.integers(0, margin.numel() - 1))] = float("-inf")
        tensors["stats.margin"] = margin
    else:
        tensors = dict(reversed(list(tensors.items())))
    bundle = load_edited(meta, tensors)
    assert_same_model(bundle, original)
    assert (bundle.stats is None) == (edit == "drop a statistic")


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_damaged_tensors_are_a_user_error(original, data):
    meta, tensors = original[0], dict(original[1])
    name = data.draw(st.sampled_from(sorted(tensors)))
    edit = data.draw(st.sampled_from(DAMAGE))
    if name == "codes" and edit in ("dtype", "drop"):
        edit = "nan"  # float64 codes are codes; a file without them is a model without codes
    if name.startswith("stats.") and edit in ("dtype", "drop", "int"):
        edit = "nan"  # valid edits (see above); an integer margin is still a number
    if name == "stats.margin" and edit == "inf":
        edit = "nan"  # -inf margins are valid (a forgotten class); +inf is a loose bound
    t = tensors[name].clone()
    if edit in ("nan", "inf"):
        t.view(-1)[data.draw(st.integers(0, t.numel() - 1))] = float(edit)
        tensors[name] = t
    elif edit == "dtype":
        tensors[name] = t.double()
    elif edit == "int":
        tensors[name] = t.long()
    elif edit == "shape":
        tensors[name] = t.reshape(-1)[: t.numel() - 1].contiguous()
    elif edit == "drop":
        del tensors[name]
    else:
        tensors["weights.extra"] = torch.zeros(3)
    result = load_edited(meta, tensors)
    assert isinstance(result, ObliviateError), (name, edit)


@settings(max_examples=60, deadline=None)
@given(value=json_values.filter(lambda v: not isinstance(v, dict)))
def test_any_json_value_but_an_object_as_the_whole_metadata_is_a_user_error(original, value):
    result = load_edited(value, original[1])
    assert isinstance(result, ObliviateError), value
