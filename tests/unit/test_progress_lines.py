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
