"""The one exception type for user mistakes."""

from __future__ import annotations


class ObliviateError(Exception):
    """A mistake the user can fix: bad input, a missing file, an impossible request.

    The message always says what to do. The CLI prints it on one line and exits with code 2.
    Where what to do differs between Python and the command line (``force=True`` there,
    ``--force`` here), ``str(error)`` says it in Python's words and ``cli`` in the command
    line's, which the CLI prints instead (:meth:`for_command_line`).
    """

    def __init__(self, message: str, *, cli: str | None = None) -> None:
        super().__init__(message)
        self.cli = cli

    def for_command_line(self) -> str:
        """The message in the command line's words (``cli``, else the message itself)."""
        return self.cli or str(self)


class NotVerifiedError(ObliviateError):
    """A forget request whose result could not be verified; nothing was returned or written.

    ``record`` is the audit record the request would have had (strength, checks, reason).
    """

    def __init__(self, message: str, record: dict | None = None, *, cli: str | None = None
                 ) -> None:  # fmt: skip
        super().__init__(message, cli=cli)
        self.record = record or {}


class GoalMissedWarning(UserWarning):
    """A command ran to the end but missed the goal it checks (a retrofit whose codes are not
    all learned or that cost too much accuracy, a deposit that left the classes in the target,
    a backdoor forget below its target, a forget written unverified with ``force=True``).

    The result is still returned; the warning says what was missed and what to try. The
    command line prints the same as a ``WARNING``/``warning:`` line. Turn it into an error
    with ``warnings.simplefilter("error", obliviate.GoalMissedWarning)``.
    """


def warn_goal_missed(message: str) -> None:
    """Warn the caller of a library function that its result missed its goal."""
    import warnings

    warnings.warn(message, GoalMissedWarning, stacklevel=3)
