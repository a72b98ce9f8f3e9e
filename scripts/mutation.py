"""Mutation testing of obliviate's core with mutmut; writes docs/results/mutation.md.

    .venv/bin/pip install mutmut            # once (3.8.1 was used)
    OMP_NUM_THREADS=1 .venv/bin/python scripts/mutation.py            # run, then write the page
    .venv/bin/python scripts/mutation.py --quick                       # in-process runs only
    .venv/bin/python scripts/mutation.py --report-only                 # rewrite the page only

A run first does the quick, in-process runs (every mutant against the unit tests of its
module), then gives mutmut the mutants it has not checked yet: all of them, or with
--quick-survivors only those the quick run left alive; --minutes stops mutmut after a while
and --again reruns the ones that survived it (after adding tests). The page combines both.

mutmut's settings (files, the fast test selection) are in pyproject.toml under [tool.mutmut];
its work is kept in mutants/ (git-ignored), so an interrupted run resumes. The core is:

* calibration.py and stats.py, every function mutmut mutates;
* checkpoint.py's validation: load, read_safetensors and the _checked_*/_sane_setting/_int_or/
  _dict_or_empty helpers (not save/write, which have their own tests outside the selection);
* api.forget (its record and refusal path);
* mnemonic._verdict, by one hand-made mutant: a _verdict that reports every check as passed.
  It is applied to a copy of the source and tests/methods/test_verification.py is run against
  it; the page says whether it fails (the mutant is killed). (mnemonic.py as a whole is not
  given to mutmut: its ~800 mutants take too long to generate and run on a shared 2-core
  machine.)

mutmut 3 leaves decorated functions alone (here the ``@torch.no_grad()`` ones:
calibration.apply_head, stats.record_statistics), so they are outside the score; the page
lists them.
"""

from __future__ import annotations

import argparse
import difflib
import json
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")
OUT = ROOT / "docs" / "results" / "mutation.md"

#: module label -> (meta file under mutants/src/obliviate, mutant name prefixes)
GROUPS = {
    "calibration.py": ("calibration.py", ["obliviate.calibration."]),
    "stats.py": ("stats.py", ["obliviate.stats."]),
    "checkpoint.py validation": ("checkpoint.py", [
        f"obliviate.checkpoint.x_{f}__" for f in (
            "load", "read_safetensors", "_checked_architecture", "_sane_setting",
            "_checked_history", "_int_or", "_dict_or_empty")]),
    "api.forget": ("api.py", ["obliviate.api.x_forget__"]),
}
TARGETS = {"calibration.py": 85.0, "stats.py": 85.0, "checkpoint.py validation": 70.0}
NOT_MUTATED = ["calibration.apply_head (decorated with @torch.no_grad())",
               "stats.record_statistics (decorated with @torch.no_grad())"]

#: Why each surviving mutant is left alive: equivalent, or what a test would have to pin.
#: Keyed by mutant name (valid for the source at the commit the page was made from).
_GPU = ("differs only on a GPU (it drops a device argument); on the CPU, where the tests run, "
        "it is equivalent")
