"""The pytest scan: mutants against mutmut's whole fast test selection in one pytest process
(each test rerun under every mutant of a function it calls), its verdicts kept in
mutants/pytest-scan.json; and the quick runs' verdict, the unit scans' and the scan's merged."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from obliviate.experiments.mutation.mutants import (
    GROUPS,
    ROOT,
    function_hashes,
    group_names,
    test_selection,
)

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


def pytest_scan_cached(again: bool = False, killed: set[str] | None = None) -> dict:
    """pytest_scan on the mutants (of every group, less those in ``killed``: the unit scans'
    kills) that it has no verdict for (none yet, or their function's source changed since;
    with ``again`` the survivors too), the verdicts kept in mutants/pytest-scan.json with the
    function's hash, the time and the commit."""
    cache = json.loads(SCAN_CACHE.read_text()) if SCAN_CACHE.exists() else {"mutants": {}}
    hashes = function_hashes()
    names = [name for label in GROUPS for name in group_names(label)
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
    hashes = function_hashes()
    out = {}
    for label in GROUPS:
        out[label] = {}
        for name in group_names(label):
            status, digest = ((cache or {}).get("mutants", {})).get(name, (None, None))
            fresh = status is not None and digest == hashes.get(name.rsplit("__mutmut_", 1)[0])
            out[label][name] = status if fresh else "not checked"
    return out


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
