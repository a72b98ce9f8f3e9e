"""``results.jsonl``: one JSON object per (method, seed) row, appended as each row finishes."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class ResultsFile:
    """The rows already in a results file, and the lines that could not be read.

    A run killed while writing leaves at most one truncated last line; any unreadable line is
    kept in ``corrupt`` (line number and text) and reported, never silently dropped: its row is
    simply not counted as finished, so a rerun computes it again.
    """

    path: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    corrupt: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | Path) -> ResultsFile:
        """Parse ``path`` (a missing file is an empty one), logging every corrupt line."""
        out = cls(Path(path))
        if not out.path.exists():
            return out
        for number, line in enumerate(out.path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if not isinstance(row, dict) or "row_key" not in row:
                    raise ValueError("not a result row")
            except ValueError as exc:
                out.corrupt.append((number, line))
                log.warning(
                    "%s line %d is corrupt (%s); ignoring it, its row will be recomputed",
                    out.path, number, exc,
                )
                continue
            out.rows.append(row)
        return out

    def finished(self) -> set[str]:
        """Row keys that are complete."""
        return {row["row_key"] for row in self.rows}

    def append(self, row: dict[str, Any]) -> None:
        """Append one row and flush it to disk (a killed run loses at most the row in flight)."""
        text = json.dumps(row, sort_keys=True)
        with self.path.open("a") as fh:
            if fh.tell() > 0 and not _ends_with_newline(self.path):
                fh.write("\n")  # never glue a row onto a truncated line
            fh.write(text + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.rows.append(row)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"