_C, _S = "obliviate.calibration.x_", "obliviate.stats.xǁTrainingStatisticsǁ"
_K = "obliviate.checkpoint.x_"
_F = "obliviate.api.x_forget__mutmut_"
EXPLANATIONS: dict[str, str] = {
    **{f"{_C}head_direction__mutmut_{i}": _GPU for i in (16, 18, 25, 27)},
    **{f"{_C}truncated_predictions__mutmut_{i}": _GPU for i in (3, 5)},
    **{f"{_C}statistics_strength__mutmut_{i}": _GPU for i in (8, 10)},
    **{f"{_C}head_direction__mutmut_{i}": "equivalent: torch.nan_to_num's default for NaN is 0.0"
       for i in (50, 53)},
    **{f"{_C}head_direction__mutmut_{i}": "equivalent: torch.nan_to_num's default for +inf is "
       "the dtype's largest finite value, and the Fishers are float32" for i in (51, 54)},
    **{f"{_C}head_direction__mutmut_{i}": "equivalent for any model: eta has one entry per "
       "penultimate feature, so it is never empty" for i in (60, 62)},
    f"{_C}required_strength__mutmut_1": "equivalent: with no input (or no feature) no gap is "
    "needed, so both versions return 0.0",
    f"{_C}required_strength__mutmut_23": "equivalent: a needed sample (gap > 0) whose drop is "
    "exactly 0 gives gap / 0 = inf, the same result as the early return",
    **{f"{_C}statistics_strength__mutmut_{i}": "equivalent: the feature minima are float32 "
       "(from_tensors and record_statistics make them so), as is the direction" for i in (9, 11)},
    f"{_S}from_tensors__mutmut_11": "equivalent: a margin is [C, C] (record_statistics and "
    "without make it so), so shape[1] == shape[0]; load, the one caller in the package, passes "
    "num_classes and checks the margin is [num_classes, num_classes]",
    **{f"{_S}without__mutmut_{i}": "equivalent: torch.tensor of Python ints is int64 already"
       for i in (4, 6)},
    **{f"{_S}without__mutmut_{i}": 'equivalent: float("-INF") is float("-inf")' for i in (11, 15)},
    **{f"{_K}read_safetensors__mutmut_{i}": "not on the path under test: load always passes "
       "map_location; read_safetensors' own default serves only recoverable.load_module (a LIRF "
       "deposit module), whose round trip tests/recoverable/test_lirf.py checks, outside the "
       "fast selection" for i in (1, 2)},
    f"{_K}load__mutmut_36": "equivalent while FORMAT_VERSION is 1: a file without a version "
    "is accepted as version 0 or 1 alike",
    **{f"{_K}load__mutmut_{i}": "equivalent: _check_metadata_types, just before, lets only an "
       "integer format_version through (a boolean is refused; absent, it is 0), so _int_or's "
       "default is never used" for i in (46, 49)},
    f"{_K}load__mutmut_50": "equivalent: a version that is not an integer maps to -2 instead of "
    "-1, and both are below 0",
    **{f"{_K}load__mutmut_{i}": "equivalent: the weights' names, shapes and dtypes were checked "
       "equal to the model's just before, so strict loading cannot fail here"
       for i in (126, 129, 131)},
    **{f"{_K}_checked_architecture__mutmut_{i}": "equivalent: a num_classes that is not an "
       "integer maps to +1 or -2 instead of -1, all below 2" for i in (23, 24)},
    f"{_K}_sane_setting__mutmut_25": "equivalent for JSON: json.loads makes only None, bool, "
    "int, float, str, list and dict, all handled above",
    f"{_K}_checked_history__mutmut_21": "equivalent: a class that is not an integer maps to -2 "
    "instead of -1, both out of range",
    **{f"{_F}{i}": _GPU for i in (44, 79)},
    **{f"{_F}{i}": "differs only on a GPU: torch.cuda.synchronize(None) waits for the current "
       "CUDA device, not the one given (the same unless device is cuda:N, N not current); on "
       "the CPU this line is not reached" for i in (99, 111)},
    **{f"{_F}{i}": "differs only on a GPU: the synchronize around unlearn() is skipped, so "
       "`seconds` could leave out GPU work still queued; on the CPU, where the tests run, the "
       "branch is skipped either way" for i in (97, 98, 109, 110)},
    f"{_F}91": "equivalent on the CPU: torch.manual_seed(seed) seeds the same CPU generator "
    "(and CUDA's, the milliseconds the branch saves), so the method draws the same numbers; "
    "on a GPU it would leave CUDA's generator unseeded, which the CPU tests cannot see",
    **{f"{_F}{i}": "equivalent in result: torch.manual_seed(seed) seeds the CPU generator as "
       "well as CUDA's; the branch only saves the milliseconds of seeding the others"
       for i in (92, 93)},
    f"{_F}95": "reached only on a GPU (on the CPU the line above seeds); the tests run on the CPU",
    **{f"{_F}{i}": "changes only the word after 'known:' in the error for a method without "
       "hyperparameters, and every registered method has some (the '(none)' is for a method "
       "registered by the user)" for i in (20, 21)},
    f"{_F}172": "equivalent: it copies a model the method made new as well; the copy is equal "
    "and shares nothing with the input, so only the time of a copy is lost",
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not checked",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", 34: "skipped", 37: "caught by type check"}


def patterns() -> list[str]:
    return [prefix + "*" for _, prefixes in GROUPS.values() for prefix in prefixes]


