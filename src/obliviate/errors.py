"""The one exception type for user mistakes."""

from __future__ import annotations


class ObliviateError(Exception):
    """A mistake the user can fix: bad input, a missing file, an impossible request.

    The message always says what to do. The CLI prints it on one line and exits with code 2.
    """
