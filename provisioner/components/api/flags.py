"""Command lines of the components: a bad flag is a UsageError the process reports in one line
(and exits 1), never argparse's own exit with usage text."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable


class UsageError(Exception):
    """A bad flag or flag value; the message names it."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(message.replace("unrecognized arguments", "unknown flag(s)"))


def serve(prog: str, parse: Callable[[], argparse.Namespace],
          run: Callable[[argparse.Namespace], Awaitable[None]]) -> int:
    """A component's main: parse (a usage error is one line, exit 1), log to stderr, run until
    stopped; a usage or OS error while running is one line and exit 1 too."""
    try:
        args = parse()
    except UsageError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(run(args))
    except (UsageError, OSError) as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    return 0