def _meta(meta_file: str) -> dict:
    return json.loads((ROOT / "mutants" / "src" / "obliviate" / f"{meta_file}.meta").read_text())


def unchecked(only: list[str] | None = None, among: set[str] | None = None,
              again: bool = False) -> list[str]:
    """The core's mutants (or those matching ``only``) that mutmut has not checked yet (or,
    with ``again``, that survived it), in ``among`` when given. mutmut reruns every mutant it
    is named, so naming only these makes an interrupted run resume."""
    names = []
    for meta_file in sorted({meta_file for meta_file, _ in GROUPS.values()}):
        for name, code in _meta(meta_file)["exit_code_by_key"].items():
            if ((code is None or (again and code == 0))
                    and any(fnmatch.fnmatchcase(name, p) for p in only or patterns())
                    and (among is None or name in among)):
                names.append(name)
    return names


def run_mutmut(max_children: int, names: list[str], minutes: float | None) -> None:
    """mutmut on ``names``; after ``minutes`` it is stopped (finished mutants keep their
    result in mutants/, the rest stay 'not checked')."""
    if not names:
        return
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.Popen([str(MUTMUT), "run", "--max-children", str(max_children), *names],
                            cwd=ROOT, env=env, start_new_session=True)  # fmt: skip
    try:
        proc.wait(timeout=minutes * 60 if minutes else None)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        print(f"mutmut stopped after {minutes:g} minutes")


def results() -> dict[str, dict[str, str]]:
    """Per group, mutant name -> status."""
    out = {}
    for label, (meta_file, prefixes) in GROUPS.items():
        meta = _meta(meta_file)
        out[label] = {
            name: STATUS.get(code, "suspicious")
            for name, code in meta["exit_code_by_key"].items()
            if any(name.startswith(p) for p in prefixes)
        }
    return out


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
    code = _child_prelude("test_load_validation") + f"""
from safetensors import safe_open
from safetensors.torch import save_file
from obliviate import ObliviateError
tv = tests
tmp = Path(tempfile.mkdtemp())
clean = obliviate.save(bundle, tmp / "clean.safetensors")
with safe_open(str(clean), framework="pt") as fh:
    meta = json.loads(fh.metadata()["obliviate"])
    tensors = {{k: fh.get_tensor(k) for k in fh.keys()}}
def write(name, meta, tensors, raw=None):
    path = tmp / (name + ".safetensors")
    save_file(tensors, str(path), metadata={{"obliviate": raw if raw is not None else json.dumps(meta)}})
    return path
errors = []
for i, (change, message) in enumerate(tv.META_CASES):
    errors.append((write(f"m{{i}}", {{**meta, **change}}, dict(tensors)), message))
for i, (name, edit, message) in enumerate(tv.TENSOR_CASES):
    edited = dict(tensors)
    tv.tensor_case(name, edit)(edited)
    errors.append((write(f"t{{i}}", meta, edited), message))
errors.append((write("list", None, tensors, raw="[1, 2]"),
               "the obliviate metadata is a JSON array, not an object"))
errors.append((write("json", None, tensors, raw="{{nope"), "the obliviate metadata is not valid JSON"))
errors.append((tmp / "missing.safetensors", "does not exist"))
bare = {{k: v for k, v in meta.items() if k not in ("format_version", "codes", "history",
        "forgotten_classes", "train_config", "dataset", "stats_samples", "dataset_options", "retrofit")}}
bare_path = write("bare", bare, {{k: v for k, v in tensors.items() if k != "stats.margin"}})
valid = [(write(f"v{{i}}", {{**meta, **change}}, dict(tensors)), change)
         for i, change in enumerate(tv.VALID_CASES)]
many = write("many", {{**meta, "stats_samples": None, "format_version": 0}}, dict(tensors))
errors.append((write("words", {{**meta, "stats_samples": "many"}}, dict(tensors)),
               "the metadata's 'stats_samples' is a JSON string"))
from obliviate.checkpoint import ModelBundle
from obliviate.models import create_model
two_model = create_model("fc", input_shape=(3,), num_classes=2, hidden=4).eval()
two = obliviate.save(ModelBundle(two_model, "fc", 2, (3,), "two", arch_kwargs={{"hidden": 4}}),
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
        assert b.history == [] and b.train_config == {{}} and b.dataset == "" and b.retrofit is None
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
                return f"{{path.name}}: {{exc}}"
        except Exception as exc:
            return f"{{path.name}}: {{exc!r}}"
        else:
            return f"{{path.name}} loaded"
assert first_failure() is None, first_failure()
""" + _child_mutants("checkpoint.py validation")
    return _run_child(code)


