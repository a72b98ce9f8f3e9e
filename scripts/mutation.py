"""Mutation testing of obliviate's core with mutmut; writes docs/results/mutation.md.

    .venv/bin/pip install mutmut==3.8.1                                 # once
    OMP_NUM_THREADS=1 .venv/bin/python scripts/mutation.py --quick-survivors   # run, write the page
    .venv/bin/python scripts/mutation.py --quick                        # the quick runs only
    .venv/bin/python scripts/mutation.py --report-only                  # rewrite the page only

A run first brings mutmut's mutated copy of the source (mutants/) up to date, then does the
quick runs: calibration.py's, stats.py's, checkpoint.py's validation and api.forget's mutants
against the unit tests of their module, called in this process; deep.py's and the mnemonic.py
verification path's against mutmut's whole fast test selection, in one pytest process (the
pytest scan: each test rerun under every mutant of a function it calls). Then it gives mutmut
(one forked pytest per mutant) the mutants it has not checked yet: all of them, or with
--quick-survivors only those the quick runs left alive; --minutes stops mutmut after a while
and --again reruns the ones that survived it and the pytest scan (after adding tests, or when
the source changed under a run: a function whose source changed has its verdicts redone
anyway). The page combines both.

mutmut's settings (files, the fast test selection) are in pyproject.toml under [tool.mutmut];
its work is kept in mutants/ (git-ignored), so an interrupted run resumes. The core is:

* calibration.py, stats.py and deep.py, every function mutmut mutates;
* checkpoint.py's validation: load, read_safetensors and the _checked_*/_sane_setting/_int_or/
  _dict_or_empty helpers (not save/write, which have their own tests outside the selection);
* api.forget (its record and refusal path);
* the verification path of methods/mnemonic.py: _verdict, _no_statistics, _deep_unavailable,
  MnemonicForgetting._calibrated, ._deep and ._head_step, _GivenData.of and .check (the
  checks, the strengths and the bounds). mutmut 3.8.1 mutates the methods of a class under a
  class decorator (``@METHODS.register("mnemonic")``: the decorator is kept, the methods get
  trampolines) and classmethods; it generates mutants for the whole file (~1100), but only
  these functions' are run (GROUPS names them by prefix);
* mnemonic._verdict, also by one hand-made mutant: a _verdict that reports every check as
  passed. It is applied to a copy of the source and tests/methods/test_verification.py is run
  against it; the page says whether it fails (the mutant is killed).

mutmut 3 leaves decorated functions alone (here the ``@torch.no_grad()`` ones:
calibration.apply_head, stats.record_statistics, deep.record_layer_statistics and
deep.apply_edit; the ``@property`` ones), so they are outside the score; the page lists them.
"""

from __future__ import annotations

import argparse
import datetime
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
    "deep.py": ("deep.py", ["obliviate.deep."]),
    "mnemonic.py verification": ("methods/mnemonic.py", [
        f"obliviate.methods.mnemonic.{f}__mutmut_" for f in (
            "x__verdict", "x__no_statistics", "x__deep_unavailable",
            "xǁMnemonicForgettingǁ_head_step", "xǁMnemonicForgettingǁ_deep",
            "xǁMnemonicForgettingǁ_calibrated", "xǁ_GivenDataǁof", "xǁ_GivenDataǁcheck")]),
}
TARGETS = {"calibration.py": 85.0, "stats.py": 85.0, "checkpoint.py validation": 70.0,
           "deep.py": 85.0, "mnemonic.py verification": 85.0}
#: the groups first run against their module's unit tests in this process (quick_scan*); the
#: pytest scan (the whole fast selection, in one pytest process) then takes every group's
#: mutants those left alive
UNIT_SCAN = ["calibration.py", "stats.py", "checkpoint.py validation", "api.forget"]
NOT_MUTATED = ["calibration.apply_head (decorated with @torch.no_grad())",
               "stats.record_statistics (decorated with @torch.no_grad())",
               "deep.record_layer_statistics and deep.apply_edit (decorated with "
               "@torch.no_grad()); deep.py's dataclasses' generated methods (no source)",
               "mnemonic.py: the properties _GivenData.any and _GivenData.retain_any (decorated "
               "with @property); the rest of mnemonic.py (paper mode, the noise, the "
               "constructor, unlearn) is mutated by mutmut but outside this group"]

