"""The one exception type for user mistakes."""

from __future__ import annotations


class ObliviateError(Exception):
    """A mistake the user can fix: bad input, a missing file, an impossible request.

    The message always says what to do. The CLI prints it on one line and exits with code 2.
    """


class NotVerifiedError(ObliviateError):
    """A forget request whose result could not be verified; nothing was returned or written.

    ``record`` is the audit record the request would have had (strength, checks, reason).
    """

    def __init__(self, message: str, record: dict | None = None) -> None:
        super().__init__(message)
        self.record = record or {}