def quick_scan_forget() -> dict[str, str]:
    """api.forget's mutants against tests/unit/test_forget_record.py, in one process: each
    test function is called with conftest's tiny data and model (made once, unmutated) and a
    fresh pytest MonkeyPatch; a mutant is killed when a test raises. A lower bound of the
    full selection's kills, as for the quick runs above."""
    code = _child_prelude("test_forget_record") + f"""
fixtures = {{"tiny_dataset": data, "tiny_bundle": bundle}}
functions = [fn for n, fn in inspect.getmembers(tests, inspect.isfunction)
             if n.startswith("test_") and fn.__module__ == tests.__name__]
functions.sort(key=lambda fn: fn.__code__.co_firstlineno)
def first_failure():
    for fn in functions:
        monkeypatch = pytest.MonkeyPatch()
        kwargs = {{k: monkeypatch if k == "monkeypatch" else fixtures[k]
                  for k in inspect.signature(fn).parameters}}
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


def _function_source(lines: list[str], name: str) -> list[str]:
    """The lines of ``def name(...)`` (any indentation) up to the next line indented as much."""
    for i, line in enumerate(lines):
        if line.lstrip().startswith(f"def {name}("):
            indent = len(line) - len(line.lstrip())
            body = [line]
            for nxt in lines[i + 1:]:
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= indent and not nxt.lstrip(
                ).startswith((")", "]")):
                    break
                body.append(nxt)
            return body[1:]
    return []


def show(name: str) -> str:
    """The mutant's changed lines, from mutmut's mutated copy of the module."""
    module = name.split(".x", 1)[0]  # obliviate.calibration
    path = ROOT / "mutants" / "src" / Path(*module.split(".")).with_suffix(".py")
    lines = path.read_text().splitlines()
    short = name[len(module) + 1:]
    original = _function_source(lines, short.rsplit("__mutmut_", 1)[0] + "__mutmut_orig")
    mutant = _function_source(lines, short)
    diff = difflib.unified_diff(original, mutant, lineterm="", n=0)
    return "\n".join(d for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---")))


def verdict_mutant() -> tuple[bool, str]:
    """Apply 'every check passed' to a copy of the source; True when the tests fail on it."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "src", src)
        path = src / "obliviate" / "methods" / "mnemonic.py"
        text = path.read_text()
        original = 'all(ch["passed"] for ch in checks.values())'
        if text.count(original) != 1:
            return False, "not applied: _verdict no longer has the expected line"
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


_MESSAGE = re.compile(r'"XX.*XX"|"[^"a-z]*[A-Z][^"a-z]*"|ObliviateError\(None\)|'
                      r"'XX, XX'\.join|broken\[:4\]|wrong\[1\]|^\+\s*None$")
#: the line is (part of) an error message: a string of its own, or the raise itself
_IN_MESSAGE = re.compile(r'^\+\s*(f?"|raise |None,?$|None\)|\S*Error\()')
#: a string in a comparison, a key or an argument is not the wording of a message
_NOT_MESSAGE = re.compile(r'[=!]=\s*"|"\s+(not\s+)?in\s|\.get\(\s*"|^\+\s*"[^"]*":|\w=\s*"')
_PATH = re.compile(r"\((None|path), ")


def explain(name: str, diff: str, label: str, quick: dict | None) -> str:
    """Why ``name`` survives: a written reason, or one of a few rules read off its diff."""
    if name in EXPLANATIONS:
        return EXPLANATIONS[name]
    added = [line for line in diff.splitlines() if line.startswith("+")]
    if added and all(_MESSAGE.search(line) and _IN_MESSAGE.search(line)
                     and not _NOT_MESSAGE.search(line) for line in added):
        return ("changes only the wording of an error message (the error is still an "
                "ObliviateError); no test in the fast selection matches these words (each "
                "check's test matches the words that name what is wrong)")
    if (label == "checkpoint.py validation" and added
            and all("(None, " in line and _PATH.search(line) for line in added)):
        return ("changes only the file named in an error message (None instead of the path); "
                "no test in the fast selection checks the path in this message (the type check "
                "before _dict_or_empty leaves its own error unreachable)"
                if "_dict_or_empty(None" in diff else
                "changes only the file named in an error message (None instead of the path); "
                "no test in the fast selection checks the path in this message")
    return "**not explained yet**"


