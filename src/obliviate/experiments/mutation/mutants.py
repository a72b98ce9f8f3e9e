"""Running mutmut and reading its results: the core's mutant groups, mutmut's mutated copy of
the source (mutants/), the mutants it has not checked, its verdicts, and a mutant's diff."""

from __future__ import annotations

import difflib
import fnmatch
import json
import os
import signal
import subprocess
import sys
from pathlib import Path


def _checkout() -> Path:
    """The repository root: the checkout this package is installed from (an editable install,
    src/obliviate/experiments/mutation/ under it), else the current directory, whichever holds
    pyproject.toml with [tool.mutmut]; the current directory when neither does (main refuses)."""
    for root in (Path(__file__).resolve().parents[4], Path.cwd()):
        pyproject = root / "pyproject.toml"
        if pyproject.is_file() and "[tool.mutmut]" in pyproject.read_text():
            return root
    return Path.cwd()


ROOT = _checkout()
MUTMUT = Path(sys.executable).with_name("mutmut")


def check_checkout() -> None:
    """Exit with a clear message unless ROOT is a checkout of obliviate (mutants/, tests/ and
    pyproject.toml's [tool.mutmut] are read and written there)."""
    pyproject = ROOT / "pyproject.toml"
    if not (pyproject.is_file() and "[tool.mutmut]" in pyproject.read_text()
            and (ROOT / "src" / "obliviate").is_dir()):
        sys.exit("mutation testing runs in a checkout of obliviate: run it from the repository "
                 f"root (no pyproject.toml with [tool.mutmut] and src/obliviate in {ROOT})")


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
            "x__no_statistics", "x__deep_unavailable", "xǁMnemonicForgettingǁ_head_step",
            "xǁMnemonicForgettingǁ_deep", "xǁMnemonicForgettingǁ_calibrated")]),
    "mnemonic_checks.py": ("methods/mnemonic_checks.py", [
        "obliviate.methods.mnemonic_checks.x_verdict__mutmut_",
        "obliviate.methods.mnemonic_checks.xǁGivenDataǁof__mutmut_",
        "obliviate.methods.mnemonic_checks.xǁGivenDataǁcheck__mutmut_"]),
}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not checked",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", 34: "skipped", 37: "caught by type check"}


def patterns() -> list[str]:
    return [prefix + "*" for _, prefixes in GROUPS.values() for prefix in prefixes]


def read_meta(meta_file: str) -> dict:
    return json.loads((ROOT / "mutants" / "src" / "obliviate" / f"{meta_file}.meta").read_text())


def unchecked(only: list[str] | None = None, among: set[str] | None = None,
              again: bool = False) -> list[str]:
    """The core's mutants (or those matching ``only``) that mutmut has not checked yet (or,
    with ``again``, that survived it), in ``among`` when given. mutmut reruns every mutant it
    is named, so naming only these makes an interrupted run resume."""
    names = []
    for meta_file in sorted({meta_file for meta_file, _ in GROUPS.values()}):
        for name, code in read_meta(meta_file)["exit_code_by_key"].items():
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
        meta = read_meta(meta_file)
        out[label] = {
            name: STATUS.get(code, "suspicious")
            for name, code in meta["exit_code_by_key"].items()
            if any(name.startswith(p) for p in prefixes)
        }
    return out


def group_names(label: str) -> list[str]:
    meta_file, prefixes = GROUPS[label]
    return [name for name in read_meta(meta_file)["exit_code_by_key"]
            if name.startswith(tuple(prefixes))]  # fmt: skip


def function_hashes() -> dict[str, str]:
    """mutmut's hash of each mutated function's source, by the qualified name its mutants
    start with (``obliviate.deep.x_redirect``)."""
    out = {}
    for meta_file, prefixes in GROUPS.values():
        module = "obliviate." + meta_file.removesuffix(".py").replace("/", ".")
        for function, digest in read_meta(meta_file)["hash_by_function_name"].items():
            out[f"{module}.{function}"] = digest
    return out


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
