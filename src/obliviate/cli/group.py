"""The command group every command registers on (``@app.command``): every number option
range-checked, every option without help given the shared one; the root callback (--version)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from obliviate.cli.options import SHARED_HELP, check_number


class CheckedGroup(TyperGroup):
    """The command group: every number option of every command is range-checked
    (:func:`check_number`), every option without help gets the shared one, flags show
    no type in the help (``--force``, not ``--force <bool>``), and each command's text is
    reflowed to the terminal's width (:func:`reflowed`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for command in [*self.commands.values(), self]:
            command.help = reflowed(command.help)
            for param in command.params:
                if not getattr(param, "help", None) and param.name in SHARED_HELP:
                    param.help = SHARED_HELP[param.name]
                param.callback = _checked_callback(param.callback)
                _untyped_flag(param)
            command.get_help_option = _untyped_help(command.get_help_option)


def reflowed(text: str | None) -> str | None:
    """``text`` with the line breaks inside each paragraph turned into spaces: typer's rich
    help keeps a docstring's breaks and then wraps at the terminal's width as well, so a
    paragraph written at 96 columns came out ragged at 80. Paragraphs (split on blank lines)
    stay; one that starts with click's ``\\b`` keeps its lines."""
    if not text:
        return text
    paragraphs = text.split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(line.strip() for line in
                                                             p.splitlines() if line.strip())
                       for p in paragraphs)  # fmt: skip


def _untyped_flag(param: Any) -> Any:
    """A flag (``--force``, ``--help``) with no type shown after it: typer prints ``<bool>``
    for every boolean, flags included, though a flag takes no value."""
    if param is not None and getattr(param, "is_flag", False):
        param.metavar = ""
    return param


def _untyped_help(get_help_option: Any) -> Any:
    def untyped(ctx: Any) -> Any:
        return _untyped_flag(get_help_option(ctx))

    return untyped


def _checked_callback(callback: Any) -> Any:
    def check(ctx: Any, param: Any, value: Any) -> Any:
        value = check_number(param.name, value)
        return callback(ctx, param, value) if callback is not None else value

    return check


app = typer.Typer(
    cls=CheckedGroup,
    add_completion=False,
    no_args_is_help=True,
    help="Data-free, one-shot machine unlearning for PyTorch classifiers.",
)


def _print_version(value: bool) -> None:
    if value:
        from obliviate import __version__

        print(f"obliviate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,  # fmt: skip
) -> None:
    """Data-free, one-shot machine unlearning for PyTorch classifiers."""