def _table(by_group: dict[str, dict[str, str]]) -> list[str]:
    lines = ["| Module | mutants | killed | timeout | survived | no tests | not checked | score | target |",
             "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for label, statuses in by_group.items():
        count = Counter(statuses.values())
        killed = count["killed"] + count["timeout"]
        judged = killed + count["survived"] + count["no tests"] + count["suspicious"]
        score = f"{100.0 * killed / judged:.1f} %" if judged else "-"
        target = TARGETS.get(label)
        lines.append(
            f"| {label} | {len(statuses)} | {count['killed']} | {count['timeout']} | "
            f"{count['survived']} | {count['no tests']} | {count['not checked']} | {score} | "
            f"{f'>= {target:g} %' if target else '-'} |"
        )
    return lines


def write_page(by_group: dict[str, dict[str, str]], quick: dict[str, dict[str, str]] | None,
               verdict: tuple[bool, str] | None, scope: dict | None = None) -> str:  # fmt: skip
    version = subprocess.run([str(MUTMUT), "--version"], capture_output=True, text=True).stdout
    scope = scope or {}
    both = combined(by_group, quick)
    checked = sum(s != "not checked" for statuses in by_group.values() for s in statuses.values())
    total = sum(len(statuses) for statuses in by_group.values())
    if checked == total:
        run_note = (f"mutmut checked all {total} mutants of the core (`mutants/` keeps its "
                    "verdicts, so the run may take several sittings).")
    elif scope.get("quick_survivors"):
        run_note = (
            f"mutmut checked {checked} of the {total} mutants: it was given only the mutants the "
            "quick run below left alive (`--quick-survivors`; the rest are killed by the unit "
            "tests)" + (f" and stopped after {scope['minutes']:g} minutes (`--minutes`)"
                        if scope.get("minutes") else "")
            + ". Those it did not check keep the quick run's verdict in the combined table."
        )
    else:
        run_note = (f"mutmut checked {checked} of the {total} mutants before it was stopped"
                    + (f" after {scope['minutes']:g} minutes (`--minutes`)"
                       if scope.get("minutes") else "")
                    + "; those it did not check keep the quick run's verdict in the combined "
                    "table, and the next run resumes.")
    lines = [
        "# Mutation testing of the core",
        "",
        f"Made by `scripts/mutation.py` (mutmut {version.split()[-1] if version else '?'}; its "
        "settings and the fast test selection are in `pyproject.toml` under `[tool.mutmut]`). "
        "Score = killed / (killed + survived + no tests); timeouts count as killed and are "
        "shown; mutants not checked yet are not in the score.",
        "",
        "## Combined: mutmut's verdict, else the quick run's",
        "",
        "mutmut's verdict (the whole fast test selection) decides for every mutant it checked; "
        "the quick run's (a lower bound) for the rest.",
        "",
        *_table(both),
        "",
        "## mutmut's run (fast test selection, one forked pytest per mutant)",
        "",
        run_note,
        "",
        *_table(by_group),
        "",
        "Not mutated (mutmut 3 skips decorated functions): " + "; ".join(NOT_MUTATED) + ".",
        "",
        "## Quick run: the same mutants against the unit tests, in one process",
        "",
        "The same mutmut mutants, switched through mutmut's trampolines, called in one process "
        "(`scripts/mutation.py --quick`; no pytest, no fork): calibration.py's and stats.py's "
        "against tests/unit/test_calibration_math.py and tests/unit/test_stats.py, checkpoint.py's "
        "validation against the cases of tests/unit/test_load_validation.py (each edited file "
        "must raise its message; the clean, the pared-down and a forgotten model's files must "
        "load intact), api.forget's against tests/unit/test_forget_record.py. Kills by the rest "
        "of the selection are not counted, so these scores are lower bounds of a full run's.",
        "",
    ]
    lines += _table(quick) if quick else ["Not run yet."]
    lines += ["", "## The `_verdict` mutant that reports every check as passed", ""]
    if verdict is None:
        lines.append("Not run yet.")
    else:
        killed, summary = verdict
        lines.append(
            "`all(ch[\"passed\"] for ch in checks.values())` replaced by `True` in a copy of the "
            "source; tests/methods/test_verification.py run against it: "
            f"**{'killed' if killed else 'NOT killed'}** ({summary})."
        )
    survivors = {name: label for label, statuses in both.items()
                 for name, status in statuses.items()
                 if status in ("survived", "no tests", "suspicious")}  # fmt: skip
    lines += ["", "## Surviving mutants", "",
              "Each with the run that saw it survive: *mutmut* (the whole fast selection) or "
              "*quick run only* (mutmut did not reach it).", ""]
    if not survivors:
        lines.append("None.")
    for name, label in sorted(survivors.items()):
        seen = "mutmut" if by_group[label][name] != "not checked" else "quick run only"
        reason = explain(name, show(name), label, quick)
        lines += [f"- `{name}` ({label}; {seen}): {reason}", "", "  ```diff",
                  *[f"  {line}" for line in show(name).splitlines()], "  ```", ""]
    return "\n".join(lines) + "\n"


def combined(by_group: dict[str, dict[str, str]],
             quick: dict[str, dict[str, str]] | None) -> dict[str, dict[str, str]]:
    """Per mutant: mutmut's verdict when it checked the mutant (the tests decide), else the
    quick run's."""
    out = {}
    for label, statuses in by_group.items():
        fast = (quick or {}).get(label, {})
        out[label] = {name: status if status != "not checked" else fast.get(name, status)
                      for name, status in statuses.items()}  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the page (from mutmut's results and the last run of "
                             "the _verdict mutant)")  # fmt: skip
    parser.add_argument("--verdict-only", action="store_true",
                        help="only run the hand-made _verdict mutant, then rewrite the page")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="mutant name patterns (default: the core)")
    parser.add_argument("--quick", action="store_true",
                        help="only the in-process runs against the unit tests, then rewrite "
                             "the page")  # fmt: skip
    parser.add_argument("--quick-survivors", action="store_true",
                        help="give mutmut only the mutants the quick run left alive")
    parser.add_argument("--again", action="store_true",
                        help="also rerun the mutants that survived mutmut (after adding tests)")
    parser.add_argument("--keep-quick", action="store_true",
                        help="use the last quick run (mutants/quick.json) instead of redoing it")
    parser.add_argument("--minutes", type=float,
                        help="stop mutmut after this long (what it did not reach stays 'not "
                             "checked'; the next run resumes)")  # fmt: skip
    args = parser.parse_args()
    quick_cache = ROOT / "mutants" / "quick.json"
    scope = ROOT / "mutants" / "scope.json"
    full = not (args.report_only or args.verdict_only or args.quick)
    if full and not (ROOT / "mutants" / "src" / "obliviate" / "api.py.meta").exists():
        run_mutmut(args.max_children, ["obliviate.api.x_forget__mutmut_1"], None)  # generates
    if args.quick or (full and not (args.keep_quick and quick_cache.exists())):
        quick = quick_scan()
        quick["checkpoint.py validation"] = quick_scan_checkpoint()
        quick["api.forget"] = quick_scan_forget()
        quick_cache.write_text(json.dumps(quick))
    quick = json.loads(quick_cache.read_text()) if quick_cache.exists() else None
    if full:
        among = None
        if args.quick_survivors:
            among = {n for statuses in quick.values() for n, s in statuses.items() if s != "killed"}
        run_mutmut(args.max_children, unchecked(args.only, among, args.again), args.minutes)
        scope.write_text(json.dumps({"quick_survivors": args.quick_survivors,
                                     "minutes": args.minutes}))  # fmt: skip
    cache = ROOT / "mutants" / "verdict-mutant.json"  # mutants/ is mutmut's (git-ignored) work
    if args.report_only or args.quick:
        verdict = tuple(json.loads(cache.read_text())) if cache.exists() else None
    else:
        verdict = verdict_mutant()
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(json.dumps(verdict))
    run_scope = json.loads(scope.read_text()) if scope.exists() else {}
    OUT.write_text(write_page(results(), quick, verdict, run_scope))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
