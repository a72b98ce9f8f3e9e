"""Mutation testing of obliviate's core with mutmut; writes docs/results/mutation.md.

    .venv/bin/pip install mutmut==3.8.1                                 # once
    OMP_NUM_THREADS=1 .venv/bin/python scripts/mutation.py --quick-survivors   # run, write the page
    .venv/bin/python scripts/mutation.py --quick                        # the quick runs only
    .venv/bin/python scripts/mutation.py --report-only                  # rewrite the page only
    .venv/bin/python -m obliviate.experiments mutation --report-only    # the same

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
* the verification path of methods/mnemonic.py and methods/mnemonic_checks.py: _no_statistics,
  _deep_unavailable, MnemonicForgetting._calibrated, ._deep and ._head_step, and verdict,
  GivenData.of and .check (the checks, the strengths and the bounds; the page's committed
  survivors were named before verdict and GivenData moved out of mnemonic.py). mutmut 3.8.1 mutates the methods of a class under a
  class decorator (``@METHODS.register("mnemonic")``: the decorator is kept, the methods get
  trampolines) and classmethods; it generates mutants for the whole file (~1100), but only
  these functions' are run (GROUPS names them by prefix);
* mnemonic_checks.verdict, also by one hand-made mutant: a verdict that reports every check as
  passed. It is applied to a copy of the source and tests/methods/test_verification.py is run
  against it; the page says whether it fails (the mutant is killed).

mutmut 3 leaves decorated functions alone (here the ``@torch.no_grad()`` ones:
calibration.apply_head, stats.record_statistics, deep.record_layer_statistics and
deep.apply_edit; the ``@property`` ones), so they are outside the score; the page lists them.

Run from the repository root of a checkout (ROOT: the checkout the package is installed from,
else the current directory). The modules: :mod:`.mutants` (mutmut: its mutated copy, its runs,
its verdicts), :mod:`.quick` (the unit scans and the verdict mutant), :mod:`.pytest_scan`,
:mod:`.survivors` (why each survivor is left alive) and :mod:`.page`. mutmut itself is imported
only by the child processes they start.
"""

from __future__ import annotations

import argparse
import json

from obliviate.experiments.mutation.mutants import (
    ROOT,
    check_checkout,
    generate,
    results,
    run_mutmut,
    unchecked,
)
from obliviate.experiments.mutation.page import OUT, write_page
from obliviate.experiments.mutation.pytest_scan import (
    SCAN_CACHE,
    merged_quick,
    pytest_scan_cached,
    pytest_scan_results,
)
from obliviate.experiments.mutation.quick import (
    quick_scan,
    quick_scan_checkpoint,
    quick_scan_forget,
    verdict_mutant,
)


def main(argv: list[str] | None = None) -> None:
    """The command line (``argv``, else sys.argv's)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the page (from mutmut's results and the last run of "
                             "the verdict mutant)")  # fmt: skip
    parser.add_argument("--verdict-only", action="store_true",
                        help="only run the hand-made verdict mutant, then rewrite the page")
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
    args = parser.parse_args(argv)
    check_checkout()
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

