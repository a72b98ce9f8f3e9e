"""docs/results/mutation.md: the scores per group (mutmut's, the quick runs', both combined), the
_verdict mutant and the surviving mutants with their diffs and why each is left alive."""

from __future__ import annotations

import subprocess
from collections import Counter

from obliviate.experiments.mutation.mutants import MUTMUT, ROOT, show
from obliviate.experiments.mutation.survivors import explain

OUT = ROOT / "docs" / "results" / "mutation.md"
TARGETS = {"calibration.py": 85.0, "stats.py": 85.0, "checkpoint.py validation": 70.0,
           "deep.py": 85.0, "mnemonic.py verification": 85.0}
NOT_MUTATED = ["calibration.apply_head (decorated with @torch.no_grad())",
               "stats.record_statistics (decorated with @torch.no_grad())",
               "deep.record_layer_statistics and deep.apply_edit (decorated with "
               "@torch.no_grad()); deep.py's dataclasses' generated methods (no source)",
               "mnemonic.py: the properties _GivenData.any and _GivenData.retain_any (decorated "
               "with @property); the rest of mnemonic.py (paper mode, the noise, the "
               "constructor, unlearn) is mutated by mutmut but outside this group"]


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
    version = subprocess.run([str(MUTMUT), "--version"], capture_output=True, text=True,
                             cwd=ROOT).stdout  # mutmut reads its settings from the cwd
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