#: Why each surviving mutant is left alive: equivalent, or what a test would have to pin.
#: Keyed by mutant name (valid for the source at the commit the page was made from).
_GPU = ("differs only on a GPU (it drops a device argument); on the CPU, where the tests run, "
        "it is equivalent")
_C, _S = "obliviate.calibration.x_", "obliviate.stats.xǁTrainingStatisticsǁ"
_K = "obliviate.checkpoint.x_"
_F = "obliviate.api.x_forget__mutmut_"
_D, _M = "obliviate.deep.", "obliviate.methods.mnemonic."
_S2, _ST = "obliviate.stats.xǁ", "obliviate.stats.x_"
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
    f"{_C}required_strength__mutmut_1": "not equivalent, harmless for the registered models: "
    "for inputs with zero-width features (a model without a penultimate feature) it returns 0.0 "
    "where the original returns the largest gap over the drop (the drop is the bias's 1.0 per "
    "unit; a sample 3.0 nats above its kept class with margin 2.0 needs 5.0); with no input "
    "both return 0.0. It survives because no registered model has zero features, so no test "
    "can build such inputs through a model",
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
    **{f"{_F}{i}": _GPU for i in (44, 92)},
    **{f"{_F}{i}": "differs only on a GPU: torch.cuda.synchronize(None) waits for the current "
       "CUDA device, not the one given (the same unless device is cuda:N, N not current); on "
       "the CPU this line is not reached" for i in (113, 125)},
    **{f"{_F}{i}": "differs only on a GPU: the synchronize around unlearn() is skipped, so "
       "`seconds` could leave out GPU work still queued; on the CPU, where the tests run, the "
       "branch is skipped either way" for i in (111, 112, 123, 124)},
    f"{_F}105": "equivalent on the CPU: torch.manual_seed(seed) seeds the same CPU generator "
    "(and CUDA's, the milliseconds the branch saves), so the method draws the same numbers; "
    "on a GPU it would leave CUDA's generator unseeded, which the CPU tests cannot see",
    **{f"{_F}{i}": "equivalent in result: torch.manual_seed(seed) seeds the CPU generator as "
       "well as CUDA's; the branch only saves the milliseconds of seeding the others"
       for i in (106, 107)},
    f"{_F}109": "reached only on a GPU (on the CPU the line above seeds); the tests run on the CPU",
    **{f"{_F}{i}": "changes only the word after 'known:' in the error for a method without "
       "hyperparameters, and every registered method has some (the '(none)' is for a method "
       "registered by the user)" for i in (20, 21)},
    f"{_F}186": "equivalent: it copies a model the method made new as well; the copy is equal "
    "and shares nothing with the input, so only the time of a copy is lost",
    f"{_F}49": "equivalent: weights_sha256 reuses a remembered digest only when reuse is true, "
    "and None is false like False",
    **{f"{_K}load__mutmut_{i}": "equivalent: load builds the model just before, and "
       "weights_sha256 remembers digests per model object, so this new model has none to reuse: "
       "the digest is computed afresh either way" for i in (219, 221, 222)},
    **{f"{_K}load__mutmut_{i}": "changes only the words of the warning logged for stale "
       "statistics (the file named as None, or the format string); "
       "test_other_weights_written_into_the_file_are_found_on_load reads the reason in it, not "
       "the path" for i in (224, 229)},
    **{name: "killed by tests/test_class_names.py (the class names a model file and a forget "
       "record carry), which is outside the fast selection because its CLI tests take ~10 s "
       "each; checked by hand: each of these mutants fails it, the source passes it"
       for name in (f"{_K}load__mutmut_267", f"{_K}load__mutmut_281", f"{_F}217", f"{_F}219",
                    f"{_F}220")},
    f"{_C}data_check__mutmut_54": "equivalent: the kept-side check runs only with kept samples, "
    "so there are kept classes and retain is never empty there",
    **{f"{_S2}OutputSummaryǁ{f}__mutmut_{i}": f'equivalent: float("{s}") is float("{s.lower()}")'
       for f, i, s in (("__init__", 9, "-INF"), ("add", 11, "INF"))},
    f"{_ST}transport__mutmut_6": "unreachable: transport's one caller, the deep forget, runs "
    "only with layer statistics, so the None it starts from is always replaced",
    f"{_ST}transport__mutmut_10": "equivalent: the copy's margin_quantiles and confusion are "
    "replaced, not written in place, so the input's layer statistics stay as they were; the "
    "tensors both share are only read (api.forget's without() deep-copies before clearing)",
    # deep.py
    **{f"{_D}x_layer_inputs__mutmut_{i}": _GPU for i in (44, 48)},
    **{f"{_D}xǁ_Accumulatorǁadd__mutmut_{i}": _GPU for i in (9, 13, 18, 22, 26, 29)},
    **{f"{_D}x__inverse_times__mutmut_{i}": _GPU for i in (21, 24)},
    f"{_D}xǁFeatureLayerǁfeature_bound__mutmut_2": "equivalent: Tensor.to(None) returns the "
    "slopes unconverted, and they are already what the bound is: redirect computes the channel "
    "bound in float32 on the CPU, and every registered feature layer's slopes are float32 on "
    "the CPU (resnet18 moves them there)",
    f"{_D}xǁFeatureLayerǁfeature_bound__mutmut_8": "equivalent: the bound is [C, out], so "
    "dim=+1 is dim=-1",
    f"{_D}x_layer_inputs__mutmut_34": "unreachable: check_layer, which every caller runs first "
    "(record_layer_statistics, redirect), refuses any other module with its own message",
    **{f"{_D}x_layer_inputs__mutmut_{i}": "equivalent: the ones column is made float32 instead of "
       "the rows' dtype, torch.cat promotes it to the rows' dtype, and 1.0 is exact in every "
       "float dtype" for i in (43, 47)},
    f"{_D}xǁLayerStatisticsǁfrom_tensors__mutmut_11": "equivalent: class_mean is [C, d] (its "
    "shape is checked just below), so shape[+1] is shape[-1]",
    f"{_D}xǁLayerStatisticsǁfrom_tensors__mutmut_59": 'equivalent: float("-INF") is '
    'float("-inf")',
    **{f"{_D}xǁLayerStatisticsǁwithout__mutmut_{i}": "equivalent: torch.tensor of Python ints "
       "is int64 already" for i in (3, 5)},
    f"{_D}xǁLayerStatisticsǁwithout__mutmut_25": 'equivalent: float("INF") is float("inf")',
    **{f"{_D}xǁ_Accumulatorǁ__init____mutmut_{i}": "equivalent: add() sets moment and counts "
       "on its first call (it tests sums for None) and nothing reads them before"
       for i in (2, 3)},
    **{f"{_D}xǁ_Accumulatorǁadd__mutmut_{i}": "equivalent below 2^24 training inputs per class: "
       "the counts are kept in float32 instead of float64, and float32 holds every integer up "
       "to 16,777,216 exactly (the means divide float64 sums by them)" for i in (25, 28)},
    f"{_D}x__inverse_times__mutmut_7": "equivalent for any real training set: n is the number of "
    "layer inputs (samples times positions), so max(n, 1) and max(n, 2) differ only for a "
    "single training input",
    f"{_D}x__inverse_times__mutmut_9": "equivalent: the second moment is square",
    **{f"{_D}x__inverse_times__mutmut_{i}": "equivalent: the identity is made float32 instead of "
       "float64; its 0s and 1s are exact, and the sum with the float64 moment is float64"
       for i in (20, 23)},
    f"{_D}x_redirect__mutmut_49": "differs only for a kept class whose mixture weight is exactly "
    "0.01 (a float64 softmax value): the record then lists it or not; the edit is the same",
    f"{_D}x_retain_drop_bound__mutmut_19": "equivalent: at_risk is capped by min(1.0, at_risk) "
    "where it is used, so 1.0 and 2.0 give the same",
    f"{_D}x_retain_drop_bound__mutmut_48": "equivalent: at_risk is at most 1 (i/QUANTILES with "
    "i <= QUANTILES, or 1.0), so min(2.0, at_risk) is min(1.0, at_risk)",
    # mnemonic.py's verification path
    **{f"{_M}xǁ_GivenDataǁof__mutmut_{i}": _GPU for i in (6, 23)},
    **{f"{_M}xǁMnemonicForgettingǁ_head_step__mutmut_{i}": _GPU for i in (149, 151)},
    f"{_M}xǁMnemonicForgettingǁ_deep__mutmut_80": _GPU,
    f"{_M}xǁ_GivenDataǁof__mutmut_34": "equivalent in value: when the judge is the model, its "
    "features are computed again instead of reused (the same numbers, one more pass)",
    f"{_M}xǁMnemonicForgettingǁ_head_step__mutmut_57": "equivalent: bounds is read only under "
    "the training-statistics check, which exists only when stats is given, and then bounds "
    "is set to the per-class list first",
    f"{_M}xǁMnemonicForgettingǁ_head_step__mutmut_185": "differs only when the codes' largest "
    "margin after the step is exactly -margin + 1e-4 (the 1e-4 is already a tolerance for "
    "float32 rounding); no test can aim at that float",
    f"{_M}xǁMnemonicForgettingǁ_calibrated__mutmut_1": "equivalent: deep_note is read only as "
    "`deep_note or 'output only requested'`, and every path that has something to say sets "
    "it; '' and None are both falsy",
    f"{_M}xǁMnemonicForgettingǁ_deep__mutmut_129": "equivalent: _deep passes the edited copy "
    "as the model, so `model is original` is false with either original (the kept codes' "
    "check is skipped after a feature edit either way)",
    f"{_M}xǁMnemonicForgettingǁ_deep__mutmut_136": "unreachable in _deep: the carried "
    "statistics always exist there (the deep forget needs them), so the verdict has the "
    "training-statistics check or, when their bound is infinite and data are given, the data "
    "check; no_stats is used only when it has neither",
    **{f"{_M}xǁMnemonicForgettingǁ_{f}__mutmut_{i}": "changes only the wording of the audit "
       "record's scope (what the forget changed); the tests read its start and that the "
       "output-only scope says the features are unchanged, not every word"
       for f, i in (("calibrated", 108), ("deep", 161), ("deep", 162))},
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


