"""Mutation testing of obliviate's core with mutmut; writes docs/results/mutation.md.

    .venv/bin/pip install mutmut            # once (3.8.1 was used)
    OMP_NUM_THREADS=1 .venv/bin/python scripts/mutation.py            # run, then write the page
    .venv/bin/python scripts/mutation.py --report-only                 # rewrite the page only

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
import json
import os
import shutil
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
EXPLANATIONS: dict[str, str] = {}

STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", None: "not checked",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          -11: "segfault", -9: "segfault", 34: "skipped", 37: "caught by type check"}


def patterns() -> list[str]:
    return [prefix + "*" for _, prefixes in GROUPS.values() for prefix in prefixes]


def run_mutmut(max_children: int, only: list[str] | None = None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([str(MUTMUT), "run", "--max-children", str(max_children),
                    *(only or patterns())], cwd=ROOT, env=env, check=True)  # fmt: skip


def results() -> dict[str, dict[str, str]]:
    """Per group, mutant name -> status."""
    out = {}
    for label, (meta_file, prefixes) in GROUPS.items():
        meta = json.loads((ROOT / "mutants" / "src" / "obliviate" / f"{meta_file}.meta").read_text())
        out[label] = {
            name: STATUS.get(code, "suspicious")
            for name, code in meta["exit_code_by_key"].items()
            if any(name.startswith(p) for p in prefixes)
        }
    return out


def show(name: str) -> str:
    proc = subprocess.run([str(MUTMUT), "show", name], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("+", "-"))
             and not line.startswith(("+++", "---"))]  # fmt: skip
    return "\n".join(lines) or proc.stdout.strip()


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


def write_page(by_group: dict[str, dict[str, str]], verdict: tuple[bool, str] | None) -> str:
    lines = [
        "# Mutation testing of the core",
        "",
        "Made by `scripts/mutation.py` (mutmut "
        + subprocess.run([str(MUTMUT), "--version"], capture_output=True, text=True).stdout.split()[-1]
        + ", settings and the fast test selection in `pyproject.toml` under `[tool.mutmut]`).",
        "Score = killed / (killed + survived + no tests); timeouts count as killed, and are "
        "shown. A mutant not yet checked is listed as such and is not in the score.",
        "",
        "| Module | mutants | killed | timeout | survived | no tests | not checked | score | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    survivors = []
    for label, statuses in by_group.items():
        count = Counter(statuses.values())
        killed = count["killed"] + count["timeout"]
        judged = killed + count["survived"] + count["no tests"] + count["suspicious"]
        score = 100.0 * killed / judged if judged else float("nan")
        target = TARGETS.get(label)
        lines.append(
            f"| {label} | {len(statuses)} | {count['killed']} | {count['timeout']} | "
            f"{count['survived']} | {count['no tests']} | {count['not checked']} | "
            f"{score:.1f} % | {f'>= {target:g} %' if target else '-'} |"
        )
        survivors += [(label, n) for n, s in statuses.items() if s in ("survived", "no tests",
                                                                        "suspicious")]  # fmt: skip
    lines += ["", "Not mutated (mutmut 3 skips decorated functions): "
              + "; ".join(NOT_MUTATED) + "."]  # fmt: skip
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
    lines += ["", "## Surviving mutants", ""]
    if not survivors:
        lines.append("None.")
    for label, name in survivors:
        reason = EXPLANATIONS.get(name, "**not explained yet**")
        lines += [f"### {name}", "", f"{label}: {reason}", "", "```diff", show(name), "```", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the page (from mutmut's results and the last run of "
                             "the _verdict mutant)")  # fmt: skip
    parser.add_argument("--verdict-only", action="store_true",
                        help="only run the hand-made _verdict mutant, then rewrite the page")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="mutant name patterns (default: the core)")
    args = parser.parse_args()
    if not (args.report_only or args.verdict_only):
        run_mutmut(args.max_children, args.only)
    cache = ROOT / "mutants" / "verdict-mutant.json"  # mutants/ is mutmut's (git-ignored) work
    if args.report_only:
        verdict = tuple(json.loads(cache.read_text())) if cache.exists() else None
    else:
        verdict = verdict_mutant()
        cache.parent.mkdir(exist_ok=True)
        cache.write_text(json.dumps(verdict))
    OUT.write_text(write_page(results(), verdict))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
