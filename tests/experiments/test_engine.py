"""The experiment engine behind every results page: the queue resumes from its JSONL file (a torn
last line included), parts written side by side merge once, and the page's tables are written
as the pages expect them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from obliviate.errors import ObliviateError
from obliviate.experiments.engine import (
    Page,
    Results,
    ints,
    main,
    markdown_table,
    mean_std,
    merge_parts,
    read_rows,
    run_queue,
    splice,
)


def write_rows(path, rows, tail=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + tail)


def measure(calls):
    """A stand-in for a row's measurement: records which keys ran."""

    def run_one(key):
        calls.append(key["seed"])
        return {**key, "score": 10 * key["seed"]}

    return run_one


def test_the_queue_runs_only_the_rows_the_file_lacks(tmp_path):
    path = tmp_path / "results.jsonl"
    write_rows(path, [{"suite": "fc", "seed": 0, "score": 0},
                      {"suite": "fc", "seed": 2, "score": 20}])
    calls = []
    plan = [{"suite": "fc", "seed": s} for s in range(4)]
    assert run_queue(Results(path), plan, measure(calls)) == 2
    assert calls == [1, 3]
    assert [r["seed"] for r in read_rows(path)] == [0, 2, 1, 3]
    calls.clear()  # a rerun finds every row done
    assert run_queue(Results(path), plan, measure(calls)) == 0 and calls == []


def test_a_key_matches_rows_that_have_all_its_fields_whatever_else_they_hold(tmp_path):
    path = tmp_path / "results.jsonl"
    write_rows(path, [{"kind": "run", "seed": 0, "classes": [1, 8], "elapsed": 3.0}])
    results = Results(path)
    assert results.find(kind="run", seed=0, classes=[1, 8]) is not None
    assert results.find(kind="run", seed=0, classes=[1]) is None
    assert results.find(kind="run", seed=0, objective="min") is None


def test_a_torn_last_line_is_measured_again_and_never_glued_to_the_next_row(tmp_path):
    path = tmp_path / "results.jsonl"
    write_rows(path, [{"seed": 0, "score": 0}], tail='{"seed": 1, "sco')  # killed mid-write
    results = Results(path)
    assert [r["seed"] for r in results.rows] == [0]
    calls = []
    run_queue(results, [{"seed": s} for s in range(3)], measure(calls))
    assert calls == [1, 2]
    lines = path.read_text().splitlines()
    assert lines[1] == '{"seed": 1, "sco'  # the fragment stays, alone on its line
    assert [r["seed"] for r in read_rows(path)] == [0, 1, 2]
    assert path.read_text().endswith("\n")


def test_redo_replaces_a_done_row_in_place_and_on_disk(tmp_path):
    path = tmp_path / "results.jsonl"
    write_rows(path, [{"seed": 0, "v": 1}, {"seed": 1, "v": 1}])
    ran = run_queue(Results(path), [{"seed": 0}, {"seed": 1}], measure([]),
                    redo=lambda row: {**row, "v": 2} if row["seed"] == 1 else None)  # fmt: skip
    assert ran == 1
    assert read_rows(path) == [{"seed": 0, "v": 1}, {"seed": 1, "v": 2}]


def test_parts_merge_their_new_rows_once_in_the_parts_order(tmp_path):
    main_rows = [{"seed": 0}]
    write_rows(tmp_path / "results.jsonl", main_rows)
    # each part starts from a copy of the main file (scripts/finer_parallel.sh), then appends
    write_rows(tmp_path / "parts" / "b" / "results.jsonl", [*main_rows, {"seed": 2}, {"seed": 3}])
    write_rows(tmp_path / "parts" / "a" / "results.jsonl", [*main_rows, {"seed": 1}],
               tail='{"seed": 9')  # a part killed by the timeout  # fmt: skip
    assert merge_parts(tmp_path) == 3
    assert [r["seed"] for r in read_rows(tmp_path / "results.jsonl")] == [0, 1, 2, 3]
    assert merge_parts(tmp_path) == 0
    assert len(read_rows(tmp_path / "results.jsonl")) == 4


def test_parts_merged_by_key_keep_one_row_per_measured_thing(tmp_path):
    """Two parts that both measured a row (its timing differs) give it once, the first part's;
    without a key the two lines are two rows."""
    write_rows(tmp_path / "results.jsonl", [{"seed": 0, "label": "a", "ms": 1}])
    write_rows(tmp_path / "parts" / "p1" / "results.jsonl",
               [{"seed": 0, "label": "a", "ms": 2}, {"seed": 1, "label": "a", "ms": 3}])
    write_rows(tmp_path / "parts" / "p2" / "results.jsonl",
               [{"seed": 1, "label": "a", "ms": 4}, {"seed": 1, "label": "b", "ms": 5}])
    assert merge_parts(tmp_path, key=("seed", "label")) == 2
    assert [r["ms"] for r in read_rows(tmp_path / "results.jsonl")] == [1, 3, 5]
    assert merge_parts(tmp_path) == 2  # by line: the two rows measured twice come in again
    assert [r["ms"] for r in read_rows(tmp_path / "results.jsonl")] == [1, 3, 5, 2, 4]


def test_merge_starts_on_a_fresh_line_after_a_torn_main_file(tmp_path):
    write_rows(tmp_path / "results.jsonl", [{"seed": 0}], tail='{"se')
    write_rows(tmp_path / "parts" / "a" / "results.jsonl", [{"seed": 1}])
    merge_parts(tmp_path)
    assert [r["seed"] for r in read_rows(tmp_path / "results.jsonl")] == [0, 1]


