"""Progress lines reach stderr whole: a Ctrl-C right after a write never leaves half a line."""

from __future__ import annotations

import sys

import pytest

from obliviate import progress


class InterruptedAfterFirstWrite:
    """A stderr that takes one write, then raises KeyboardInterrupt (Ctrl-C arriving there)."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        raise KeyboardInterrupt

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("emit", [
    lambda: progress.progress_note("seed 0: training the model every method starts from"),
    lambda: progress._plain_lines("training fc on digits", 10, "epochs"),
])
def test_a_ctrl_c_after_the_first_write_leaves_a_whole_line(emit, monkeypatch):
    monkeypatch.delenv("OBLIVIATE_NO_PROGRESS", raising=False)
    stderr = InterruptedAfterFirstWrite()
    monkeypatch.setattr(sys, "stderr", stderr)
    with pytest.raises(KeyboardInterrupt):
        emit()
    assert stderr.text.endswith("\n") and stderr.text.count("\n") == 1, repr(stderr.text)


def test_plain_lines_show_the_elapsed_time_and_an_eta(monkeypatch, capsys):
    """A log line says how long the run has taken and how long it will still take, at the rate
    so far (12 of 40 batches in 6 s: 14 s to go); the last line, with nothing left, has none."""
    monkeypatch.delenv("OBLIVIATE_NO_PROGRESS", raising=False)
    now = iter([100.0, 106.0, 120.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(now))
    advance = progress._plain_lines("training fc on digits", 40, "batches")
    advance(12)  # three tenths at once: one line
    advance(28)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["training fc on digits: 0/40 batches",
                     "training fc on digits: 12/40 batches, 6 s, ETA 14 s",
                     "training fc on digits: 40/40 batches, 20 s"], lines  # fmt: skip


def test_long_durations_read_in_minutes_and_hours():
    assert [progress.duration(s) for s in (7.6, 245, 7380)] == ["8 s", "4 min 05 s", "2 h 03 min"]
