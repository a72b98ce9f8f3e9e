"""The torch-free names the command line shows match the registries they mirror, and the
command line's module imports no torch (so `obliviate --help` and usage errors are fast)."""

import subprocess
import sys

import obliviate
from obliviate.codes import CodeConfig
from obliviate.models import trainable_models
from obliviate.names import CODE_DISTRIBUTIONS, CODE_MODES, DATASET_NAMES, TRAINABLE_MODEL_NAMES


def test_names_match_the_registries():
    assert list(DATASET_NAMES) == obliviate.DATASETS.names()
    assert list(TRAINABLE_MODEL_NAMES) == trainable_models()
    assert CodeConfig().mode in CODE_MODES and CodeConfig().distribution in CODE_DISTRIBUTIONS


def test_the_command_line_module_imports_no_torch():
    code = "import sys, obliviate.cli; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_forget_refuses_a_wrong_output_before_importing_torch(tmp_path):
    # the output checks come first: a path mistake costs no torch import (about 2 s)
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"not read")
    code = ("import sys; from obliviate.cli import main; sys.argv = ['obliviate', 'forget', "
            f"{str(model)!r}, '--classes', '0', '--out', {str(model)!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n"
            "    print(exc.code, 'torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert "is an input of this command" in out.stderr
