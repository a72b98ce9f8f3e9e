"""The results pages whose rows are committed regenerate byte for byte from them (the plots, which
the tables do not read, are left out to keep this fast)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from obliviate.experiments import depth, depth_page, finer_ours_page
from obliviate.experiments.engine import main

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "docs" / "results"


@pytest.fixture
def no_plots(monkeypatch):
    monkeypatch.setattr(depth_page, "_plot", lambda *args, **kwargs: None)
    monkeypatch.setattr(finer_ours_page, "plot", lambda *args, **kwargs: None)


def test_depth_page_regenerates_from_its_rows(tmp_path, no_plots):
    page = tmp_path / "depth.md"
    main(depth.PAGE, ["table", "--runs", str(RESULTS / "depth"), "--page", str(page)])
    assert page.read_bytes() == (RESULTS / "depth.md").read_bytes()
    rows = page.parent / "depth" / "results.jsonl"  # the rows copied beside the page
    assert rows.read_bytes() == (RESULTS / "depth" / "results.jsonl").read_bytes()


def test_finer_ours_section_regenerates_from_its_rows(tmp_path, no_plots):
    from obliviate.experiments import finer_ours

    page = tmp_path / "finer-forgetting.md"
    shutil.copyfile(RESULTS / "finer-forgetting.md", page)
    main(finer_ours.PAGE, ["--table-only", "--runs", str(RESULTS / "finer" / "ours"), "--out",
                           str(page)])  # fmt: skip
    assert page.read_bytes() == (RESULTS / "finer-forgetting.md").read_bytes()
    # a page without the section gets it back above finer_full's part, a blank line between
    # them, which the next regeneration takes out again
    committed = page.read_text()
    begin, end = finer_ours_page.BEGIN, finer_ours_page.END
    page.write_text(committed.split(begin)[0] + committed.split(end + "\n")[1])
    table = ["table", "--runs", str(RESULTS / "finer" / "ours"), "--out", str(page)]
    main(finer_ours.PAGE, table)
    assert page.read_text() == committed.replace(end + "\n", end + "\n\n")
    main(finer_ours.PAGE, table)
    assert page.read_text() == committed
