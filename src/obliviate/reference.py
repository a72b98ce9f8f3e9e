"""The reference pages, generated from the code: ``docs/cli.md`` from the typer app and
``docs/api.md`` from ``obliviate.__all__``.

    python -m obliviate.reference            # rewrite both, after changing a command, an option
                                             # or a public function
    python -m obliviate.reference --check    # exit 1 and name the stale page, change nothing

The CLI page lists every command, argument and option with its type, default and help text, in
the order ``obliviate --help`` lists the commands; the API page every public name with its
signature and docstring. ``tests/test_docs.py`` fails when a committed page differs from what
this module generates, so neither can go stale.
"""

from __future__ import annotations

import enum
import inspect
import sys
from pathlib import PurePath
from typing import Any

HEADER = (
    "# Command-line reference\n\n"
    "Generated from the command line itself by `python -m obliviate.reference`;"
    "\n`tests/test_docs.py` fails when this page is stale. Every command also answers `--help`."
    "\nThe guide to what the commands do and how they fit together is [guide.md](guide.md).\n"
)


def _cell(text: str) -> str:
    """``text`` safe inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _default(param: Any) -> str:
    """The default as a user would type it, or what the help says when there is none."""
    if getattr(param, "required", False):
        return "required"
    value = param.default
    if callable(value) or value is None or value == ():
        return ""
    if getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
        return f"`{param.opts[0] if value else param.secondary_opts[0]}`"
    if getattr(param, "is_flag", False):
        return "off" if not value else "on"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, PurePath):
        value = str(value)
    return f"`{value}`"


def _value(param: Any, ctx: Any) -> str:
    """What the option takes: nothing for a flag, else its type's name (``int``, ``path``;
    ``list[str]`` for an option given several times)."""
    if getattr(param, "is_flag", False):
        return ""
    if hasattr(param, "display_type"):  # typer >= 0.24 (its own click)
        return str(param.display_type(ctx)).strip("<>")
    name = getattr(param.type, "name", "") or ""  # click's types
    return {"integer": "int", "text": "str"}.get(name, name)


def _names(param: Any) -> str:
    names = " / ".join([*param.opts, *getattr(param, "secondary_opts", [])])
    return f"`{names}`"


def _command_section(name: str, command: Any) -> list[str]:
    lines = [f"## `obliviate {name}`", ""]
    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        lines += [help_text, ""]
    ctx = command.context_class(command, info_name=f"obliviate {name}")
    # typer may bring its own copy of click: parameters are told apart by their kind's name
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not p.hidden]
    usage = [f"obliviate {name}"]
    for param in arguments:
        piece = param.name.upper() + (" ..." if param.nargs == -1 else "")
        usage.append(piece if param.required else f"[{piece}]")
    usage.append("[OPTIONS]" if options else "")
    lines += ["```text", " ".join(usage).rstrip(), "```", ""]
    if arguments:
        lines += ["| argument | value | what it is |", "|---|---|---|"]
        for param in arguments:
            needed = "" if param.required else " (optional)"
            many = ", one or more" if param.nargs == -1 else ""
            lines.append(f"| `{param.name.upper()}` | {_value(param, ctx)}{many}{needed} | "
                         f"{_cell(getattr(param, 'help', None) or '')} |")  # fmt: skip
        lines.append("")
    if options:
        lines += ["| option | value | default | what it does |", "|---|---|---|---|"]
        for param in options:
            lines.append(f"| {_names(param)} | {_value(param, ctx)} | {_default(param)} | "
                         f"{_cell(param.help or '')} |")  # fmt: skip
        lines.append("")
    return lines


def cli_markdown() -> str:
    """The whole reference page, as ``docs/cli.md`` holds it."""
    import typer

    from obliviate.cli import app

    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="obliviate")
    lines = [HEADER, "```text", "obliviate [--version] COMMAND [OPTIONS] [ARGS]", "```", "",
             "| command | what it does |", "|---|---|"]  # fmt: skip
    names = group.list_commands(ctx)
    for name in names:
        first = inspect.cleandoc(group.get_command(ctx, name).help or "").split("\n\n")[0]
        lines.append(f"| [`{name}`](#obliviate-{name}) | {_cell(first)} |")
    lines.append("")
    for name in names:
        lines += _command_section(name, group.get_command(ctx, name))
    return "\n".join(lines).rstrip() + "\n"


API_HEADER = (
    "# Python API reference\n\n"
    "Generated from the docstrings by `python -m obliviate.reference`; `tests/test_docs.py` fails"
    "\nwhen this page is stale. Everything here is importable from `obliviate`. How the pieces fit"
    "\ntogether, with examples that run: [python.md](python.md).\n"
)


class _Annotation:
    """An annotation written as its source text (``from __future__ import annotations`` keeps
    them as strings, which the signature would otherwise print quoted)."""

    def __init__(self, text: Any) -> None:
        self.text = text if isinstance(text, str) else inspect.formatannotation(text)

    def __repr__(self) -> str:
        return self.text


def signature(obj: Any) -> str:
    """``obj``'s signature as a user would read it: annotations unquoted, no ``-> None``."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    empty = inspect.Parameter.empty
    params = [p.replace(annotation=_Annotation(p.annotation)) if p.annotation is not empty else p
              for p in sig.parameters.values()]  # fmt: skip
    returns = sig.return_annotation
    returns = empty if returns in (None, "None", empty) else _Annotation(returns)
    return str(sig.replace(parameters=params, return_annotation=returns))


def _api_entry(name: str, obj: Any) -> list[str]:
    from obliviate.registry import Registry

    heading = f"### `obliviate.{name}`"
    if isinstance(obj, Registry):
        first = inspect.cleandoc(type(obj).__doc__ or "").split("\n\n")[0]
        return [heading, "", f"A registry. {first}", "",
                "Registered: " + ", ".join(f"`{k}`" for k in sorted(obj)), ""]  # fmt: skip
    if inspect.isclass(obj) and issubclass(obj, BaseException | Warning):
        lines = [heading, "", f"exception, a subclass of `{obj.__mro__[1].__name__}`", ""]
    else:
        kind = "class" if inspect.isclass(obj) else "function"
        lines = [heading, "", f"{kind} `{name}{signature(obj)}`", ""]
    doc = inspect.getdoc(obj)
    if doc:  # a display, not a code block: its examples run as doctests (tests/test_docs.py)
        lines += ["```text", doc, "```", ""]
    return lines


def api_markdown() -> str:
    """The whole API page, as ``docs/api.md`` holds it."""
    import obliviate

    names = [n for n in obliviate.__all__ if not n.startswith("_")]
    lines = [API_HEADER]
    lines += [", ".join(f"[`{n}`](#obliviate{n.lower()})" for n in names), ""]
    for name in names:
        lines += _api_entry(name, getattr(obliviate, name))
    return "\n".join(lines).rstrip() + "\n"


#: page -> its generator
PAGES = {"cli.md": cli_markdown, "api.md": api_markdown}


def main(argv: list[str] | None = None) -> int:
    """Write the pages into ``docs/`` (or with ``--check``, say which are stale)."""
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="the docs directory")
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for page, generate in PAGES.items():
        path, text = args.docs / page, generate()
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"stale: {', '.join(stale)}; run python -m obliviate.reference", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