def test_markdown_table_writes_the_cells_as_given():
    assert markdown_table(["a", "b c"], [[1, "x"], ["", "-"]]) == [
        "| a | b c |", "|---|---|", "| 1 | x |", "|  | - |"]  # fmt: skip
    assert markdown_table(["only"], []) == ["| only |", "|---|"]


def test_mean_std_skips_nan_and_says_when_nothing_is_left():
    assert mean_std([1.0, 3.0, float("nan")]) == "2.0 ± 1.4"
    assert mean_std([2.0], ".2f") == "2.00"
    assert mean_std([float("nan")], empty="diverged") == "diverged"


def test_splice_replaces_a_section_and_keeps_the_rest_of_the_page():
    page = "# Page\n\nintro\n\n<!-- a -->\nold\n<!-- /a -->\n<!-- b -->\nb's part\n"
    new = splice(page, "new\n", "<!-- a -->", "<!-- /a -->")
    assert new == "# Page\n\nintro\n\n<!-- a -->\nnew\n<!-- /a -->\n<!-- b -->\nb's part\n"
    # a section that runs to the end of the page
    assert splice(new, "B\n", "<!-- b -->") == new.split("<!-- b -->")[0].rstrip() + (
        "\n\n<!-- b -->\nB\n")
    # a page without the section gets it before the marker named
    bare = "# Page\n\n<!-- b -->\nb's part\n"
    assert splice(bare, "new\n", "<!-- a -->", "<!-- /a -->", before="<!-- b -->") == (
        "# Page\n\n<!-- a -->\nnew\n<!-- /a -->\n\n<!-- b -->\nb's part\n")


@dataclass(frozen=True)
class ToyOptions:
    seeds: tuple[int, ...] = field(default=(0, 1), metadata={"type": ints})
    mode: str = field(default="fast", metadata={"choices": ("fast", "slow")})
    reference: bool = True
    recalibrate: bool = False


def toy_page(calls):
    def run(options, runs, out):
        if options.mode == "slow":
            raise ObliviateError("slow is not allowed here")
        calls.append(("run", options))
        run_queue(Results(runs / "results.jsonl"), [{"seed": s} for s in options.seeds],
                  lambda key: {**key, "score": 1.0})  # fmt: skip

    def table(options, runs, out):
        rows = read_rows(runs / "results.jsonl")
        calls.append(("table", options))
        out.write_text("\n".join(markdown_table(["seed"], [[r["seed"]] for r in rows])) + "\n")

    return Page(doc="toy", options=ToyOptions, run=run, table=table, runs=None, out=None)


def test_the_command_line_runs_writes_or_both_with_typed_options(tmp_path):
    calls = []
    page, runs, out = toy_page(calls), tmp_path / "runs", tmp_path / "page.md"
    main(page, ["run", "--runs", str(runs), "--out", str(out), "--seeds", "0,2", "--no-reference",
                "--recalibrate"])  # fmt: skip
    assert [c[0] for c in calls] == ["run"] and not out.exists()
    assert calls[0][1] == ToyOptions(seeds=(0, 2), reference=False, recalibrate=True)
    main(page, ["--runs", str(runs), "--out", str(out), "--table-only"])
    assert [c[0] for c in calls] == ["run", "table"]
    assert out.read_text() == "| seed |\n|---|\n| 0 |\n| 2 |\n"
    calls.clear()
    main(page, ["--runs", str(runs), "--page", str(out), "--seeds", "1"])  # no verb: both
    assert [c[0] for c in calls] == ["run", "table"]
    assert out.read_text().endswith("| 0 |\n| 2 |\n| 1 |\n")


def test_a_page_without_runs_measures_afresh_each_call(tmp_path):
    calls = []
    out = tmp_path / "page.md"
    for _ in range(2):
        main(toy_page(calls), ["--out", str(out)])
        assert out.read_text() == "| seed |\n|---|\n| 0 |\n| 1 |\n"
    with pytest.raises(SystemExit) as exc:
        main(toy_page(calls), ["table", "--out", str(out)])  # no rows to write it from
    assert exc.value.code == 2


def test_a_mistake_is_one_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(toy_page([]), ["--runs", str(tmp_path), "--mode", "slow"])
    assert exc.value.code == 2
    assert "slow is not allowed here" in capsys.readouterr().err


def test_a_part_row_that_replaces_the_kept_one_takes_its_place(tmp_path):
    """A row measured again with more measures (``replaces``) takes the kept row's place, in
    order; a row ``replaces`` declines stays as it was, and new rows still come in."""
    write_rows(tmp_path / "results.jsonl", [{"seed": 0, "u": None}, {"seed": 1, "u": None}],
               tail='{"se')
    write_rows(tmp_path / "parts" / "p" / "results.jsonl",
               [{"seed": 1, "u": 0.5}, {"seed": 0, "u": None, "x": 1}, {"seed": 2, "u": 0.4}])
    more = lambda old, new: new["u"] is not None and old["u"] is None  # noqa: E731
    assert merge_parts(tmp_path, key=("seed",), replaces=more) == 2
    assert read_rows(tmp_path / "results.jsonl") == [
        {"seed": 0, "u": None}, {"seed": 1, "u": 0.5}, {"seed": 2, "u": 0.4}]
    assert merge_parts(tmp_path, key=("seed",), replaces=more) == 0
