"""Property tests of `obliviate.load` on damaged files: whatever is edited in the metadata or
the tensors of a real model file, the only error that comes out is `ObliviateError`."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

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
DELETE = object()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**13), 10**13)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=8,
)  # fmt: skip


def parts(bundle) -> tuple[dict, dict[str, torch.Tensor]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = obliviate.save(bundle, Path(tmp) / "m.safetensors")
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["obliviate"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    return meta, tensors


def load_written(meta, tensors: dict[str, torch.Tensor]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "edited.safetensors"
        save_file(tensors, str(path), metadata={"obliviate": json.dumps(meta)})
        try:
            bundle = obliviate.load(path)
        except ObliviateError:
            pass
        else:  # what loads has the types the rest of the package relies on
            assert isinstance(meta, dict)
            assert isinstance(bundle.dataset, str) and isinstance(bundle.train_config, dict)
            assert isinstance(bundle.dataset_options, dict) and isinstance(bundle.history, list)
            assert bundle.retrofit is None or isinstance(bundle.retrofit, dict)
        assert [p.name for p in Path(tmp).iterdir()] == ["edited.safetensors"]  # nothing written


@settings(max_examples=60, deadline=None)
@given(value=json_values)
def test_any_json_value_as_the_whole_metadata_is_a_user_error(tiny_bundle, value):
    _, tensors = parts(tiny_bundle)
    load_written(value, tensors)


@settings(max_examples=150, deadline=None)
@given(key=st.sampled_from(KEYS), value=json_values | st.just(DELETE), data=st.data())
def test_any_metadata_edit_is_loaded_or_a_user_error(tiny_bundle, key, value, data):
    meta, tensors = parts(tiny_bundle)
    if data.draw(st.booleans()) and key in ("num_classes", "input_shape", "forgotten_classes"):
        value = data.draw(st.integers(-5, 10**12) if key == "num_classes" else
                          st.lists(st.integers(-3, 10**6), max_size=5))  # fmt: skip
    if value is DELETE:
        meta.pop(key, None)
    else:
        meta[key] = value
    load_written(meta, tensors)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_any_tensor_edit_is_loaded_or_a_user_error(tiny_bundle, data):
    meta, tensors = parts(tiny_bundle)
    name = data.draw(st.sampled_from(sorted(tensors)))
    edit = data.draw(st.sampled_from(["nan", "inf", "dtype", "shape", "drop", "extra", "int"]))
    t = tensors[name].clone()
    if edit in ("nan", "inf") and t.numel():
        t.view(-1)[data.draw(st.integers(0, t.numel() - 1))] = float(edit)
        tensors[name] = t
    elif edit == "dtype":
        tensors[name] = t.double()
    elif edit == "int":
        tensors[name] = t.long()
    elif edit == "shape":
        tensors[name] = t.reshape(-1)[: max(t.numel() - 1, 0)].contiguous()
    elif edit == "drop":
        del tensors[name]
    else:
        tensors["weights.extra"] = torch.zeros(3)
    load_written(meta, tensors)
