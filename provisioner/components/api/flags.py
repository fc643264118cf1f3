"""Command lines of the components: a bad flag is a UsageError the process reports in one line
(and exits 1), never argparse's own exit with usage text."""

from __future__ import annotations

import argparse


class UsageError(Exception):
    """A bad flag or flag value; the message names it."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(message.replace("unrecognized arguments", "unknown flag(s)"))
