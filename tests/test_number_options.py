"""Every integer and float option of every command is range-checked: a value beyond 64 bits,
below its lowest, NaN or infinite is one line on stderr, exit 2, and nothing written."""

from __future__ import annotations

import inspect
import math
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from obliviate import cli as cli_module
from obliviate.cli import options

SCRIPT = Path(sys.executable).with_name("obliviate")


def number_options() -> list[tuple[str, str, type]]:
    """``(command, --option, int or float)`` for every number option of every command."""
    out = []
    for info in cli_module.app.registered_commands:
        hints = typing.get_type_hints(info.callback)
        for name, hint in hints.items():
            kinds = {a for a in typing.get_args(hint) if a is not type(None)} or {hint}
            if kinds in ({int}, {float}):
                out.append((info.name, "--" + name.replace("_", "-"), kinds.pop()))
    return out


OPTIONS = number_options()
WRITES = {info.name for info in cli_module.app.registered_commands
          if "out" in inspect.signature(info.callback).parameters}  # fmt: skip


def out_args(command: str, folder: Path) -> list[str]:
    """``--out`` into ``folder`` for the commands that write, so that nothing written shows."""
    return ["--out", str(folder / "x")] if command in WRITES else []


def bad_values(name: str, kind: type) -> list[str]:
    key = name[2:].replace("-", "_")
    if kind is int:
        lowest = options.INT_LOWEST.get(key, 0)
        return [str(2**64 + 1), "99999999999999999999", str(options.INT_MAX + 1), str(lowest - 1)]
    values = ["nan", "inf", "-inf", "1e400"]
    low, high, open_low = options.FLOAT_RANGES.get(key, (None, None, False))
    if low is not None:
        values.append(repr(low) if open_low else repr(low - 1e-3))
    if high is not None:
        values.append(repr(high + 1e-3))
    return values


def test_every_command_has_number_options_and_each_has_a_valid_default():
    assert {c for c, _, _ in OPTIONS} >= {"train", "forget", "evaluate", "retrofit", "backdoor",
                                          "bench", "deposit", "sweep", "demo"}  # fmt: skip
    assert len(OPTIONS) >= 40
    for info in cli_module.app.registered_commands:
        for name, param in inspect.signature(info.callback).parameters.items():
            default = param.default
            if isinstance(default, (int, float)) and not isinstance(default, bool):
                assert options.check_number(name, default) == default, (info.name, name)


@pytest.mark.parametrize(("command", "option", "kind"), OPTIONS)
def test_each_out_of_range_value_is_a_usage_error_in_process(cli, command, option, kind, tmp_path):
    for value in bad_values(option, kind):
        code, _, err = cli(command, option, value, *out_args(command, tmp_path))
        assert code == 2, (command, option, value, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"'{option}'" in lines[0], (command, option, value, err)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_out_of_range_numbers_through_the_installed_script(tmp_path_factory, data):
    command, option, kind = data.draw(st.sampled_from(OPTIONS))
    if kind is int:
        value = data.draw(st.integers(min_value=options.INT_MAX + 1) | st.integers(max_value=-1)
                          | st.integers(min_value=2**63, max_value=2**200))  # fmt: skip
    else:
        value = data.draw(st.sampled_from([math.nan, math.inf, -math.inf])
                          | st.floats(min_value=-1e300, max_value=-1e-9))  # fmt: skip
        key = option[2:].replace("-", "_")
        if key not in options.FLOAT_RANGES and math.isfinite(value):
            value = math.nan  # a negative number is in range for an unbounded float option
    folder = tmp_path_factory.mktemp("numbers")
    proc = subprocess.run([str(SCRIPT), command, option, str(value), *out_args(command, folder)],
                          capture_output=True, text=True, timeout=60, cwd=folder)  # fmt: skip
    assert proc.returncode == 2, (command, option, value, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and option in lines[0], proc.stderr
    assert list(folder.iterdir()) == []