def generate() -> None:
    """mutmut's mutated copy of the source in mutants/ (what ``mutmut run`` does first), without
    its test runs: a file is mutated again only when its source is newer, and a function whose
    source changed has its mutants' verdicts reset (mutmut keeps a hash per function)."""
    code = """
import os
from mutmut.__main__ import create_mutants
from mutmut.mutation.trampoline import set_mutant_under_test
from mutmut.utils.file_utils import copy_also_copy_files, copy_src_dir, setup_source_paths
os.makedirs("mutants", exist_ok=True)
set_mutant_under_test("mutant_generation")
copy_src_dir(); copy_also_copy_files(); setup_source_paths()
print(create_mutants(1))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])


def test_selection() -> list[str]:
    """mutmut's fast test selection (pyproject.toml, [tool.mutmut])."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return config["pytest_add_cli_args_test_selection"]


#: The child of pytest_scan: one pytest session over the selection whose run loop is replaced.
_PYTEST_SCAN = r"""
import json, os, signal, sys, time
cfg = json.load(open(sys.argv[1]))
sys.path = [cfg["root"] + "/mutants/src"] + [
    p for p in sys.path if os.path.realpath(p or ".") != cfg["root"] + "/src"]
os.environ["MUTANT_UNDER_TEST"] = "none"
import pytest
from _pytest.runner import runtestprotocol
from mutmut.state import state
import obliviate
assert "mutants" in obliviate.__file__, obliviate.__file__
log = open(cfg["log"], "a", buffering=1)
todo = cfg["mutants"]  # mutant -> its function, as mutmut's trampolines record a call
status, excluded, hits, seconds, killed_by = {}, [], {}, {}, {}

class Timeout(BaseException):
    pass

class Parent:
    # stands for "the next item" in a teardown: the item's own fixtures go, its module's and
    # the session's stay (built once, by the unmutated code)
    def __init__(self, item):
        self.chain = item.listchain()[:-1]
    def listchain(self):
        return self.chain

def run(item, mutant, limit=None, nextitem=0):
    os.environ["MUTANT_UNDER_TEST"] = mutant
    fired = []
    def alarm(*_):
        fired.append(True)
        raise Timeout(f"over {limit:.0f} s")
    if limit:
        signal.signal(signal.SIGALRM, alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        reports = runtestprotocol(item, log=False,
                                  nextitem=Parent(item) if nextitem == 0 else nextitem)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        os.environ["MUTANT_UNDER_TEST"] = "none"
    if fired:
        return "timeout", time.perf_counter() - start
    failed = [r.longreprtext[-1500:] for r in reports if r.failed]
    if failed and mutant in ("none", "stats"):
        print(f"  {item.nodeid} fails without a mutant:\n{failed[0]}", file=log)
    return ("failed" if failed else "passed"), time.perf_counter() - start

class Scan:
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        items = session.items
        start = time.perf_counter()
        for i, item in enumerate(items):  # the clean pass: which functions each test calls
            state()._stats.clear()
            following = items[i + 1] if i + 1 < len(items) else None
            outcome, took = run(item, "stats", nextitem=following)
            if outcome != "passed":
                excluded.append(item.nodeid)
            else:
                hits[item.nodeid] = set(state()._stats)
                seconds[item.nodeid] = took
        print(f"clean pass {time.perf_counter() - start:.0f} s, {len(items)} tests, "
              f"excluded (fail without a mutant): {excluded}", file=log)
        by_module = {}
        for item in items:
            if item.nodeid in hits:
                by_module.setdefault(item.module.__name__, []).append(item)
        order = [it for group in by_module.values()
                 for it in sorted(group, key=lambda it: seconds[it.nodeid])]
        for n, item in enumerate(order):
            mutants = [m for m, f in todo.items() if m not in status and f in hits[item.nodeid]]
            if mutants:
                outcome, took = run(item, "none")  # sets the module up, unmutated
                if outcome != "passed":  # an earlier mutant changed a fixture in place
                    print(f"  rebuilt the fixtures before {item.nodeid}", file=log)
                    session._setupstate.teardown_exact(None)
                    outcome, took = run(item, "none")
                if outcome != "passed":
                    excluded.append(item.nodeid)
                    mutants = []
                limit = 20 * took + 20
            for m in mutants:
                outcome, took = run(item, m, limit)
                if took > 5:
                    print(f"  {m}: {outcome} in {took:.0f} s", file=log)
                if outcome == "passed":
                    continue
                if run(item, "none")[0] != "passed":  # a fixture was changed in place
                    print(f"  after {m}: rebuilt the fixtures", file=log)
                    session._setupstate.teardown_exact(None)
                    if run(item, "none")[0] != "passed":
                        raise RuntimeError(f"{item.nodeid} fails on rebuilt fixtures")
                    outcome, _ = run(item, m, limit)  # judged on fresh fixtures
                    if run(item, "none")[0] != "passed":  # this mutant changes them
                        session._setupstate.teardown_exact(None)
                        if run(item, "none")[0] != "passed":
                            raise RuntimeError(f"{item.nodeid} fails on rebuilt fixtures")
                    if outcome == "passed":
                        continue
                status[m] = "timeout" if outcome == "timeout" else "killed"
                killed_by[m] = item.nodeid
            session._setupstate.teardown_exact(order[n + 1] if n + 1 < len(order) else None)
            if mutants:  # the kills so far, should the run be stopped
                save()
            print(f"{time.perf_counter() - start:.0f} s: {item.nodeid}: {len(mutants)} run, "
                  f"{len(status)} of {len(todo)} killed", file=log)
        for m, f in todo.items():
            if m not in status:
                called = any(f in h for h in hits.values())
                status[m] = "survived" if called else "no tests"
        return True

# native tracebacks: pytest's own parse the (huge) mutated module for every frame
def save():
    with open(cfg["out"] + ".tmp", "w") as fh:
        json.dump({"status": status, "excluded": excluded, "tests": len(hits) + len(excluded),
                   "killed_by": killed_by}, fh)
    os.replace(cfg["out"] + ".tmp", cfg["out"])

code = pytest.main(["-q", "-p", "no:cacheprovider", "--tb=native", *cfg["tests"]],
                   plugins=[Scan()])
save()
"""


