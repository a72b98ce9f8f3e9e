"""The ``obliviate`` command line: parses, builds configs, calls the library, prints.

The commands live one family to a module (train, forget, bench, backdoor, recoverable, info),
each registering on the one typer ``app`` (:mod:`obliviate.cli.group`); importing them here is
the registration, so a new command is one module and one line below. What they share is in
:mod:`obliviate.cli.options`, what they print in :mod:`obliviate.cli.describe`. No module
here imports torch before a command runs, so ``obliviate --help`` and usage errors stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

# the registration: importing a command module registers its commands on app
from obliviate.cli import backdoor, bench, forget, info, recoverable, train  # noqa: F401
from obliviate.cli.group import app
from obliviate.cli.options import err_console
from obliviate.errors import GoalMissedWarning, ObliviateError
from obliviate.progress import command_line_words

__all__ = ["app", "main"]

#: The order ``obliviate --help`` lists the commands in (a command not named here comes last).
HELP_ORDER = ("train", "forget", "stats", "evaluate", "evidence", "demo", "bench", "sweep",
              "analyze", "backdoor", "deposit", "withdraw", "retrofit", "list")  # fmt: skip
app.registered_commands.sort(
    key=lambda command: HELP_ORDER.index(command.name) if command.name in HELP_ORDER
    else len(HELP_ORDER)
)


def _usage_message(exc: BaseException) -> str | None:
    """The one-line message of a command-line usage error, or ``None`` for any other error.

    Typer raises click-style exceptions (its vendored copy of click, or click itself in older
    versions); they are recognised by their class names, so no particular click is imported.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "ClickException" not in names:
        return None
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None) or "obliviate"
    return f"{message} (see '{path} --help')"


def _speaks(about: str) -> bool:
    """Whether this process reports ``about`` (``error`` or ``interrupt``). Under torchrun
    every rank runs the same command on the same inputs and meets the same error: rank 0 says
    it once. Ranks started by ``--nproc-per-node`` leave Ctrl-C to the launcher, which says it."""
    rank = os.environ.get("RANK")
    if rank is None:
        return True
    return rank == "0" and (about == "error" or "OBLIVIATE_LAUNCHER" not in os.environ)


def _interrupted() -> None:
    if _speaks("interrupt"):
        err_console.print("interrupted", highlight=False)
    sys.exit(130)


def main() -> None:
    """Entry point: run the app. A user error (bad input, a usage mistake) prints one line on
    stderr and exits 2; Ctrl-C prints one line and exits 130."""
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore", GoalMissedWarning)  # each command prints its own WARNING line
    try:
        with command_line_words():  # library notes name flags, not keyword arguments
            code = app(standalone_mode=False)
    except ObliviateError as exc:
        if _speaks("error"):
            err_console.print(f"error: {exc.for_command_line()}", highlight=False,
                              soft_wrap=True)  # fmt: skip
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except Exception as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `obliviate`: help was printed
            sys.exit(0)
        message = _usage_message(exc)
        if message is None:
            if type(exc).__name__ == "Abort":
                _interrupted()
            raise
        err_console.print(f"error: {message}", highlight=False, soft_wrap=True)
        sys.exit(2)
    finally:
        _leave_job()
    if code == 130:  # typer turns Ctrl-C inside a command into exit code 130
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _leave_job() -> None:
    # Only obliviate.distributed joins a process group; --help and the like never import it
    # (nor torch), and an import cut short by Ctrl-C leaves no shutdown to call.
    shutdown = getattr(sys.modules.get("obliviate.distributed"), "shutdown", None)
    if shutdown is not None and "torch.distributed" in sys.modules:
        shutdown()
