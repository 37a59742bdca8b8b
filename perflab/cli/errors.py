"""The command line's one error helper and its one map from exception types to exit codes.

Exit codes: 0 ok; 1 a measurement failed (or a regression, or a night with a failed unit);
2 bad input (one line naming the file, line or field); 3 a bug (one line, its traceback written
to a file); 130 and 143 interrupted by SIGINT and SIGTERM. No Python traceback reaches a user:
:func:`perflab.cli.main.main` maps what a command lets through, and every command that catches an
error ends with :func:`fail`.
"""

from __future__ import annotations

import os
from typing import NoReturn

import typer

from perflab.errors import MissingDependencyError, PerflabError, StoreError, UserInputError
from perflab.lab.lifecycle import EXIT_SIGINT, EXIT_SIGTERM

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3

__all__ = ["EXIT_BAD_INPUT", "EXIT_CODES", "EXIT_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_SIGINT", "EXIT_SIGTERM",
           "STORED_INPUT_ERRORS", "error_line", "exit_code", "fail", "internal_error"]

# By exception type, the first that matches (most specific first). Anything else is a bug: EXIT_INTERNAL.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (UserInputError, EXIT_BAD_INPUT),
    (PerflabError, EXIT_FAILED),
    (KeyboardInterrupt, EXIT_SIGINT),
)

# For the commands that read stored results (run folders, the results store) and measure nothing
# (compare, dashboard, matrix, store): a store or an optional package they cannot use is bad input.
STORED_INPUT_ERRORS: tuple[type[PerflabError], ...] = (UserInputError, StoreError, MissingDependencyError)


def exit_code(exc: BaseException) -> int:
    """The exit code of an error that ends a command (:data:`EXIT_CODES`)."""
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_INTERNAL


def error_line(error: BaseException | str) -> None:
    """The one line a user sees for an error: ``perflab: error: …`` on stderr."""
    typer.echo(f"perflab: error: {error}", err=True)


def fail(error: PerflabError | str, code: int | None = None) -> NoReturn:
    """:func:`error_line`, then exit: with ``code`` where the command's stage decides it (e.g. every
    error while reading a command's inputs is bad input), else by the error's type. A message
    without an exception needs its ``code``."""
    error_line(error)
    if code is None:
        if not isinstance(error, BaseException):
            raise TypeError("fail(message): give the exit code")
        code = exit_code(error)
    raise typer.Exit(code)


def internal_error(exc: BaseException) -> int:
    """A bug: one line naming it and a file holding its traceback; EXIT_INTERNAL."""
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="perflab-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("".join(traceback.format_exception(exc)))
    typer.echo(f"perflab: internal error: {type(exc).__name__}: {exc} (a bug; traceback in {path})", err=True)
    return EXIT_INTERNAL