def pytest_scan(names: list[str], tests: list[str] | None = None) -> dict:
    """``names`` (mutmut mutants) against mutmut's fast test selection, in one pytest process:
    a clean pass records which mutated functions each test calls (mutmut's trampolines, as
    mutmut's own 'stats' run), then each test is run again under every mutant of a function it
    calls and not killed yet. The session's and the modules' fixtures are built once, by the
    unmutated code (a test is rerun clean after a kill, and the fixtures rebuilt if the mutant
    changed one in place), so a mutant that only a fixture's construction would reveal
    survives here: a lower bound of mutmut's kills, which rebuilds them per mutant. A test that
    fails without a mutant is left out (reported). Returns {"status": {mutant: status},
    "excluded": [...], "tests": n, "killed_by": {mutant: test}}; ``tests`` replaces the
    selection."""
    todo = {name: name.rsplit("__mutmut_", 1)[0] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "cfg.json"
        out = Path(tmp) / "out.json"
        cfg.write_text(json.dumps({"root": str(ROOT), "mutants": todo,
                                   "tests": tests or test_selection(),
                                   "log": str(ROOT / "mutants" / "pytest-scan.log"),
                                   "out": str(out)}))  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OBLIVIATE_NO_PROGRESS": "1"}
        proc = subprocess.run([sys.executable, "-c", _PYTEST_SCAN, str(cfg)], cwd=ROOT, env=env,
                              capture_output=True, text=True)  # fmt: skip
        result = json.loads(out.read_text()) if out.exists() else {"status": {}, "excluded": [],
                                                                   "tests": 0}  # fmt: skip
        if proc.returncode != 0 or len(result["status"]) < len(names):
            result["error"] = proc.stdout[-3000:] + proc.stderr[-3000:]
        return result


SCAN_CACHE = ROOT / "mutants" / "pytest-scan.json"


def _function_hashes() -> dict[str, str]:
    """mutmut's hash of each mutated function's source, by the qualified name its mutants
    start with (``obliviate.deep.x_redirect``)."""
    out = {}
    for meta_file, prefixes in GROUPS.values():
        module = "obliviate." + meta_file.removesuffix(".py").replace("/", ".")
        for function, digest in _meta(meta_file)["hash_by_function_name"].items():
            out[f"{module}.{function}"] = digest
    return out


def pytest_scan_cached(again: bool = False, killed: set[str] | None = None) -> dict:
    """pytest_scan on the mutants (of every group, less those in ``killed``: the unit scans'
    kills) that it has no verdict for (none yet, or their function's source changed since;
    with ``again`` the survivors too), the verdicts kept in mutants/pytest-scan.json with the
    function's hash, the time and the commit."""
    cache = json.loads(SCAN_CACHE.read_text()) if SCAN_CACHE.exists() else {"mutants": {}}
    hashes = _function_hashes()
    names = [name for label in GROUPS for name in _group_names(label)
             if name not in (killed or set())]  # fmt: skip
    todo = []
    for name in names:
        status, digest = cache["mutants"].get(name, (None, None))
        if digest != hashes.get(name.rsplit("__mutmut_", 1)[0]) or status is None or (
                again and status in ("survived", "no tests")):
            todo.append(name)
    if todo:
        start = datetime.datetime.now()
        result = pytest_scan(todo)
        for name, status in result["status"].items():
            cache["mutants"][name] = [status, hashes.get(name.rsplit("__mutmut_", 1)[0])]
        cache.setdefault("killed_by", {}).update(result.get("killed_by", {}))
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "src", "tests"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        cache["runs"] = cache.get("runs", []) + [{
            "started": start.isoformat(timespec="seconds"),
            "minutes": round((datetime.datetime.now() - start).total_seconds() / 60, 1),
            "mutants": len(todo), "tests": result["tests"], "excluded": result["excluded"],
            "commit": head + (" with uncommitted changes" if dirty else "")}]
        SCAN_CACHE.write_text(json.dumps(cache, indent=1, ensure_ascii=False))
        if "error" in result:  # the kills it saw are kept; the rest are run next time
            raise RuntimeError("the pytest scan stopped early:\n" + result["error"])
    return cache


def pytest_scan_results(cache: dict | None) -> dict[str, dict[str, str]]:
    """Per group, mutant -> the scan's status for the current source (a mutant whose function
    changed since the scan, or that the scan was not given, is 'not checked')."""
    hashes = _function_hashes()
    out = {}
    for label in GROUPS:
        out[label] = {}
        for name in _group_names(label):
            status, digest = ((cache or {}).get("mutants", {})).get(name, (None, None))
            fresh = status is not None and digest == hashes.get(name.rsplit("__mutmut_", 1)[0])
            out[label][name] = status if fresh else "not checked"
    return out


def _group_names(label: str) -> list[str]:
    meta_file, prefixes = GROUPS[label]
    return [name for name in _meta(meta_file)["exit_code_by_key"]
            if name.startswith(tuple(prefixes))]  # fmt: skip


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


def _scan_note(scan: dict | None) -> str:
    """When the pytest scan ran, on which commit, how long, and the tests it left out."""
    runs = (scan or {}).get("runs", [])
    if not runs:
        return "The pytest scan has not run yet."
    parts = []
    for run in runs:
        left_out = (f"; left out, failing without a mutant: {', '.join(run['excluded'])}"
                    if run["excluded"] else "")  # fmt: skip
        parts.append(f"{run['started']}, on {run['commit']}: {run['mutants']} mutants against "
                     f"{run['tests']} tests in {run['minutes']:g} minutes{left_out}")
    return ("Its runs (each reruns only the mutants without a verdict for the current source, "
            "or with `--again` the survivors too): " + "; ".join(parts) + ".")


def write_page(by_group: dict[str, dict[str, str]], quick: dict[str, dict[str, str]] | None,
               verdict: tuple[bool, str] | None, scope: dict | None = None,
               scan: dict | None = None) -> str:  # fmt: skip
    version = subprocess.run([str(MUTMUT), "--version"], capture_output=True, text=True).stdout
    scope = scope or {}
    both = combined(by_group, quick)
    checked = sum(s != "not checked" for statuses in by_group.values() for s in statuses.values())
    total = sum(len(statuses) for statuses in by_group.values())
    if checked == total:
        run_note = (f"mutmut checked all {total} mutants of the core (`mutants/` keeps its "
                    "verdicts, so the run may take several sittings).")
    elif checked == 0:
        run_note = (f"mutmut has checked none of the {total} mutants of the source as it is now "
                    "(a function whose source changed has its verdicts reset): the combined "
                    "table is the quick runs' verdict.")
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
        "Covered: calibration.py, stats.py and deep.py (every function mutmut mutates); "
        "checkpoint.py's validation (load, read_safetensors and the _checked_*/_sane_setting/"
        "_int_or/_dict_or_empty helpers); api.forget (its record and refusal path); the "
        "verification path of methods/mnemonic.py (_verdict, _no_statistics, "
        "_deep_unavailable, MnemonicForgetting._calibrated, ._deep and ._head_step, "
        "_GivenData.of and .check: the checks, the strengths and the bounds; mutmut 3.8.1 "
        "mutates the methods of a class under a class decorator such as "
        "`@METHODS.register(\"mnemonic\")`, and classmethods such as `_GivenData.of`); and "
        "one hand-made `_verdict` mutant that reports every check as passed.",
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
        "## Quick runs: the same mutants in one process, without a fork per mutant",
        "",
        "`scripts/mutation.py --quick` does both, in two steps; a mutant either kills counts "
        "as killed, so these scores are lower bounds of mutmut's.",
        "",
        "1. *Unit scans*: the mutants switched through mutmut's trampolines and the unit tests "
        "of their module called directly (no pytest): calibration.py's and stats.py's against "
        "tests/unit/test_calibration_math.py and tests/unit/test_stats.py, checkpoint.py's "
        "validation against the cases of tests/unit/test_load_validation.py (each edited file "
        "must raise its message; the clean, the pared-down and a forgotten model's files must "
        "load intact), api.forget's against tests/unit/test_forget_record.py.",
        "2. *pytest scan*: every mutant the unit scans left alive, and all of deep.py's and of "
        "the mnemonic.py verification path, against mutmut's whole fast selection in one "
        "pytest process: a clean pass records which mutated functions each test calls (through "
        "mutmut's trampolines, as mutmut's own stats run), then each test is run again under "
        "every mutant of a function it calls that no earlier test killed, with a time limit (20 "
        "times the test's clean time, plus 20 s; over it counts as a timeout). The session's "
        "and the modules' fixtures are built once, by the unmutated code (after a kill the test "
        "is rerun clean, and the fixtures rebuilt and the mutant judged again if it had changed "
        "one in place), so a mutant that only a fixture's construction would reveal survives "
        "here, where mutmut, which rebuilds them per mutant, may kill it. A test that fails "
        "without a mutant is left out. " + _scan_note(scan),
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


def merged_quick(unit: dict[str, dict[str, str]],
                 scan: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per group and mutant, the quick runs' verdict: killed when the unit scan killed it,
    else the pytest scan's."""
    out = {}
    for label, statuses in scan.items():
        first = unit.get(label, {})
        out[label] = {name: "killed" if first.get(name) == "killed" else
                      status if status != "not checked" else first.get(name, status)
                      for name, status in statuses.items()}  # fmt: skip
    return out


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
    if full or args.quick:
        generate()  # mutants/ as the source is now (only what changed is redone)
    if args.quick or (full and not (args.keep_quick and quick_cache.exists())):
        unit = quick_scan()
        unit["checkpoint.py validation"] = quick_scan_checkpoint()
        unit["api.forget"] = quick_scan_forget()
        quick_cache.write_text(json.dumps(unit))
        pytest_scan_cached(args.again, {n for statuses in unit.values()
                                        for n, s in statuses.items() if s == "killed"})
    unit = json.loads(quick_cache.read_text()) if quick_cache.exists() else {}
    scan = json.loads(SCAN_CACHE.read_text()) if SCAN_CACHE.exists() else None
    quick = merged_quick(unit, pytest_scan_results(scan))
    if full:
        among = None
        if args.quick_survivors:
            among = {n for statuses in quick.values() for n, s in statuses.items()
                     if s not in ("killed", "timeout")}  # fmt: skip
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
    OUT.write_text(write_page(results(), quick, verdict, run_scope, scan))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
