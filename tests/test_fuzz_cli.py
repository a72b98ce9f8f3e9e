"""CI runs the CLI fuzz script: every bad input keeps the promise (exit 2, one line, no file)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_cli.py"


def test_fuzz_script_finds_no_broken_promise():
    # two Ctrl-C moments, not the script's four: tests/test_interrupt.py sweeps them in detail
    proc = subprocess.run([sys.executable, str(SCRIPT), "--damaged", "4", "--seed", "1",
                           "--interrupts", "2"],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broke the promise" in proc.stderr
    assert proc.stdout.count("| yes |") >= 30
