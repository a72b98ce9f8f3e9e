"""Ctrl-C at any moment of a command's life (its imports, set-up, training, writing) gives the
one line ``interrupted``, exit 130 and no file: the installed script, in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("obliviate")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
ENV.pop("OBLIVIATE_NO_PROGRESS", None)  # the plain progress lines mark the training


def _caught_sigint(pid: int) -> bool:
    """Whether process ``pid`` has installed a SIGINT handler (Linux: /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _maps_torch(pid: int) -> bool:
    """Whether process ``pid`` has loaded torch's C++ library (its import is under way)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def _wait(predicate, pid: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not predicate(pid):
        assert proc.poll() is None and time.monotonic() < deadline, "the command ended first"
        time.sleep(0.002)


def interrupt(folder: Path, moment: str, after: float = 0.0) -> tuple[int, str]:
    """Start ``obliviate train`` writing into ``folder`` and send SIGINT at ``moment``:
    ``handler`` (the script's Ctrl-C handler is in place: typer and rich are imported next),
    ``torch`` (torch's library is loaded: its import is under way), ``set-up`` (``after``
    seconds past the handler), or a stderr line containing ``moment``. Return the exit code
    and stderr. Before the handler is in place the interpreter's own start-up runs; the child
    starts with SIGINT ignored, so that the moment the handler arrives shows."""
    proc = subprocess.Popen([str(SCRIPT), "train", "--dataset", "digits", "--epochs", "200",
                             "--out", str(folder / "m.safetensors")], stderr=subprocess.PIPE,
                            text=True, env=ENV, cwd=folder,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip
    lines = []
    try:
        _wait(_caught_sigint, proc.pid, proc)
        if moment == "torch":
            _wait(_maps_torch, proc.pid, proc)
        elif moment == "set-up":
            time.sleep(after)
        elif moment != "handler":
            for line in proc.stderr:
                lines.append(line)
                if moment in line:
                    break
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, "".join(lines) + rest


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize(("moment", "after"), [
    ("handler", 0.0), ("torch", 0.0), ("set-up", 1.0), ("set-up", 2.0),
    ("training fc on digits: 0/", 0.0),     # the first step
    ("training fc on digits: 800/", 0.0),   # mid-training (the plain lines come every tenth)
])  # fmt: skip
def test_ctrl_c_at_any_moment_is_one_line_exit_130_and_no_file(tmp_path, moment, after):
    code, err = interrupt(tmp_path, moment, after)
    assert code == 130, err
    assert "Traceback" not in err, err
    assert [line for line in err.splitlines() if "training fc" not in line] == ["interrupted"]
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_model_file_is_written_removes_it(tmp_path):
    """SIGINT arrives inside the write (right after the temporary file is complete, before the
    rename): the temporary file is removed, and nothing is left."""
    program = (
        "import os, signal, sys\n"
        "from obliviate import interrupts, checkpoint\n"
        "interrupts.install()\n"
        "write = checkpoint.save_file\n"
        "def write_then_interrupt(*args, **kwargs):\n"
        "    write(*args, **kwargs)\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "checkpoint.save_file = write_then_interrupt\n"
        "sys.argv = ['obliviate', 'train', '--epochs', '1', '--out', 'm.safetensors']\n"
        "from obliviate.cli import main\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          env={**ENV, "OBLIVIATE_NO_PROGRESS": "1"}, cwd=tmp_path, timeout=900)  # fmt: skip
    assert proc.returncode == 130 and proc.stderr.strip() == "interrupted", proc.stderr
    assert list(tmp_path.iterdir()) == []
