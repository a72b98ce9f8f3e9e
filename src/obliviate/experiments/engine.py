"""The experiment engine: a page's rows in a JSONL file, the rows it lacks run in order, the page
written from the rows.

A row is one JSON object on one line of ``RUNS/results.jsonl``, appended the moment it is
measured: a killed run loses at most the row in flight, and a rerun resumes. A planned row is
its *key*, the fields that name it (``{"suite": "fc", "seed": 0, "label": "ssd"}``); it is done
when some row has all of them. Processes that share a device each write
``RUNS/parts/NAME/results.jsonl``, and :func:`merge_parts` gathers their rows.

A results page is a :class:`Page`: a frozen options dataclass (each field a ``--flag``), a
``run`` that plans its rows and says how to measure one, and a ``table`` that writes the page
from the rows. :func:`main` is the command line of every page::

    python scripts/PAGE.py run [--flags]     # the rows RUNS lacks
    python scripts/PAGE.py table             # the page, from RUNS's rows (or --table-only)
    python scripts/PAGE.py [--flags]         # both
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from obliviate.errors import ObliviateError

log = logging.getLogger(__name__.rpartition(".")[0])  # "obliviate.experiments": every page's parent


# -- rows -----------------------------------------------------------------------------------------


def _rows_of(path: Path) -> Iterator[tuple[str, dict]]:
    """(line, row) for every line of ``path`` that holds a JSON object; any other non-blank line
    (most often the torn last line of a process killed while writing) is skipped with a warning:
    its row counts as not done, so a rerun measures it again."""
    if not path.exists():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            log.warning("%s line %d is not a row (a torn write?); skipping it", path, number)
            continue
        yield line, row


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a JSONL file; a missing file has none (see :func:`_rows_of` for bad lines)."""
    return [row for _, row in _rows_of(Path(path))]


def matches(row: dict, key: dict) -> bool:
    """Whether ``row`` has every field of ``key`` (a field it lacks counts as ``None``)."""
    return all(row.get(name) == value for name, value in key.items())


def _ends_torn(path: Path) -> bool:
    """Whether ``path``'s last line lacks its newline (a write cut short)."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def _append_lines(path: Path, lines: Sequence[str]) -> None:
    """Append ``lines`` to ``path``, on a fresh line even after a torn last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torn = _ends_torn(path)
    with path.open("a") as fh:
        fh.write("\n" * torn + "".join(line + "\n" for line in lines))
        fh.flush()


