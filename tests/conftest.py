"""Shared fixtures: seeds, digits, a tiny synthetic dataset, and small trained models."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

import pytest
import torch

os.environ.setdefault("OBLIVIATE_NO_PROGRESS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core (pytest -n auto): each worker and the commands it
    # starts compute on one thread, or the workers' thread pools fight over the same cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
# retrained references (obliviate evidence --retrain) are cached here, not in the user's home,
# and the folder goes when this process (the session, or one xdist worker) ends
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="obliviate-test-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)

import obliviate  # noqa: E402
from obliviate import CodeConfig, TrainConfig  # noqa: E402
from obliviate.data import Dataset, Split  # noqa: E402


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def cli(monkeypatch, capsys):
    """Run the ``obliviate`` command in-process: ``cli("list") -> (exit code, stdout, stderr)``."""
    from obliviate.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["obliviate", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return obliviate.load_dataset("digits")


@pytest.fixture(scope="session")
def digits_bundle(digits: Dataset) -> obliviate.ModelBundle:
    """The demo's model: fc on digits with codes, 40 epochs at lr 0.1 (a few seconds)."""
    return obliviate.train(digits, "fc", config=TrainConfig(epochs=40, lr=0.1), progress=False)


@pytest.fixture(scope="session")
def digits_bundle_no_codes(digits: Dataset) -> obliviate.ModelBundle:
    return obliviate.train(
        digits, "fc", config=TrainConfig(epochs=2, lr=0.1), codes=None, progress=False
    )


@pytest.fixture(scope="session")
def tiny_dataset() -> Dataset:
    """Four well separated Gaussian blobs as 1x4x4 'images' (fast, synthetic)."""
    g = torch.Generator().manual_seed(0)
    centers = torch.rand(4, 1, 4, 4, generator=g)
    def make(n: int) -> Split:
        y = torch.arange(4).repeat_interleave(n)
        x = centers[y] + 0.05 * torch.randn(len(y), 1, 4, 4, generator=g)
        return Split(x.clamp(0, 1), y)
    return Dataset("tiny", make(40), make(10), 4, (1, 4, 4))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_dataset: Dataset) -> obliviate.ModelBundle:
    return obliviate.train(
        tiny_dataset,
        "fc",
        config=TrainConfig(epochs=30, lr=0.1, batch_size=32),
        codes=CodeConfig(t_mix=0.2),
        model_kwargs={"hidden": 32},
        progress=False,
    )


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, tiny_bundle: obliviate.ModelBundle):
    """``tiny_bundle`` saved to a model file (one per test module)."""
    return obliviate.save(tiny_bundle, tmp_path_factory.mktemp("model") / "m.safetensors")
