"""The code blocks of README.md and docs/: how tests/test_docs.py finds, runs and checks them.

A page's fenced blocks carry a language: ``python`` (run as pasted), ``bash`` (run line by line
through the installed ``obliviate``, or parsed where marked not run), ``text`` (a display: an
output, a tree, a usage line). An HTML comment on the line before a fence says how to treat it:

    <!-- docs-test: not run (REASON) -->    too costly for CI: obliviate lines parsed, scripts found
    <!-- docs-test: needs fashion-mnist --> skipped where Debian's package is missing

A ``text`` block right after a run ``bash`` block is that block's output: each of its lines must
appear in what the commands printed, numbers masked, ``…`` standing for any text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARK = re.compile(r"^<!-- docs-test: (not run \((?P<reason>.+)\)|needs (?P<needs>[\w-]+)) -->$")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    text: str
    not_run: str | None = None  # the reason
    needs: str | None = None
    output_of: Block | None = None  # a text block: the bash block it shows the output of

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    lines = page.read_text().split("\n")
    found: list[Block] = []
    i = previous_end = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].rstrip() == "```"), None)
        if end is None:
            raise AssertionError(f"{page}:{i + 1}: a code block that is never closed")
        mark = _MARK.match(lines[i - 1]) if i else None
        block = Block(page, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n",
                      not_run=mark.group("reason") if mark else None,
                      needs=mark.group("needs") if mark else None)  # fmt: skip
        previous = found[-1] if found else None
        if (block.language == "text" and previous is not None and previous.language == "bash"
                and not previous.not_run
                and not "\n".join(lines[previous_end + 1:i]).strip()):  # fmt: skip
            block.output_of = previous
        found.append(block)
        previous_end = end
        i = end + 1
    return found


def command_lines(block: Block) -> list[tuple[str, int | None]]:
    """A bash block's commands: continuation lines joined, comments dropped; with the exit code
    the comment expects (``(exit 2)``), else 0."""
    joined = re.sub(r"\\\n\s*", " ", block.text)
    commands = []
    for line in joined.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command, _, comment = line.partition("  #")
        expected = int(m.group(1)) if (m := re.search(r"\(exit (\d+)\)", comment)) else 0
        commands.append((command.strip(), expected))
    return commands


# -- checking an output block against what the commands printed --------------------------------

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_RULE = re.compile(r"([━─═])\1+")


def normalised(line: str) -> str:
    """A line with its numbers masked and its spacing and table rules collapsed: what stays
    the same between runs and machines."""
    return " ".join(_RULE.sub(r"\1", _NUMBER.sub("N", line)).split())


def missing_lines(shown: str, printed: str) -> list[str]:
    """The lines of ``shown`` (an output block) that ``printed`` does not contain."""
    actual = [normalised(line) for line in printed.split("\n")]
    missing = []
    for line in shown.split("\n"):
        if not line.strip() or line.strip() == "…":
            continue
        pattern = re.compile(".*".join(re.escape(normalised(part)) for part in line.split("…")))
        if not any(pattern.fullmatch(candidate) for candidate in actual):
            missing.append(line)
    return missing


# -- parsing a command that is not run ------------------------------------------------------------


def parse_problem(command: str) -> str | None:
    """Why ``command`` (a line of a block that is not run) would not start, or ``None``.

    ``obliviate ...`` (also after ``torchrun ... -m``) is parsed by the command line itself:
    an unknown command or option, a missing required one or a value of the wrong type is a
    problem. ``python scripts/X.py`` and ``scripts/X.sh`` must exist. Shell variables are
    read as 1."""
    import typer

    from obliviate.cli import app

    for part in re.split(r"\s*(?:&&|;)\s*", command):
        words = shlex.split(re.sub(r"\$\{?(\w+)\}?", "1", part))
        while words and re.fullmatch(r"\w+=\S*", words[0]):  # VAR=value before a command
            words.pop(0)
        if not words:
            continue
        if words[0] == "torchrun" and "-m" in words:
            words = words[words.index("-m") + 1:]
        if words[0] == "obliviate":
            group = typer.main.get_command(app)
            if len(words) > 1 and words[1].startswith("-"):  # obliviate --version, --help
                known = {opt for param in group.params for opt in param.opts} | {"--help"}
                if not set(words[1:]) <= known:
                    return f"unknown option in {part!r}"
                continue
            if len(words) < 2 or group.get_command(None, words[1]) is None:
                return f"no command in {part!r}"
            try:  # parses and checks every option, runs no command
                group.get_command(None, words[1]).make_context(f"obliviate {words[1]}", words[2:])
            except Exception as exc:  # click's usage errors, from typer's copy of click or not
                message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
                return f"{type(exc).__name__}: {message}"
        elif words[0] in ("python", "python3") and len(words) > 1 and words[1].endswith(".py"):
            if not (ROOT / words[1]).is_file():
                return f"{words[1]} does not exist"
        elif words[0].startswith("scripts/"):
            if not (ROOT / words[0]).is_file():
                return f"{words[0]} does not exist"
    return None