def _rewrite_lines(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` as the whole of ``path`` through a temporary file, so a killed run
    leaves the old file or the new one."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line.rstrip("\n") + "\n" for line in lines))
    tmp.replace(path)


class Results:
    """The rows of one results file, read once and appended to as rows finish."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows = read_rows(self.path)

    def find(self, **key: Any) -> dict | None:
        """The first row that has every field of ``key``, else ``None``."""
        return next((row for row in self.rows if matches(row, key)), None)

    def append(self, row: dict) -> dict:
        """Write ``row`` at the end of the file (flushed) and keep it; returns it."""
        _append_lines(self.path, [json.dumps(row)])
        self.rows.append(row)
        return row

    def replace(self, old: dict, row: dict) -> dict:
        """Put ``row`` in ``old``'s place, in memory and in the file (rewritten whole through a
        temporary file, so a killed run leaves the old file or the new one)."""
        self.rows[self.rows.index(old)] = row
        _rewrite_lines(self.path, (json.dumps(r) for r in self.rows))
        return row


def run_queue(results: Results, plan: Iterable[dict], run_one: Callable[[dict], dict | None], *,
              redo: Callable[[dict], dict | None] | None = None,
              describe: Callable[[dict], str] = json.dumps) -> int:  # fmt: skip
    """Run every planned row that ``results`` lacks, in the plan's order; returns how many ran.

    ``plan`` yields row keys and is read lazily, so a later key may depend on the rows appended
    before it. ``run_one(key)`` measures one row (the key's fields included) and returns it, or
    ``None`` when there is nothing to keep; each row is appended as it finishes and logged with
    ``describe``. ``redo(row)``, for a row already done, may return a row to put in its place
    (measured again); ``None`` keeps it.
    """
    ran = 0
    for key in plan:
        done = results.find(**key)
        if done is None:
            row = run_one(key)
            if row is not None:
                results.append(row)
        elif redo is not None:
            row = redo(done)
            if row is not None:
                results.replace(done, row)
        else:
            row = None
        if row is not None:
            log.info("%s", describe(row))
            ran += 1
    return ran


def merge_parts(runs: str | Path, key: Sequence[str] = (),
                replaces: Callable[[dict, dict], bool] | None = None) -> int:  # fmt: skip
    """Add to ``RUNS/results.jsonl`` the rows of ``RUNS/parts/*/results.jsonl`` it lacks, the
    parts taken in name order; returns how many rows were added or replaced. A row is lacking
    when no row has the same ``key`` fields (a page's :attr:`Page.key`: one row per measured
    thing, the first kept, so a row two parts both measured counts once), or, without ``key``,
    the same JSON line. ``replaces(old, new)`` (a page's :attr:`Page.replaces`), when true for
    a part's row and the kept row of its name, puts the part's row in the kept one's place
    (e.g. the same row measured again with more measures)."""
    runs = Path(runs)
    target = runs / "results.jsonl"

    def name(line: str, row: dict) -> str:
        return json.dumps([row.get(field) for field in key]) if key else line

    kept = [(line, row) for line, row in _rows_of(target)]
    where = {name(line, row): i for i, (line, row) in enumerate(kept)}
    new: list[str] = []
    swapped = 0
    for part in sorted(runs.glob("parts/*/results.jsonl")):
        for line, row in _rows_of(part):
            at = where.get(name(line, row))
            if at is None:
                where[name(line, row)] = len(kept)
                kept.append((line, row))
                new.append(line)
            elif replaces is not None and replaces(kept[at][1], row):
                kept[at] = (line, row)
                swapped += 1
    if swapped:
        _rewrite_lines(target, (line for line, _ in kept))
    else:
        _append_lines(target, new)
    log.info("merged %d new rows into %s, replaced %d", len(new), target, swapped)
    return len(new) + swapped


# -- the page -------------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table's lines: the header, its rule, one line per row. Cells are written as
    given, so the page owns their format."""

    def line(cells: Sequence[object]) -> str:
        return "| " + " | ".join(str(cell) for cell in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def mean_std(values: Iterable[float], spec: str = ".1f", empty: str = "–") -> str:
    """``mean ± std`` of the values that are not NaN; one value alone; ``empty`` when none."""
    values = [v for v in values if v == v]
    if not values:
        return empty
    if len(values) == 1:
        return format(values[0], spec)
    return f"{format(statistics.mean(values), spec)} ± {format(statistics.stdev(values), spec)}"


def splice(text: str, body: str, begin: str, end: str | None = None,
           before: str | None = None) -> str:  # fmt: skip
    """``text`` with its section between the markers ``begin`` and ``end`` replaced by ``body``
    (the markers kept). Without ``end`` the section runs to the end of the page. A page without
    the section gets it before the marker ``before``, else at its end."""
    section = begin + "\n" + body + ("" if end is None else end + "\n")
    if end is None:
        return (text.split(begin, 1)[0] if begin in text else text).rstrip() + "\n\n" + section
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        return head + section + rest.split(end, 1)[1].lstrip("\n")
    if before is not None and before in text:
        head, rest = text.split(before, 1)
        return head.rstrip() + "\n\n" + section + "\n" + before + rest
    return text.rstrip() + "\n\n" + section


def write_page(path: Path, text: str) -> None:
    """Write a page (its folder made) and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    log.info("wrote %s", path)


# -- the command line -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """A results page as a config.

    ``options``: a frozen dataclass, one ``--flag`` per field (:func:`add_options`).
    ``run(options, runs, out)``: measure the rows ``runs/results.jsonl`` lacks
    (:func:`run_queue`). ``table(options, runs, out)``: write the page ``out`` from them.
    ``doc``: what the page measures and the commands that made it (``--help`` prints it).
    ``runs=None``: the page is measured afresh on every call, its rows kept in a temporary
    folder for that call, unless ``--runs`` names one.
    """

    doc: str
    options: type
    run: Callable[[Any, Path, Path | None], None]
    table: Callable[[Any, Path, Path | None], None]
    runs: Path | None
    out: Path | None
    #: the fields that name one row (``--merge-parts`` keeps one row per name); empty: the line
    key: tuple[str, ...] = ()
    #: ``replaces(old, new)``: whether a part's row takes the place of the kept row of its name
    replaces: Callable[[dict, dict], bool] | None = None


def ints(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``: a ``type`` for an option field (:func:`add_options`)."""
    return tuple(int(token) for token in text.split(",") if token)


def names(text: str) -> tuple[str, ...]:
    """``"B,C"`` -> ``("B", "C")``: a ``type`` for an option field (:func:`add_options`)."""
    return tuple(token for token in text.split(",") if token)


def add_options(parser: argparse.ArgumentParser, options: type) -> None:
    """One ``--flag`` per field of the dataclass ``options`` (``data_dir`` -> ``--data-dir``),
    defaulting to the field's default. A bool field is a switch: ``--x`` when it defaults to
    False, ``--x/--no-x`` when to True. Any other field's metadata holds its ``help``,
    ``choices``, ``type`` (else the default's own, for a number or a string), ``action``,
    ``required``, ``nargs``; ``positional: True`` makes it an argument, not a flag."""
    for field in fields(options):
        default = field.default if field.default is not MISSING else field.default_factory()
        flag = "--" + field.name.replace("_", "-")
        extra = dict(field.metadata)
        if extra.pop("positional", False):
            parser.add_argument(field.name, default=default, **extra)
            continue
        if isinstance(default, bool):
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(flag, action=action, default=default, help=extra.get("help"))
            continue
        if "type" not in extra and "action" not in extra and isinstance(default, (int, float, str)):
            extra["type"] = type(default)
        parser.add_argument(flag, default=default, **extra)


class _Stdout(logging.Handler):
    """Each message on its own line of the ``sys.stdout`` of the moment, flushed (a log file
    that a long run writes to shows every row as it finishes)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record) + "\n")
        sys.stdout.flush()


def _log_to_stdout() -> None:
    """The pages' messages go to stdout, as a script's output, and nowhere else."""
    if not any(isinstance(h, _Stdout) for h in log.handlers):
        log.addHandler(_Stdout())
        log.setLevel(logging.INFO)
        log.propagate = False


def _parser(doc: str) -> argparse.ArgumentParser:
    """A parser whose ``--help`` prints ``doc`` as written (the commands that made a page)."""
    return argparse.ArgumentParser(description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def command(doc: str, options: type, action: Callable[[Any], None],
            argv: Sequence[str] | None = None) -> None:  # fmt: skip
    """A one-off command that a page quotes (a probe, a grid): ``options``' flags
    (:func:`add_options`), then ``action(options)``; a mistake ends it with the usage."""
    parser = _parser(doc)
    add_options(parser, options)
    args = parser.parse_args(argv)
    _log_to_stdout()
    try:
        action(options(**{f.name: getattr(args, f.name) for f in fields(options)}))
    except ObliviateError as exc:
        parser.error(str(exc))


def main(page: Page, argv: Sequence[str] | None = None) -> None:
    """The command line of ``page``: ``[run | table] [--runs DIR] [--out PAGE] [--table-only]
    [--merge-parts] [the page's flags]``. Without a verb it runs, then writes the page; a
    mistake (an :class:`~obliviate.errors.ObliviateError`) ends it with the usage and exit 2."""
    parser = _parser(page.doc)
    parser.add_argument("verb", nargs="?", choices=("run", "table"),
                        help="run: measure the rows RUNS lacks; table: write the page from "
                             "RUNS's rows; neither: both")  # fmt: skip
    parser.add_argument("--runs", type=Path, default=page.runs,
                        help="the folder of results.jsonl (default: %(default)s)")  # fmt: skip
    parser.add_argument("--out", "--page", dest="out", type=Path, default=page.out,
                        help="the page written (default: %(default)s)")  # fmt: skip
    parser.add_argument("--table-only", action="store_true", help="the same as the verb table")
    parser.add_argument("--merge-parts", action="store_true",
                        help="first append RUNS/parts/*/results.jsonl's new rows to "
                             "RUNS/results.jsonl (scripts/finer_parallel.sh)")  # fmt: skip
    add_options(parser, page.options)
    args = parser.parse_args(argv)
    _log_to_stdout()
    verb = "table" if args.table_only else args.verb
    try:
        options = page.options(**{f.name: getattr(args, f.name) for f in fields(page.options)})
        if args.runs is None and (verb == "table" or args.merge_parts):
            raise ObliviateError("this page keeps no rows unless --runs DIR is given")
        with tempfile.TemporaryDirectory() as scratch:  # the rows of a page measured afresh
            runs = Path(scratch) if args.runs is None else args.runs
            if args.merge_parts:
                merge_parts(runs, page.key, page.replaces)
            if verb != "table":
                page.run(options, runs, args.out)
            if verb != "run":
                page.table(options, runs, args.out)
    except ObliviateError as exc:
        parser.error(str(exc))
