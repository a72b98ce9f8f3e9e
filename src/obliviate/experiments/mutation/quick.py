"""The quick runs' unit scans: each group's mutants switched through mutmut's trampolines and
the unit tests of their module called in one child process (no pytest, no fork per mutant); and
the hand-made verdict mutant against tests/methods/test_verification.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from obliviate.experiments.mutation.mutants import GROUPS, ROOT

#: the groups first run against their module's unit tests in this process (quick_scan*); the
#: pytest scan (the whole fast selection, in one pytest process) then takes every group's
#: mutants those left alive
UNIT_SCAN = ["calibration.py", "stats.py", "checkpoint.py validation", "api.forget"]
QUICK_MODULES = {"calibration.py": "calibration", "stats.py": "stats"}
QUICK_TESTS = ["test_calibration_math", "test_stats"]


def quick_scan() -> dict[str, dict[str, str]]:
    """Every mutmut mutant of calibration.py and stats.py against the two unit-test files,
    called in this process through mutmut's trampolines (no pytest, no fork): a mutant is
    killed when a test function raises. Kills by the rest of the selection are not counted,
    so this score is a lower bound of mutmut's. Runs in a child process (clean imports)."""
    code = f"""
import inspect, json, os, sys
sys.path = [{str(ROOT / "mutants" / "src")!r}, {str(ROOT / "tests" / "unit")!r}] + [
    p for p in sys.path if os.path.realpath(p or ".") != {str(ROOT / "src")!r}]
os.environ["MUTANT_UNDER_TEST"] = "none"
import pytest, torch, obliviate.calibration
assert "mutants" in obliviate.calibration.__file__
mods = [__import__(m) for m in {QUICK_TESTS!r}]
fixtures = {{}}
for mod in mods:
    for name in ("model_and_data",):
        f = getattr(mod, name, None)
        if f is not None:
            fixtures[name] = getattr(f, "__wrapped__", None) or f._get_wrapped_function()
tests = [fn for mod in mods for n, fn in inspect.getmembers(mod, inspect.isfunction)
         if n.startswith("test_") and fn.__module__ == mod.__name__]
def first_failure():
    for fn in tests:
        kwargs = {{k: fixtures[k]() for k in inspect.signature(fn).parameters}}
        torch.manual_seed(0)
        try:
            fn(**kwargs)
        except (Exception, pytest.fail.Exception):  # the latter: pytest.raises/warns missed
            return fn.__name__
assert first_failure() is None, "the unit tests fail without a mutant"
out = {{}}
for label, module in {QUICK_MODULES!r}.items():
    meta = json.load(open({str(ROOT / "mutants" / "src" / "obliviate")!r} + "/" + module + ".py.meta"))
    out[label] = {{}}
    for mutant in meta["exit_code_by_key"]:
        os.environ["MUTANT_UNDER_TEST"] = mutant
        out[label][mutant] = "survived" if first_failure() is None else "killed"
print(json.dumps(out))
"""
    return _run_child(code)


def _child_prelude(test_module: str) -> str:
    """The start of a quick scan's child process: obliviate imported from mutants/src (not
    src) with no mutant active, ``test_module`` imported as ``tests``, and conftest's tiny data
    (``data``) and model (``bundle``) made once, by the unmutated code."""
    return f"""
import inspect, json, os, sys, tempfile
from pathlib import Path
sys.path = [{str(ROOT / "mutants" / "src")!r}, {str(ROOT / "tests" / "unit")!r},
            {str(ROOT / "tests")!r}] + [
    p for p in sys.path if os.path.realpath(p or ".") != {str(ROOT / "src")!r}]
os.environ["MUTANT_UNDER_TEST"] = "none"
import pytest, torch
import obliviate, conftest, {test_module} as tests
assert "mutants" in obliviate.__file__
unwrap = lambda f: getattr(f, "__wrapped__", None) or f._get_wrapped_function()
data = unwrap(conftest.tiny_dataset)()
bundle = unwrap(conftest.tiny_bundle)(data)
"""


