"""Errors the operator side raises; the CLI is the only place that prints them.

Each error carries the exit code the CLI uses (documented in README.md) and, where one
exists, the failing command and its output so the user sees what went wrong without a
traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # a phase or an operation on a host failed
EXIT_USAGE = 2  # bad command line (click's own code)
EXIT_INVALID_INPUT = 3  # the cluster spec, inventory or another input file is invalid
EXIT_VERIFY_FAILED = 4  # smoke tests ran and at least one failed
EXIT_INTERRUPTED = 130


class ProvisionerError(Exception):
    """An expected failure with a message meant for the user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, command: str | None = None, output: str | None = None):
        super().__init__(message)
        self.message = message
        self.command = command
        self.output = output

    def wrap(self, context: str) -> "ProvisionerError":
        """Return a copy of this error with `context: ` in front of the message."""
        wrapped = type(self).__new__(type(self))
        wrapped.__dict__.update(self.__dict__)
        wrapped.args = (f"{context}: {self.message}",)
        wrapped.message = f"{context}: {self.message}"
        return wrapped


class InvalidInputError(ProvisionerError):
    """An input file (spec, inventory, key) is wrong; nothing was touched."""

    exit_code = EXIT_INVALID_INPUT


class VerifyFailedError(ProvisionerError):
    """Smoke tests ran and at least one failed."""

    exit_code = EXIT_VERIFY_FAILED