def _child_mutants(group: str) -> str:
    """The end of a quick scan's child process: every mutant of ``group`` made active in turn
    and judged by the child's ``first_failure()``; the statuses printed as JSON."""
    meta_file, prefixes = GROUPS[group]
    return f"""
meta_file = json.load(open({str(ROOT / "mutants" / "src" / "obliviate" / meta_file) + ".meta"!r}))
out = {{}}
for mutant in meta_file["exit_code_by_key"]:
    if mutant.startswith(tuple({prefixes!r})):
        os.environ["MUTANT_UNDER_TEST"] = mutant
        out[mutant] = "survived" if first_failure() is None else "killed"
print(json.dumps(out))
"""


def _run_child(code: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OBLIVIATE_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def quick_scan_checkpoint() -> dict[str, str]:
    """checkpoint.py's validation mutants against the cases of tests/unit/test_load_validation.py,
    in one process: the edited files are written once (by the unmutated code), then every
    mutant loads each of them and must raise the case's message, or load the valid ones
    intact. A lower bound of the full selection's kills, as for the quick run above."""
    code = _child_prelude("test_load_validation") + """
from safetensors import safe_open
from safetensors.torch import save_file
from obliviate import ObliviateError
tv = tests
tmp = Path(tempfile.mkdtemp())
clean = obliviate.save(bundle, tmp / "clean.safetensors")
with safe_open(str(clean), framework="pt") as fh:
    meta = json.loads(fh.metadata()["obliviate"])
    tensors = {k: fh.get_tensor(k) for k in fh.keys()}
def write(name, meta, tensors, raw=None):
    path = tmp / (name + ".safetensors")
    save_file(tensors, str(path), metadata={"obliviate": raw if raw is not None else json.dumps(meta)})
    return path
errors = []
for i, (change, message) in enumerate(tv.META_CASES):
    errors.append((write(f"m{i}", {**meta, **change}, dict(tensors)), message))
for i, (name, edit, message) in enumerate(tv.TENSOR_CASES):
    edited = dict(tensors)
    tv.tensor_case(name, edit)(edited)
    errors.append((write(f"t{i}", meta, edited), message))
errors.append((write("list", None, tensors, raw="[1, 2]"),
               "the obliviate metadata is a JSON array, not an object"))
errors.append((write("json", None, tensors, raw="{nope"), "the obliviate metadata is not valid JSON"))
errors.append((tmp / "missing.safetensors", "does not exist"))
bare = {k: v for k, v in meta.items() if k not in ("format_version", "codes", "history",
        "forgotten_classes", "train_config", "dataset", "stats_samples", "dataset_options", "retrofit")}
bare_path = write("bare", bare, {k: v for k, v in tensors.items() if k != "stats.margin"})
valid = [(write(f"v{i}", {**meta, **change}, dict(tensors)), change)
         for i, change in enumerate(tv.VALID_CASES)]
many = write("many", {**meta, "stats_samples": None, "format_version": 0}, dict(tensors))
errors.append((write("words", {**meta, "stats_samples": "many"}, dict(tensors)),
               "the metadata's 'stats_samples' is a JSON string"))
from obliviate.checkpoint import ModelBundle
from obliviate.models import create_model
two_model = create_model("fc", input_shape=(3,), num_classes=2, hidden=4).eval()
two = obliviate.save(ModelBundle(two_model, "fc", 2, (3,), "two", arch_kwargs={"hidden": 4}),
                     tmp / "two.safetensors")
first = obliviate.forget(bundle, [1], device="cpu")
forgotten = obliviate.save(first, tmp / "forgotten.safetensors")
x = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0))
def first_failure():
    try:
        b = obliviate.load(clean)
        assert torch.equal(b.model(x), bundle.model(x)) and torch.equal(b.codes.tensor, bundle.codes.tensor)
        assert torch.equal(b.stats.margin, bundle.stats.margin) and b.stats.samples == bundle.stats.samples
        assert (b.arch, b.arch_kwargs, b.num_classes, b.input_shape, b.dataset) == (
            bundle.arch, bundle.arch_kwargs, bundle.num_classes, bundle.input_shape, bundle.dataset)
        assert b.codes.config == bundle.codes.config and b.train_config == json.loads(json.dumps(bundle.train_config))
        assert b.dataset_options == bundle.dataset_options and b.retrofit == bundle.retrofit
        b = obliviate.load(bare_path)
        assert torch.equal(b.model(x), bundle.model(x)) and b.codes is None and b.stats is None
        assert b.history == [] and b.train_config == {} and b.dataset == "" and b.retrofit is None
        f = obliviate.load(forgotten)
        assert torch.equal(f.stats.margin, first.stats.margin) and f.forgotten_classes == [1]
        assert f.history == json.loads(json.dumps(first.history))
        for path, change in valid:
            b = obliviate.load(path)
            assert torch.equal(b.model(x.reshape(6, *b.input_shape)), bundle.model(x))
            assert b.forgotten_classes == change.get("forgotten_classes", [])
        assert obliviate.load(many).stats.samples == 0
        x2 = torch.rand(3, 3)
        assert torch.equal(obliviate.load(two).model(x2), two_model(x2))
    except Exception as exc:
        return "valid file: " + repr(exc)
    for path, message in errors:
        try:
            obliviate.load(path)
        except ObliviateError as exc:
            if message not in str(exc):
                return f"{path.name}: {exc}"
        except Exception as exc:
            return f"{path.name}: {exc!r}"
        else:
            return f"{path.name} loaded"
assert first_failure() is None, first_failure()
""" + _child_mutants("checkpoint.py validation")
    return _run_child(code)


def quick_scan_forget() -> dict[str, str]:
    """api.forget's mutants against tests/unit/test_forget_record.py, in one process: each
    test function is called with conftest's tiny data and model (made once, unmutated) and a
    fresh pytest MonkeyPatch; a mutant is killed when a test raises. A lower bound of the
    full selection's kills, as for the quick runs above."""
    code = _child_prelude("test_forget_record") + """
fixtures = {"tiny_dataset": data, "tiny_bundle": bundle}
functions = [fn for n, fn in inspect.getmembers(tests, inspect.isfunction)
             if n.startswith("test_") and fn.__module__ == tests.__name__]
functions.sort(key=lambda fn: fn.__code__.co_firstlineno)
def first_failure():
    for fn in functions:
        monkeypatch = pytest.MonkeyPatch()
        kwargs = {k: monkeypatch if k == "monkeypatch" else fixtures[k]
                  for k in inspect.signature(fn).parameters}
        torch.manual_seed(0)
        try:
            fn(**kwargs)
        except (Exception, pytest.fail.Exception):  # the latter: pytest.raises/warns missed
            return fn.__name__
        finally:
            monkeypatch.undo()
assert first_failure() is None, "the record tests fail without a mutant"
""" + _child_mutants("api.forget")
    return _run_child(code)


def verdict_mutant() -> tuple[bool, str]:
    """Apply 'every check passed' to a copy of the source; True when the tests fail on it."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src)
        path = src / "obliviate" / "methods" / "mnemonic_checks.py"
        text = path.read_text()
        original = 'all(ch["passed"] for ch in checks.values())'
        if text.count(original) != 1:
            return False, "not applied: verdict no longer has the expected line"
        path.write_text(text.replace(original, "True"))
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
        where = subprocess.run([sys.executable, "-c", "import obliviate; print(obliviate.__file__)"],
                               env=env, capture_output=True, text=True, cwd=tmp).stdout  # fmt: skip
        if not where.startswith(str(src)):
            return False, f"not applied: the copy was not imported ({where.strip()})"
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             str(ROOT / "tests" / "methods" / "test_verification.py")],
            env=env, capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
        return proc.returncode == 1, summary
